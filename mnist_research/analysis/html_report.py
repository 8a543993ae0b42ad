"""``report.html``: one self-contained page per run (figures embedded as data URIs).

No scripts, no external stylesheets or fonts: it opens offline, in any browser,
and can be mailed as a single file.
"""

from __future__ import annotations

import base64
import html
import json
import string
import time
from collections.abc import Sequence
from typing import Any

from mnist_research.config.registry import HISTORY_KEYS

# The page; ``$name``s are filled in (escaped) by :func:`render`.
_PAGE = string.Template("""\
<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>$name — mnist_research \
report</title><style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1400px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right} th{background:#f3f3f3} table.config td{text-align:left;font-family:monospace}
.big{font-size:1.6em;font-weight:600} .cards{display:flex;gap:2em;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1.2em} tr.best{font-weight:600}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
</style></head><body>
<h1>$name</h1><p>Generated $generated · strategy $strategy · TensorFlow $tensorflow</p>
<h2>Final metrics</h2><div class='cards'>
$cards
</div>
<h2>Per-class metrics (test set)</h2>
$per_class
<h2>Figures</h2>
$figures
${history}<h2>Configuration</h2>
$config
<details><summary>metrics.json</summary><pre>$metrics</pre></details></body></html>""")

FIGURES = {
    "curves": "Training vs validation",
    "samples": "Sample predictions",
    "confusion_matrix": "Confusion matrix",
    "per_class": "Per-class scores",
    "mistakes": "Most confident mistakes",
}


def _table(header: Sequence, rows: Sequence[Sequence], attrs: str = "", best: int = -1) -> str:
    """A table of ``rows`` (cells escaped) under ``header``; row ``best`` in bold."""

    def row(cells: Sequence, tag: str = "td", mark: str = "") -> str:
        return f"<tr{mark}>{''.join(f'<{tag}>{html.escape(str(c))}</{tag}>' for c in cells)}</tr>"

    lines = [row(header, "th")] if header else []
    lines += [row(cells, mark=" class='best'" if i == best else "") for i, cells in enumerate(rows)]
    return "\n".join([f"<table{attrs}>", *lines, "</table>"])


def _config_rows(value: Any, key: str = "") -> list[tuple[str, str]]:
    """``(dotted.key, text)`` for every leaf of nested dicts, keys sorted at each level."""
    if isinstance(value, dict):
        keys = sorted(value)
        return [row for k in keys for row in _config_rows(value[k], f"{key}.{k}" if key else k)]
    values = value if isinstance(value, (list, tuple)) else [value]
    return [(key, ", ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in values))]


def _cards(metrics: dict) -> str:
    """The headline numbers; best and exported epoch where one was chosen."""
    cards = [
        ("test accuracy", f"{metrics.get('test_accuracy', float('nan')):.4f}"),
        ("test loss", f"{metrics.get('test_loss', float('nan')):.4f}"),
        ("epochs", str(metrics.get("epochs_completed", ""))),
        ("training time", f"{metrics.get('train_seconds', 0.0):.1f} s"),
        ("examples/s", f"{metrics.get('examples_per_second', 0.0):,.0f}"),
        ("device", f"{metrics.get('device_name', '')} ×{metrics.get('num_replicas', '')}"),
    ]
    if metrics.get("best_epoch"):
        stopped = " (stopped early)" if metrics.get("stopped_early") else ""
        cards[3:3] = [
            ("best epoch", f"{metrics['best_epoch']} (val {metrics['best_val_accuracy']:.4f})"),
            ("exported epoch", f"{metrics.get('exported_epoch', '')}{stopped}"),
        ]
    return "\n".join(
        f"<div class='card'><div>{html.escape(label)}</div><div class='big' "
        f"id='{html.escape(label.replace(' ', '_'))}'>{html.escape(value)}</div></div>"
        for label, value in cards
    )


def _per_class_table(per_class: dict, class_names: Sequence[str]) -> str:
    """Precision, recall, F1 and support per class; a named class shows its index too."""
    rows = []
    for c, name in enumerate(class_names):
        scores = [f"{per_class[key][c]:.4f}" for key in ("precision", "recall", "f1")]
        rows.append([name if name == str(c) else f"{c} {name}", *scores, per_class["support"][c]])
    return _table(("class", "precision", "recall", "F1", "support"), rows, " id='per_class'")


def _figures(figures: dict[str, str]) -> str:
    """Every figure of ``FIGURES``, embedded."""
    parts = []
    for key, title in FIGURES.items():
        with open(figures[key], "rb") as f:
            payload = base64.b64encode(f.read()).decode("ascii")
        title = html.escape(title)
        parts.append(f'<h3>{title}</h3><img alt="{title}" src="data:image/png;base64,{payload}">')
    return "\n".join(parts)


def _history_table(metrics: dict) -> str:
    """One row an epoch, a column per metric the run recorded, the best epoch in bold."""
    history = metrics["history"]
    keys = [key for key in HISTORY_KEYS if key in history and key != "examples_per_second"]
    rows = [
        [i + 1] + [f"{history[k][i]:{'.2f' if k == 'epoch_seconds' else '.4f'}}" for k in keys]
        for i in range(len(history["loss"]))
    ]
    header = ["epoch"] + ["seconds" if key == "epoch_seconds" else key for key in keys]
    best = (metrics.get("best_epoch") or 0) - 1
    return f"<h2>History</h2>\n{_table(header, rows, best=best)}\n"


def render(config: dict, metrics: dict, test: dict, figures: dict, names: Sequence[str]) -> str:
    """The page: the final metrics, ``test``'s per-class scores, figures, history, settings."""
    summary = {k: v for k, v in metrics.items() if k != "history"}
    return _PAGE.substitute(
        name=html.escape(config.get("experiment", "run")),
        generated=html.escape(time.strftime("%Y-%m-%d %H:%M:%S")),
        strategy=html.escape(str(metrics.get("strategy", ""))),
        tensorflow=html.escape(str(metrics.get("tensorflow_version", ""))),
        cards=_cards(metrics),
        per_class=_per_class_table(test["per_class"], names),
        figures=_figures(figures),
        history=_history_table(metrics),
        config=_table((), _config_rows(config), " class='config'"),
        metrics=html.escape(json.dumps(summary, indent=1, sort_keys=True)),
    )
