"""Training: the replica step and loops, the epoch loop, checkpoints, run dirs, devices, summaries."""
