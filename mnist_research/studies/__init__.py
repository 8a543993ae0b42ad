"""Studies: searches and sweeps whose trials are ordinary run directories.

``space`` reads and checks a search space against the settings' declarations;
``study`` opens the Optuna study (a journal file or a database) and checks that a
study continued has the same space and base recipe; ``results`` writes what a
search found (the table of trials, throughput, parameter importances,
``best.flags`` and figures); ``claims`` says which process runs which trial
(under the folder's lock; the search's budget; killed processes' trials failed,
a search's queued again); ``trials`` is the search's worker that trains trial
after trial through ``training.runner`` with a pruning hook; ``grid`` is the
sweep's study, one trial an (experiment, seed) run, taken by whichever sweep
process on the output asks first. The ``search`` and ``sweep`` commands compose them.
"""
