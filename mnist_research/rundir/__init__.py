"""A run directory on disk: its layout, records, lock, checkpoint files, and existing ones.

Below ``training/`` (which writes a run dir) and ``inference/`` and ``analysis/``
(which read one back); it depends only on ``config``, ``errors`` and ``files``.
"""
