"""Exporting a trained model: a SavedModel for serving and a ``.keras`` file.

The SavedModel's default signature (``serving_default``) takes raw uint8
images ``[N, 28, 28]``; ``serve_flat`` takes float pixels ``[N, 784]`` in
[0, 1]. Both return ``probabilities [N, 10]``, ``classes [N]`` (int64) and
``logits [N, 10]``; the scaling to [0, 1] happens inside the exported
function, so a consumer needs only ``tf.saved_model.load``::

    served = tf.saved_model.load("RUN_DIR/export")
    out = served.signatures["serving_default"](images=tf.constant(uint8_images))
    out["classes"], out["probabilities"]

Both artefacts are written to a temporary name and renamed into place, so an
export that is interrupted never replaces a good one with half a directory.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable

import tensorflow as tf

from mnist_research.data.pipeline import IMAGE_SHAPE, NUM_PIXELS, to_model_input
from mnist_research.errors import writing

EXPORT_DIR = "export"
KERAS_FILE = "model.keras"


def export_saved_model(model: tf.keras.Model, export_dir: str) -> str:
    """Writes the SavedModel (a ``tf.Module`` with the model's variables and its two serving
    functions) to ``export_dir``; returns the path.

    The module tracks the ``tf.Variable`` inside each Keras 3 variable, not the
    model: a ``keras.Variable`` is saved as a second variable initialised from
    the one the serving functions read, and that one is never restored when the
    SavedModel is loaded into a TF1 session, as the TFLite converter and
    tf2onnx do. Converted, the model then read uninitialised variables
    (TFLite: every output NaN, ``classes`` 2147483647).
    """
    module = tf.Module(name="mnist_serving")
    module.weights = [variable.value for variable in model.variables]

    def outputs(pixels):
        logits = tf.cast(model(pixels, training=False, return_logits=True), tf.float32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(logits),
            "classes": tf.argmax(logits, axis=-1),
        }

    module.serve = tf.function(
        lambda images: outputs(to_model_input(images)),
        input_signature=[tf.TensorSpec([None, *IMAGE_SHAPE], tf.uint8, name="images")],
    )
    module.serve_flat = tf.function(
        outputs, input_signature=[tf.TensorSpec([None, NUM_PIXELS], tf.float32, name="pixels")]
    )
    signatures = {"serving_default": module.serve, "serve_flat": module.serve_flat}
    return _write_then_rename(
        export_dir, lambda temp: tf.saved_model.save(module, temp, signatures)
    )


def save_keras(model: tf.keras.Model, path: str) -> str:
    """Saves the model as a ``.keras`` file; returns the path."""
    return _write_then_rename(path, model.save)


def _write_then_rename(path: str, write: Callable[[str], object]) -> str:
    """``write(temp)`` into a temporary folder beside ``path``, then the result renamed to it."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(dir=parent, prefix=".export-tmp-")
    new, old = os.path.join(temp, os.path.basename(path)), path + ".old"
    try:
        with writing(path):  # a full disk names the export, not the temporary folder
            write(new)
            # A rename cannot replace a folder: the old export steps aside until the new is in.
            shutil.rmtree(old, ignore_errors=True)
            if os.path.isdir(path):
                os.replace(path, old)
            os.replace(new, path)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return path


def weights_sha256(export_dir: str) -> str | None:
    """SHA-256 of the SavedModel's variables (index and data files), or ``None`` if absent."""
    folder = os.path.join(export_dir, "variables")
    names = sorted(glob.glob("variables.*", root_dir=folder))
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode("utf-8"))
        with open(os.path.join(folder, name), "rb") as f:  # in blocks: a file may be large
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest() if names else None
