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
Reading an export back (and checking it) is :mod:`.finished_run`'s part.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

import tensorflow as tf

from mnist_research import files
from mnist_research.data.pipeline import IMAGE_SHAPE, NUM_PIXELS, to_model_input
from mnist_research.errors import writing

EXPORT_DIR = "export"
KERAS_FILE = "model.keras"


def serving_module(model: tf.keras.Model) -> tf.Module:
    """A ``tf.Module`` holding the model's variables and its two serving functions.

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
    return module


def export_saved_model(model: tf.keras.Model, export_dir: str) -> str:
    """Writes the SavedModel to ``export_dir`` (atomically); returns the path."""
    parent = os.path.dirname(os.path.abspath(export_dir))
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(dir=parent, prefix=".export-tmp-")
    os.chmod(temp, 0o777 & ~files.UMASK)  # mkdtemp's 0700 would hide the export from others
    old = export_dir + ".old"
    try:
        module = serving_module(model)
        with writing(export_dir):  # a full disk names the export, not the temporary folder
            signatures = {"serving_default": module.serve, "serve_flat": module.serve_flat}
            tf.saved_model.save(module, temp, signatures=signatures)
            # A rename cannot replace a folder: the old export steps aside until the new is in.
            shutil.rmtree(old, ignore_errors=True)
            if os.path.exists(export_dir):
                os.replace(export_dir, old)
            os.replace(temp, export_dir)
            shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return export_dir


def save_keras(model: tf.keras.Model, path: str) -> str:
    """Saves the model as a ``.keras`` file (atomically); returns the path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temp = os.path.join(folder, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    try:
        with writing(path):
            model.save(temp)
            os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.unlink(temp)
    return path


def weights_sha256(export_dir: str) -> str | None:
    """SHA-256 of the SavedModel's variables (index and data files), or ``None`` if absent.

    Recorded in ``metrics.json`` as ``export_sha256`` when a run exports, so an
    ``export/`` that holds another model's weights is told apart from the run's own.
    """
    folder = os.path.join(export_dir, "variables")
    try:
        names = sorted(n for n in os.listdir(folder) if n.startswith("variables."))
    except OSError:
        return None
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode("utf-8"))
        with open(os.path.join(folder, name), "rb") as f:  # in blocks: a file may be large
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest() if names else None
