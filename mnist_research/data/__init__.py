"""Data: sources (Keras, npz, IDX), validation, the split, tf.data pipelines, model input."""
