"""Studies: hyperparameter searches whose trials are ordinary run directories.

``space`` reads and checks a search space against the settings' declarations;
``study`` opens the Optuna study (a journal file or a database), checks that a
study continued has the same space and base recipe, and writes the table of
trials and ``best.flags``; ``claims`` says which worker runs which trial (the
budget; stopped and killed trials queued again); ``trials`` is the worker that
trains trial after trial through ``training.runner`` with a pruning hook. The
``search`` command composes them.
"""
