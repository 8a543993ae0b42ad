"""Classify digit images with a trained run.

Usage:
  python -m mnist_research.predict --run_dir=DIR|latest IMAGE [IMAGE ...] [--json]
      [--logdir=runs]
      [--save_preprocessed=OUT_DIR] [--from_checkpoint]

Each PNG/JPEG/BMP/GIF (a scan or a photo: EXIF orientation applied, any
polarity, uneven lighting, noise) is preprocessed the MNIST way
(``imaging.to_mnist``: the digit's ink found by ``ink.find_ink``, fitted into
20×20, centred by mass in 28×28). A file that cannot be classified gets a
one-line error and the others are still classified; the exit status is 1 if
any file failed. A picture holding several digit-sized ink regions is
classified by the one with the most ink and gets a warning naming how many
(``warning`` and ``digits`` in ``--json``). See docs/predict.md.

``--run_dir=latest`` names the newest finished run under ``--logdir`` (default
``runs``; ``python -m mnist_research.runs`` lists them).
"""

from __future__ import annotations

import json
import os
import sys

from absl import flags

from mnist_research import command, logs, reading_commands, runs
from mnist_research import config as config_lib
from mnist_research.errors import MnistResearchError

FLAGS = flags.FLAGS


def define_flags(fv: flags.FlagValues) -> None:
    """A finished run and how to report its predictions."""
    reading_commands.define_finished_run_flags(fv, data=False)
    runs.define_latest_flag(fv)
    reading_commands.define_json_flag(fv, "text")
    flags.DEFINE_string(
        "save_preprocessed",
        None,
        "Write the 28x28 images the model saw here (<name>.28x28.png; "
        "<name>-2.28x28.png, ... when inputs share a name).",
        flag_values=fv,
    )


def _predict(paths: list[str]) -> int:
    # TensorFlow is imported here, after the flags are parsed: a bad argument fails at once.
    logs.quiet_tensorflow()
    from mnist_research.inference import finished_run as restore
    from mnist_research.inference import recognize

    if FLAGS.save_preprocessed:
        try:
            os.makedirs(FLAGS.save_preprocessed, exist_ok=True)
        except OSError as e:
            raise MnistResearchError(
                f"--save_preprocessed={FLAGS.save_preprocessed}: cannot create ({e.strerror or e})"
            ) from None
    run_dir = runs.chosen_run_dir()
    logits_fn, source = restore.load_logits_fn(run_dir, FLAGS.from_checkpoint)
    names = config_lib.DATASETS[restore.load_config(run_dir).data.dataset].class_names
    results = recognize.classify(paths, logits_fn, FLAGS.save_preprocessed)
    for r in results:
        if "digit" in r:
            r["class_name"] = names[r["digit"]]
    if FLAGS.json:
        print(json.dumps({"model": source, "results": results}, indent=2))
    else:
        for r in results:
            if "error" in r:
                print(f"error: {r['error']}", file=sys.stderr)
            else:
                if "warning" in r:
                    print(f"warning: {r['warning']}", file=sys.stderr)
                top3 = ", ".join(f"{_label(d, names)} {p:.1%}" for d, p in r["top3"])
                print(
                    f"{r['path']}: {_label(r['digit'], names)} ({r['probability']:.1%})  "
                    f"top-3: {top3}"
                )
    return 1 if any("error" in r for r in results) else 0


def _label(index: int, names: tuple[str, ...]) -> str:
    """``7`` for a digit dataset; ``3 Dress`` where the classes have names of their own."""
    return names[index] if names[index] == str(index) else f"{index} {names[index]}"


main = reading_commands.main_with_arguments(_predict, "give at least one image file")


def run():
    command.run(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
