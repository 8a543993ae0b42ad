"""TFLite and ONNX copies of a run's SavedModel, each checked against it before it is kept.

Three formats, each converted from ``RUN_DIR/export`` (its ``serving_default``
signature: uint8 images ``[N, 28, 28]`` in; ``classes``, ``logits`` and
``probabilities`` out) and written next to it:

- ``tflite``: ``export.tflite``, float32 (TensorFlow's TFLite converter);
- ``tflite_int8``: ``export_int8.tflite``, weights and activations in int8,
  calibrated on images of the run's own training split;
- ``onnx``: ``export.onnx`` (tf2onnx; the ``[onnx]`` extra).

A converted model is run on the run's test split by its own runtime (LiteRT's
``ai_edge_litert`` when installed, else ``tf.lite.Interpreter``; onnxruntime)
and kept only if it gives the SavedModel's class on at least
:data:`MIN_AGREEMENT` of the images (float formats) or loses at most
:data:`MAX_INT8_DROP` of accuracy (int8). It is verified in memory and
written atomically, so a refused export leaves no file behind.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import warnings

import numpy as np
import tensorflow as tf

from mnist_research import files, logs
from mnist_research.data.pipeline import IMAGE_SHAPE, LogitsFn, batched
from mnist_research.errors import MnistResearchError, RunDirError, one_line
from mnist_research.inference import finished_run
from mnist_research.rundir import layout

SIGNATURE = "serving_default"
MIN_AGREEMENT = 0.999  # float formats: the SavedModel's class on >= 99.9 % of test images
MAX_INT8_DROP = 0.005  # int8: accuracy at most 0.5 points below the SavedModel's
CALIBRATION_IMAGES = 1000  # training images the int8 converter calibrates on
_ONNX_EXTRA = 'pip install -e ".[onnx]" (tf2onnx, onnxruntime)'
# C++ lines on file descriptor 2: LiteRT's when it applies its default (XNNPACK)
# delegate, the int8 converter's settings.
_XNNPACK_LINE = (re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"),)
_QUANTIZER_LINE = (re.compile(r"^fully_quantize: \d+, inference_type: "),)


class ExportRefused(MnistResearchError):
    """A converted model does not give the SavedModel's answers; nothing was written."""


@dataclasses.dataclass(frozen=True)
class Verified:
    """What the check of a converted model found on the test split.

    Attributes:
      agreement: fraction of images given the SavedModel's class.
      accuracy: the converted model's accuracy.
      reference_accuracy: the SavedModel's accuracy.
      num_images: how many test images were compared.
    """

    agreement: float
    accuracy: float
    reference_accuracy: float
    num_images: int

    def problem(self, fmt: str) -> str | None:
        """Why ``fmt`` fails its check (one line), or ``None``."""
        if fmt == "tflite_int8":
            drop = self.reference_accuracy - self.accuracy
            if drop > MAX_INT8_DROP:
                return (
                    f"accuracy {self.accuracy:.2%} is {drop * 100:.2f} points below the "
                    f"SavedModel's {self.reference_accuracy:.2%} (at most "
                    f"{MAX_INT8_DROP * 100:.1f} allowed)"
                )
        elif self.agreement < MIN_AGREEMENT:
            return (
                f"it gives the SavedModel's class on {self.agreement:.2%} of the "
                f"{self.num_images} test images (at least {MIN_AGREEMENT:.1%} needed)"
            )
        return None


def verify(logits: np.ndarray, reference: np.ndarray, labels: np.ndarray) -> Verified:
    """Compares a converted model's logits with the SavedModel's on the same images."""
    classes, reference_classes = logits.argmax(axis=1), reference.argmax(axis=1)
    return Verified(
        agreement=float(np.mean(classes == reference_classes)),
        accuracy=float(np.mean(classes == labels)),
        reference_accuracy=float(np.mean(reference_classes == labels)),
        num_images=len(labels),
    )


def _optional(module: str, fmt: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MnistResearchError(f"{fmt} needs {module}: {_ONNX_EXTRA}") from None


def convert(export_dir: str, fmt: str, calibration: np.ndarray | None = None) -> bytes:
    """The SavedModel's serving signature as ``fmt`` (a key of ``layout.PORTABLE_FILES``).

    Args:
      export_dir: the run's SavedModel.
      fmt: ``tflite``, ``tflite_int8`` or ``onnx``.
      calibration: uint8 images ``[N, 28, 28]`` the int8 converter calibrates on.
    """
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures[SIGNATURE]
    if fmt == "onnx":
        tf2onnx = _optional("tf2onnx", fmt)
        spec = serve.structured_input_signature[1]["images"]
        function = tf.function(lambda images: serve(images=images))
        proto, _ = tf2onnx.convert.from_function(function, input_signature=[spec])
        return proto.SerializeToString()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serve], loaded)
    if fmt == "tflite_int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: (
            [image[np.newaxis]] for image in calibration[:CALIBRATION_IMAGES]
        )
    with logs.stderr_without(_QUANTIZER_LINE):
        return converter.convert()


