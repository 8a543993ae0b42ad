"""A run directory on disk: its layout, its records, its lock and its checkpoint files.

Below ``training/`` (which writes a run dir) and ``inference/`` and ``analysis/``
(which read one back); it depends only on ``config``, ``errors`` and ``files``.
"""
