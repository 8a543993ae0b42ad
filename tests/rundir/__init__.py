"""Tests of mnist_research/rundir/: a run directory's layout, overwriting, its lock."""
