"""Loading through ``tf.keras.datasets``: imported only for a run without ``--data_dir``."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from mnist_research.config.registry import Dataset
from mnist_research.errors import DataError, one_line


def download(dataset: Dataset, data_dir_name: str = "--data_dir") -> dict[str, np.ndarray]:
    """The four arrays by Keras name (downloaded on first use); a DataError if that fails."""
    loader = getattr(tf.keras.datasets, dataset.keras_name)
    try:
        (x_train, y_train), (x_test, y_test) = loader.load_data()
    except Exception as e:  # Keras raises many types for network failures.
        raise DataError(
            f"could not download {dataset.name} through tf.keras.datasets ({one_line(e)}); "
            f"without network access, point {data_dir_name} at a folder holding "
            f"{' or '.join(dataset.npz_names)} or the four IDX files"
        ) from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
