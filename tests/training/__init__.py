"""Tests of mnist_research/training/: the trainer, checkpoints, run dirs, resuming, faults."""