def _tflite_interpreter(model: bytes):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():  # tf.lite.Interpreter's notice that LiteRT replaces it
        warnings.simplefilter("ignore", UserWarning)
        interpreter = Interpreter(model_content=model)
    return interpreter.get_signature_runner(SIGNATURE)


def _tflite_logits(model: bytes) -> LogitsFn:
    runner = _tflite_interpreter(model)

    def logits(images: np.ndarray) -> np.ndarray:
        with logs.stderr_without(_XNNPACK_LINE):
            return runner(images=images)["logits"]

    return logits


def _onnx_logits(model: bytes) -> LogitsFn:
    onnxruntime = _optional("onnxruntime", "onnx")
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    return lambda images: session.run(["logits"], {"images": images})[0]


_RUNTIMES = {".tflite": _tflite_logits, ".onnx": _onnx_logits}


def logits_function(model: bytes, kind: str, num_classes: int) -> LogitsFn:
    """uint8 ``[N, 28, 28]`` → logits ``[N, num_classes]`` by the runtime of ``kind``.

    Args:
      model: the file's bytes.
      kind: ``.tflite`` or ``.onnx``.
      num_classes: how many logits the run's model gives.

    Raises:
      MnistResearchError: ``model`` cannot be loaded by that runtime, or it is
        not a model of this project's interface.
    """
    try:
        run = _RUNTIMES[kind](model)
        shape = np.shape(run(np.zeros((1, *IMAGE_SHAPE), np.uint8)))
    except MnistResearchError:
        raise
    except Exception as e:  # each runtime raises its own types for a damaged file
        raise MnistResearchError(
            f"not a {kind} model of this project ({one_line(e)[:200]})"
        ) from None
    if shape != (1, num_classes):
        raise MnistResearchError(
            f"not an export of this run: its logits have shape {shape}, not (1, {num_classes})"
        )
    return lambda images: batched(run, images)


def load_logits_fn(path: str, num_classes: int) -> LogitsFn:
    """The logits function of an exported ``.tflite`` or ``.onnx`` file.

    Raises:
      RunDirError: the file is missing, of another type, damaged or foreign (one line).
    """
    kind = os.path.splitext(path)[1].lower()
    if kind not in _RUNTIMES:
        raise RunDirError(f"{path}: not a .tflite or .onnx file")
    try:
        with open(path, "rb") as f:
            model = f.read()
        return logits_function(model, kind, num_classes)
    except OSError as e:
        raise RunDirError(f"{path}: {e.strerror or e}") from None
    except MnistResearchError as e:
        raise RunDirError(f"{path}: {e}") from None


def export(
    export_dir: str,
    fmt: str,
    test: tuple[np.ndarray, np.ndarray],
    reference: LogitsFn,
    calibration: np.ndarray | None,
    num_classes: int,
) -> tuple[str, Verified]:
    """Converts the SavedModel to ``fmt``, verifies it, and writes it next to ``export_dir``.

    Args:
      export_dir: the run's SavedModel (``RUN_DIR/export``).
      fmt: a key of ``layout.PORTABLE_FILES``.
      test: the run's test images and labels.
      reference: the SavedModel's logits function.
      calibration: training images for the int8 converter.
      num_classes: how many classes the model tells apart.

    Returns:
      The written path and what its check found.

    Raises:
      ExportRefused: the converted model fails its check (nothing is written).
    """
    path = os.path.join(os.path.dirname(os.path.normpath(export_dir)), layout.PORTABLE_FILES[fmt])
    model = convert(export_dir, fmt, calibration)
    images, labels = test
    run = logits_function(model, os.path.splitext(path)[1], num_classes)
    verified = verify(run(images), reference(images), labels)
    problem = verified.problem(fmt)
    if problem:
        raise ExportRefused(f"{path} not written: {problem}")
    files.atomic_write_bytes(path, model)
    return path, verified


def export_run(run_dir: str, fmt: str, data_dir: str | None = None) -> tuple[str, Verified]:
    """:func:`export` for a finished run: its SavedModel, test split and training images.

    ``data_dir`` overrides where the run's data is read from.
    """
    config = finished_run.load_config(run_dir)
    reference, export_dir = finished_run.load_logits_fn(run_dir)
    test = finished_run.load_split(config, "test", data_dir)
    calibration = finished_run.load_split(config, "train", data_dir)[0] if "int8" in fmt else None
    return export(export_dir, fmt, test, reference, calibration, config.model.num_classes)
