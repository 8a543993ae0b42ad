"""How well ``predict`` recognises test digits photographed under different conditions.

Usage:
  python -m mnist_research.predict_robustness --run_dir=DIR [--data_dir=DIR]
      [--num=1000] [--seed=0] [--only=SUBSTRING] [--examples_dir=OUT_DIR]
      [--from_checkpoint]   (--run_dir=latest: the newest finished run under --logdir)

Renders the first ``--num`` test digits of the run's dataset under each
condition of ``inference/photo_conditions.py`` (noise, uneven lighting, JPEG,
rotation, perspective, blur, tinted paper, texture, sizes; and the framings:
tight crop, filled canvas, touching a border, low-resolution 16×16 and 8×8
scans enlarged ×2/×4/×8, stretched), runs them through
``predict``'s decoding and preprocessing, classifies them with the run's model
and prints a Markdown table of accuracy per condition, next to the accuracy on
the same digits as given.
"""

from __future__ import annotations

from absl import flags

from mnist_research import command, logs, output_files, reading_commands, runs
from mnist_research.errors import ConfigError

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """A finished run, and which digits and conditions to render."""
    reading_commands.define_finished_run_flags(fv)
    runs.define_latest_flag(fv)
    flags.DEFINE_integer(
        "num",
        1000,
        "How many test digits (the first ones) to render.",
        lower_bound=1,
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "seed", 0, "Seed of the rendering (sizes, placement, noise, ...).", flag_values=fv
    )
    flags.DEFINE_string(
        "only", None, "Run only the conditions whose name contains this text.", flag_values=fv
    )
    flags.DEFINE_string(
        "examples_dir",
        None,
        "Also write the first 8 pictures of each condition here (a new or empty folder, or "
        "one this command wrote: a folder holding other files is refused).",
        flag_values=fv,
    )


def _measure() -> int:
    # TensorFlow is imported here, after the flags are parsed: a bad argument fails at once.
    logs.quiet_tensorflow()
    from mnist_research.inference import finished_run as restore
    from mnist_research.inference import photo_conditions as photos
    from mnist_research.inference import robustness

    conditions = {
        name: capture
        for name, capture in photos.CONDITIONS.items()
        if FLAGS.only is None or FLAGS.only.lower() in name.lower()
    }
    if not conditions:
        raise ConfigError(f"--only={FLAGS.only}: matches none of: {', '.join(photos.CONDITIONS)}")
    run_dir = runs.chosen_run_dir()
    if FLAGS.examples_dir:  # checked before the model loads: a user's folder is refused
        output_files.claim_folder(FLAGS.examples_dir, ".predict_robustness")
    config = restore.load_config(run_dir)
    logits_fn, source = restore.load_logits_fn(run_dir, FLAGS.from_checkpoint)
    images, labels = restore.load_split(config, "test", FLAGS.data_dir)
    images, labels = images[: FLAGS.num], labels[: FLAGS.num]
    results = robustness.measure(
        logits_fn, images, labels, conditions, FLAGS.seed, FLAGS.examples_dir
    )
    print(f"{len(labels)} test digits, rendering seed {FLAGS.seed}, model {source}\n")
    print(robustness.markdown_table(results))
    return 0


main = command.main_without_arguments(_measure)


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
