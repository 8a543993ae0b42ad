"""Using a trained model: export, loading a finished run, image preprocessing, recognition."""
