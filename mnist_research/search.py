"""Search hyperparameters: an Optuna study whose trials are ordinary training runs.

Usage:
  python -m mnist_research.search --flagfile=experiments/baseline.flags --space=SPACE \\
      --study=NAME --trials=N [--data_dir=DIR] [--output=runs/search] [--storage=URL] \\
      [--workers=K] [--pruner=median|hyperband|none] [--sampler=tpe|random]

The base recipe is every experiment flag given (flagfiles included); SPACE names
the settings to sample (``mnist_research.studies.space``). Trial N trains into
``OUTPUT/NAME/trial-<N>``; the study lives in ``OUTPUT/NAME/journal.log`` unless
--storage names another (a journal file path, or a database URL that several
machines share). The same command from another terminal joins the study; a
trial stopped by a signal, or whose worker was killed, is continued from its run
dir's last checkpoint when the command runs again.
At the end ``OUTPUT/NAME/trials.md`` (the table, throughput and parameter
importances, also printed), ``best.flags`` (a flagfile that trains the best
trial again) and the study's figures are written (``studies.results``).
"""

from __future__ import annotations

import os
import subprocess
import sys

from mnist_research import interrupts

if __name__ == "__main__":  # before TensorFlow's import, which takes seconds
    interrupts.exit_while_starting()

from absl import flags

from mnist_research import command, logs
from mnist_research.config import flags as experiment_flags

FLAGS = flags.FLAGS

# No trial is pruned before this epoch (the median pruner's warm-up, Hyperband's first rung).
PRUNE_FROM_EPOCH = 3


def define_flags(fv: flags.FlagValues) -> None:
    """The experiment flags (the base recipe), the space, the study and its workers."""
    experiment_flags.define_experiment_flags(fv)
    flags.DEFINE_string("space", None, "The search space file.", required=True, flag_values=fv)
    flags.DEFINE_string(
        "study",
        None,
        "The study's name (and its folder under --output).",
        required=True,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "trials",
        20,
        "Trials in the study: completed, pruned, failed with an error, or running.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_string(
        "output", os.path.join("runs", "search"), "Parent of the study's folder.", flag_values=fv
    )
    flags.DEFINE_string(
        "storage",
        None,
        "Where the study lives: a journal file path, or a database URL such as "
        "postgresql+psycopg://user@host/db (default: OUTPUT/STUDY/journal.log).",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "workers",
        1,
        "Worker processes on this machine, each with a share of the CPU cores (and "
        "one GPU of CUDA_VISIBLE_DEVICES each, when it lists GPUs).",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_enum(
        "pruner",
        "median",
        ["median", "hyperband", "none"],
        "Stops hopeless trials.",
        flag_values=fv,
    )
    flags.DEFINE_enum("sampler", "tpe", ["tpe", "random"], "How trials are chosen.", flag_values=fv)
    flags.DEFINE_boolean(
        "worker",
        False,
        "Set by --workers=K on the processes it starts: no progress bar, no table.",
        flag_values=fv,
    )


def _settings():
    from mnist_research.studies import space, study

    study.check_name(FLAGS.study)
    base = experiment_flags.config_from_flags()
    folder = os.path.join(FLAGS.output, FLAGS.study)
    return base, study.StudySettings(
        name=FLAGS.study,
        folder=folder,
        storage=FLAGS.storage or os.path.join(folder, study.JOURNAL_FILE),
        space=space.read(FLAGS.space, base),
        base_flags=experiment_flags.flagfile_text(base),
        trials=FLAGS.trials,
    )


def _sampler_and_pruner(epochs: int):
    import optuna

    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}
    # No trial is pruned before PRUNE_FROM_EPOCH: one epoch ranked learning rates by how
    # fast they start, and a trial pruned after it spent most of its time starting up.
    warmup = min(PRUNE_FROM_EPOCH, epochs)
    pruners = {
        "median": lambda: optuna.pruners.MedianPruner(n_warmup_steps=warmup),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(
            min_resource=warmup, max_resource=epochs
        ),
        "none": optuna.pruners.NopPruner,
    }
    return samplers[FLAGS.sampler](), pruners[FLAGS.pruner]()


def _search() -> int:
    from mnist_research.studies import study as study_lib

    with interrupts.handle_signals():
        base, settings = _settings()
        opened = study_lib.open_study(settings, *_sampler_and_pruner(base.train.epochs))
        try:
            if FLAGS.workers > 1:
                status = _start_workers(settings)
                if status:
                    return status
            else:
                _work(opened, settings)
        except interrupts.Interrupted as e:
            if not FLAGS.worker:  # the workers' parent says it once for them all
                print(
                    f"{e.name}: search stopped; the study is kept in {settings.storage}, each "
                    f"stopped trial with its last checkpoint; rerun the same command to go on",
                    file=sys.stderr,
                    flush=True,
                )
            return e.exit_status
    if not FLAGS.worker:
        from mnist_research.studies import results

        paths = results.write(opened, settings)
        with open(paths["table"], encoding="utf-8") as f:
            print(f.read())
        print("\n".join(f"{name}: {path}" for name, path in paths.items()))
    return 0


def _work(opened, settings) -> None:
    logs.quiet_tensorflow()
    from mnist_research import run_outputs
    from mnist_research.studies import trials

    trials.Worker(
        opened,
        settings,
        actions=(run_outputs.EXPORT,),
        completed_only=(run_outputs.REPORTS,),
        verbose=not FLAGS.worker,
    ).run()


def _start_workers(settings) -> int:
    """Runs ``--workers`` copies of this command (``--workers=1``); the first failure's status."""
    argv = [sys.executable, "-m", "mnist_research.search", *sys.argv[1:]]
    argv += ["--workers=1", "--worker", f"--storage={settings.storage}"]
    shares = core_shares(sorted(os.sched_getaffinity(0)), FLAGS.workers)
    gpus = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    processes = []
    try:
        for i, cores in enumerate(shares):
            env = dict(os.environ)
            if gpus:
                env["CUDA_VISIBLE_DEVICES"] = gpus[i % len(gpus)]
            processes.append(
                subprocess.Popen(
                    argv, env=env, preexec_fn=lambda cores=cores: os.sched_setaffinity(0, cores)
                )
            )
        statuses = [p.wait() for p in processes]
    except interrupts.Interrupted as e:
        for p in processes:
            if p.poll() is None:
                p.send_signal(e.signum)
        for p in processes:
            p.wait()
        raise
    failed = [(i, s) for i, s in enumerate(statuses) if s]
    for i, status in failed:
        print(f"error: worker {i} exited with status {status}", file=sys.stderr, flush=True)
    return failed[0][1] if failed else 0


def core_shares(cores: list[int], workers: int) -> list[list[int]]:
    """Splits ``cores`` into ``workers`` contiguous shares (a core each at least, shared if few)."""
    n = len(cores)
    if n < workers:
        return [[cores[i % n]] for i in range(workers)]
    return [cores[i * n // workers : (i + 1) * n // workers] for i in range(workers)]


main = command.main_without_arguments(_search)


def run() -> None:
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
