"""``report.html``: one self-contained page per run (figures embedded as data URIs).

No scripts, no external stylesheets or fonts: it opens offline, in any browser,
and can be mailed as a single file.
"""

from __future__ import annotations

import base64
import html
import json
import os
import time

from mnist_research import config as config_lib
from mnist_research.config.metrics import HISTORY_KEYS
from mnist_research.files import atomic_write_text

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1400px;color:#222;padding:0 1em}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:.25em .6em;
text-align:right} th{background:#f3f3f3} td.k{text-align:left;font-family:monospace}
.big{font-size:1.6em;font-weight:600} .cards{display:flex;gap:2em;flex-wrap:wrap}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1.2em} tr.best{font-weight:600}
img{max-width:100%;border:1px solid #eee;margin:.4em 0}
"""

_FIGURES = (
    ("curves", "Training vs validation"),
    ("samples", "Sample predictions"),
    ("confusion_matrix", "Confusion matrix"),
    ("per_class", "Per-class scores"),
    ("mistakes", "Most confident mistakes"),
)


def _img(path: str, alt: str) -> str:
    with open(path, "rb") as f:
        payload = base64.b64encode(f.read()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{payload}">'


def _flat(prefix: str, value, out: list) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            _flat(f"{prefix}.{key}" if prefix else key, value[key], out)
    else:
        out.append((prefix, value))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _cards(metrics: dict) -> list[tuple[str, str]]:
    """The headline numbers, ``(label, value)``; best and exported epoch where one was chosen."""
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
    return cards


def _head(name: str, metrics: dict) -> list[str]:
    """The document head, the title line and the final-metrics cards."""
    esc = html.escape
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{esc(name)} — mnist_research report</title><style>{_STYLE}</style>"
        f"</head><body>",
        f"<h1>{esc(name)}</h1><p>Generated {esc(time.strftime('%Y-%m-%d %H:%M:%S'))} · "
        f"strategy {esc(str(metrics.get('strategy', '')))} · TensorFlow "
        f"{esc(str(metrics.get('tensorflow_version', '')))}</p>",
        "<h2>Final metrics</h2><div class='cards'>",
    ]
    parts += [
        f"<div class='card'><div>{esc(k)}</div>"
        f"<div class='big' id='{esc(k.replace(' ', '_'))}'>{esc(v)}</div></div>"
        for k, v in _cards(metrics)
    ]
    parts.append("</div>")
    return parts


def _per_class_table(per_class: dict, class_names) -> list[str]:
    parts = [
        (
            "<h2>Per-class metrics (test set)</h2><table id='per_class'><tr><th>class</th>"
            "<th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
        )
    ]
    for c in range(len(per_class["f1"])):
        name = class_names[c] if c < len(class_names) else str(c)
        label = name if name == str(c) else f"{c} {name}"
        parts.append(
            f"<tr><td>{html.escape(label)}</td><td>{per_class['precision'][c]:.4f}</td>"
            f"<td>{per_class['recall'][c]:.4f}</td><td>{per_class['f1'][c]:.4f}</td>"
            f"<td>{per_class['support'][c]}</td></tr>"
        )
    parts.append("</table>")
    return parts


def _figures(figures: dict[str, str]) -> list[str]:
    """Every figure of ``_FIGURES`` whose file exists, embedded."""
    parts = ["<h2>Figures</h2>"]
    for key, title in _FIGURES:
        if key in figures and os.path.exists(figures[key]):
            parts.append(f"<h3>{html.escape(title)}</h3>{_img(figures[key], title)}")
    return parts


_LABELS = {"epoch_seconds": "seconds"}


def _history_table(metrics: dict) -> list[str]:
    """One row an epoch, a column per metric the run recorded, the best epoch in bold."""
    history = metrics.get("history", {})
    if not history.get("loss"):
        return []
    keys = [key for key in HISTORY_KEYS if key in history and key != "examples_per_second"]
    header = "".join(f"<th>{html.escape(_LABELS.get(key, key))}</th>" for key in keys)
    parts = [f"<h2>History</h2><table><tr><th>epoch</th>{header}</tr>"]
    best = metrics.get("best_epoch")
    for i in range(len(history["loss"])):
        mark = " class='best'" if i + 1 == best else ""
        cells = "".join(
            f"<td>{history[key][i]:{'.2f' if key == 'epoch_seconds' else '.4f'}}</td>"
            for key in keys
        )
        parts.append(f"<tr{mark}><td>{i + 1}</td>{cells}</tr>")
    parts.append("</table>")
    return parts


def _tail(config: dict, metrics: dict) -> list[str]:
    """The flattened configuration, metrics.json (without the history) and the closing tags."""
    esc = html.escape
    rows = []
    _flat("", config, rows)
    parts = ["<h2>Configuration</h2><table>"]
    parts += [
        f"<tr><td class='k'>{esc(k)}</td><td class='k'>{esc(_fmt(v))}</td></tr>" for k, v in rows
    ]
    parts.append("</table>")
    summary = {k: v for k, v in metrics.items() if k != "history"}
    parts.append(
        f"<details><summary>metrics.json</summary><pre>"
        f"{esc(json.dumps(summary, indent=1, sort_keys=True))}</pre></details>"
        f"</body></html>"
    )
    return parts


def render(config: dict, metrics: dict, test_summary: dict, figures: dict[str, str]) -> str:
    """The page as a string."""
    name = config.get("experiment", "run")
    dataset = config.get("data", {}).get("dataset")
    class_names = config_lib.DATASETS[dataset].class_names if dataset in config_lib.DATASETS else ()
    parts = (
        _head(name, metrics)
        + _per_class_table(test_summary["per_class"], class_names)
        + _figures(figures)
        + _history_table(metrics)
        + _tail(config, metrics)
    )
    return "\n".join(parts)


def write(
    path: str, config: dict, metrics: dict, test_summary: dict, figures: dict[str, str]
) -> str:
    """Renders and writes the page atomically; returns ``path``."""
    atomic_write_text(path, render(config, metrics, test_summary, figures))
    return path
