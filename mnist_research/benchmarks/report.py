"""The benchmark's tables (Markdown) and its targets, from the results dict."""

from __future__ import annotations

from mnist_research.benchmarks.phases import PHASES

STEADY_NAMES = {
    "project": "project loop (XLA step, 50 steps per call)",
    "project_plain": "project loop, `--nojit_compile`",
    "identical_fit": "`model.fit`, identical model and pipeline",
    "identical_fit_xla": "`model.fit`, identical model and pipeline, `jit_compile=True`",
    "notebook_fit": "the original notebook's recipe: `model.fit` on NumPy arrays, "
    "`validation_split=0.2`",
}


def targets(results: dict) -> dict:
    """Each target of the fast path: measured value, threshold, met or not."""
    found = {}

    def add(name, value, threshold, higher_is_better):
        met = value >= threshold if higher_is_better else value <= threshold
        found[name] = {"value": value, "target": threshold, "met": bool(met)}

    if "steady" in results:
        add(
            "steady speed-up vs the notebook's model.fit",
            results["steady"]["speedup"]["notebook_fit"]["median"],
            3.0,
            True,
        )
    peers = results.get("peers", {})
    if "total_seconds" in peers.get("project", {}):
        for other in ("torch", "jax"):
            if "total_seconds" in peers.get(other, {}):
                add(
                    f"15 epochs: project / {other}",
                    peers["project"]["total_seconds"]["median"]
                    / peers[other]["total_seconds"]["median"],
                    1.0,
                    False,
                )
    if "whole" in results:
        add(
            "whole command / notebook script",
            results["whole"]["train_vs_notebook"]["median"],
            0.45,
            False,
        )
        fractions = [p["outside_epochs_fraction"] for p in results["whole"]["phases"]]
        add("time outside epochs / command", sorted(fractions)[len(fractions) // 2], 0.40, False)
        add(
            "test accuracy (seed 42)",
            results["whole"]["train"]["test_accuracy"]["median"],
            0.98,
            True,
        )
    return found


def _row(name, s, digits=3):
    return f"| {name} | {s['median']:.{digits}f} | {s['min']:.{digits}f} | {s['max']:.{digits}f} |"


def format_tables(results: dict) -> str:
    """Markdown tables of every part that ran, then the targets."""
    machine = results["machine"]
    lines = [
        f"{results['data']}: {results['train_examples']} training examples, batch 128, "
        f"{results['epochs']} epochs, {results['repeats']} repetitions; "
        f"{machine['processor']} ({machine['cores']} cores), TF {machine['tensorflow']}; "
        f"load average {machine['load_average_at_start'][0]:.1f} at start, "
        f"{machine['load_average_at_end'][0]:.1f} at end",
        "",
    ]
    if "steady" in results:
        lines += [
            "Steady state (median of epochs 2..N, each with its validation pass), "
            "first epoch (tracing, compilation):",
            "",
            "| what | s/epoch median | min | max | first epoch | speed-up of the project |",
            "|---|---|---|---|---|---|",
        ]
        for runner, name in STEADY_NAMES.items():
            r = results["steady"][runner]
            speedup = results["steady"]["speedup"].get(runner)
            first = r["first_epoch_seconds"]["median"]
            lines.append(
                _row(name, r["steady_seconds"])
                + f" {first:.2f} | "
                + (f"{speedup['median']:.2f}x |" if speedup else "- |")
            )
        floors = results["floors"]
        lines += [
            _row("input pipeline alone", floors["pipeline_seconds"]) + " - | - |",
            _row("raw-TF floor, no XLA", floors["raw_tf_seconds"]) + " - | - |",
            _row("raw-TF floor, XLA step", floors["raw_tf_xla_seconds"]) + " - | - |",
            "",
        ]
    if "peers" in results:
        lines += [
            "Whole runs: build, compile and every epoch with its validation pass:",
            "",
            "| framework | seconds, median | min | max | test accuracy |",
            "|---|---|---|---|---|",
        ]
        for runner, r in results["peers"].items():
            lines.append(
                f"| {runner} | skipped: {r['skipped']} | | | |"
                if "skipped" in r
                else _row(runner, r["total_seconds"], 1) + f" {r['test_accuracy']['median']:.4f} |"
            )
        lines.append("")
    if "whole" in results:
        w = results["whole"]
        lines += [
            "Whole commands, process start to exit:",
            "",
            "| command | seconds, median | min | max |",
            "|---|---|---|---|",
            _row("notebook script", w["notebook_script"]["whole_seconds"], 1),
            _row("`train --flagfile=experiments/baseline.flags`", w["train"]["whole_seconds"], 1),
            "",
            "Where the train command's time goes (seconds; last repetition):",
            "",
            "| " + " | ".join(PHASES) + " | whole |",
            "|" + "---|" * (len(PHASES) + 1),
        ]
        phases = w["phases"][-1]
        lines += [
            "| "
            + " | ".join(f"{phases['phases'][p]:.2f}" for p in PHASES)
            + f" | {phases['whole_seconds']:.2f} |",
            "",
        ]
    lines += ["Targets:", ""] + [
        f"- {name}: {t['value']:.3f} (target {t['target']}) {'met' if t['met'] else 'NOT met'}"
        for name, t in targets(results).items()
    ]
    return "\n".join(lines)
