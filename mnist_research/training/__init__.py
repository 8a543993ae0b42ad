"""Training: the replica step and loops, the epoch loop, checkpointed state, the run's end.

A run directory's files are read and written through ``mnist_research.rundir``.
"""
