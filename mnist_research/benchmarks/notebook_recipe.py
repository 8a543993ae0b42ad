"""The original notebook's recipe: the reference every speed figure is measured against.

The project started from a plain Keras script: load MNIST, print what was
loaded, scale to [0, 1] 784-vectors with one-hot labels, a ``Sequential`` MLP
(Dense → BatchNormalization → ReLU → Dropout, 256/128/64, dropout
0.3/0.3/0.2, softmax head), Adam 1e-3, categorical cross-entropy,
``model.fit`` on the NumPy arrays with ``validation_split=0.2``, batch 128,
15 epochs, ``model.evaluate`` on the test set, then the training curves
(``figsize=(18, 5)``) and five test images with their predictions. This module
is that script, reconstructed from its description, so the benchmark can time
it the way it ran: in-process for its epochs (:func:`fit`), and as a whole
command::

    python -m mnist_research.benchmarks.notebook_recipe DATA_DIR OUTPUT_DIR [EPOCHS]

which writes ``OUTPUT_DIR/notebook_recipe.json`` (per-epoch seconds, each one
including that epoch's validation pass, the history and the test accuracy)
and the two figures.
"""

from __future__ import annotations

import json
import os
import sys
import time


def build_model():
    """The original notebook's ``Sequential`` MLP: Adam 1e-3, categorical cross-entropy."""
    import tensorflow as tf

    layers = [tf.keras.Input((784,))]
    for units, rate in ((256, 0.3), (128, 0.3), (64, 0.2)):
        layers += [
            tf.keras.layers.Dense(units),
            tf.keras.layers.BatchNormalization(),
            tf.keras.layers.Activation("relu"),
            tf.keras.layers.Dropout(rate),
        ]
    layers.append(tf.keras.layers.Dense(10, activation="softmax"))
    model = tf.keras.Sequential(layers)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(1e-3),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def preprocess(images, labels):
    """uint8 ``[N, 28, 28]`` → float32 ``[N, 784]`` in [0, 1]; labels → one-hot ``[N, 10]``."""
    import numpy as np

    x = images.reshape(-1, 784).astype("float32") / 255.0
    y = np.eye(10, dtype="float32")[labels.astype(np.int64)]
    return x, y


def epoch_timer():
    """A Keras callback recording each epoch's seconds (its validation pass included)."""
    import tensorflow as tf

    class EpochTimer(tf.keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # Keras calls it after validation.
            self.seconds.append(time.perf_counter() - self.start)

    return EpochTimer()


def fit(x_train, y_train, epochs: int, timer=None):
    """The original notebook's ``model.fit``: NumPy arrays, ``validation_split=0.2``, batch 128."""
    model = build_model()
    history = model.fit(
        x_train,
        y_train,
        validation_split=0.2,
        epochs=epochs,
        batch_size=128,
        verbose=0,
        callbacks=[timer] if timer is not None else [],
    )
    return model, history


def _plots(history: dict, x_test, y_test, probabilities, output_dir: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(18, 5))
    for ax, key, title in ((ax_acc, "accuracy", "Accuracy"), (ax_loss, "loss", "Loss")):
        ax.plot(history[key], label="train")
        ax.plot(history[f"val_{key}"], label="validation")
        ax.set_title(title)
        ax.legend()
    ax_acc.set_ylim(0, 1)
    fig.savefig(os.path.join(output_dir, "curves.png"))
    plt.close(fig)
    fig, axes = plt.subplots(1, 5, figsize=(15, 3))
    for i, ax in enumerate(axes):
        ax.imshow(x_test[i].reshape(28, 28), cmap="gray")
        ax.set_title(f"pred {probabilities[i].argmax()} / true {y_test[i].argmax()}")
        ax.axis("off")
    fig.savefig(os.path.join(output_dir, "samples.png"))
    plt.close(fig)


def main(argv: list[str]) -> int:
    """The notebook script: data → fit → evaluate → figures; writes ``notebook_recipe.json``."""
    if len(argv) not in (3, 4):
        print(f"usage: {argv[0]} DATA_DIR OUTPUT_DIR [EPOCHS]", file=sys.stderr)
        return 2
    data_dir, output_dir = argv[1], argv[2]
    epochs = int(argv[3]) if len(argv) == 4 else 15
    import numpy as np

    with np.load(os.path.join(data_dir, "mnist.npz"), allow_pickle=False) as data:
        arrays = {k: data[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    print(
        f"train {arrays['x_train'].shape}, test {arrays['x_test'].shape}, values "
        f"{arrays['x_train'].min()}-{arrays['x_train'].max()}, classes "
        f"{np.bincount(arrays['y_train']).tolist()}"
    )
    x_train, y_train = preprocess(arrays["x_train"], arrays["y_train"])
    x_test, y_test = preprocess(arrays["x_test"], arrays["y_test"])
    timer = epoch_timer()
    model, history = fit(x_train, y_train, epochs, timer)
    test_loss, test_accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"Test accuracy: {test_accuracy:.4f}  Test loss: {test_loss:.4f}")
    os.makedirs(output_dir, exist_ok=True)
    _plots(history.history, x_test, y_test, model.predict(x_test[:5], verbose=0), output_dir)
    with open(os.path.join(output_dir, "notebook_recipe.json"), "w") as f:
        json.dump(
            {
                "epoch_seconds": timer.seconds,
                "test_accuracy": float(test_accuracy),
                "test_loss": float(test_loss),
                "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
            },
            f,
            indent=2,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
