"""What the report figures show: axes, legends clear of the data, dots on their ticks."""

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from mnist_research.analysis import figures, sweep_table
from mnist_research.analysis import metrics as evaluation

# A 15-epoch history shaped like the baseline's (accuracy flat near 0.98 after epoch 3).
HISTORY = {
    "accuracy": [
        0.85,
        0.93,
        0.948,
        0.956,
        0.961,
        0.965,
        0.968,
        0.9715,
        0.9733,
        0.9752,
        0.9765,
        0.9783,
        0.9791,
        0.9806,
        0.9806,
    ],
    "val_accuracy": [
        0.954,
        0.963,
        0.969,
        0.971,
        0.974,
        0.974,
        0.976,
        0.9765,
        0.9799,
        0.980,
        0.9776,
        0.9799,
        0.9803,
        0.9809,
        0.9812,
    ],
    "loss": list(np.linspace(0.53, 0.06, 15)),
    "val_loss": list(np.linspace(0.16, 0.07, 15)),
}


@pytest.fixture
def kept_figures(monkeypatch, tmp_path):
    """Keeps each figure, laid out and written as a report, so a test can inspect its axes."""
    kept = []
    save = figures.save_figure

    def keep(fig, path, dpi=100):
        kept.append(fig)
        save(fig, str(tmp_path / path), dpi)
        FigureCanvasAgg(fig)  # closing the figure took its renderer away
        return path

    monkeypatch.setattr(figures, "save_figure", keep)
    yield kept


def _display_points(ax, line):
    return ax.transData.transform(np.column_stack(line.get_data()))


def test_curves_keep_the_seed_panels_and_zoom_on_the_last_epochs(kept_figures):
    figures.plot_curves(HISTORY, "curves.png")
    (fig,) = kept_figures
    assert tuple(fig.get_size_inches()) == (18, 5)
    ax_acc, ax_loss, ax_zoom = fig.axes
    assert ax_acc.get_ylim() == (0.0, 1.0)
    low, high = ax_zoom.get_ylim()
    last = HISTORY["accuracy"][7:] + HISTORY["val_accuracy"][7:]
    assert low <= min(last) and max(last) <= high
    assert high - low < 0.05, "the zoom must magnify what the 0-1 axis flattens"
    assert ax_zoom.get_xlim()[0] >= 7 and "epochs 8–15" in ax_zoom.get_title()
    assert "best validation 0.9812 (epoch 15)" in [
        t.get_text() for t in ax_zoom.get_legend().get_texts()
    ]


def test_curves_of_a_one_epoch_run(kept_figures):
    one = {key: values[:1] for key, values in HISTORY.items()}
    figures.plot_curves(one, "curves.png")
    assert len(kept_figures[0].axes) == 3


def test_per_class_dots_legend_clear_of_every_class_and_honest_axis(kept_figures):
    scores = np.linspace(0.97, 0.99, 10)
    per_class = {"precision": list(scores), "recall": list(scores[::-1]), "f1": [0.98] * 10}
    figures.plot_per_class(per_class, "per_class.png")
    (fig,) = kept_figures
    (ax,) = fig.axes
    assert ax.get_ylim()[0] <= 0.9, "a 0.97-0.99 spread must not fill the whole axis"
    legend = ax.get_legend().get_window_extent()
    for line in ax.get_lines():
        for x, y in _display_points(ax, line):
            assert not legend.contains(x, y), "the legend covers a score"
    assert not ax.patches, "bars would claim a zero baseline"
    low = dict(per_class, recall=[0.6] + list(scores[1:]))
    figures.plot_per_class(low, "per_class.png")
    assert kept_figures[1].axes[0].get_ylim()[0] <= 0.58


def test_sweep_dots_sit_on_their_experiment_tick(kept_figures):
    runs = {
        "baseline": [
            {"test_accuracy": a, "test_loss": 0.06, "train_seconds": 14.0, "seed": s}
            for s, a in ((1, 0.9801), (2, 0.9818), (3, 0.9812))
        ]
    }
    sweep_table.plot(sweep_table.aggregate(runs), runs, "sweep.png")
    (ax,) = kept_figures[0].axes
    (dots,) = ax.collections[-1:]
    assert list(dots.get_offsets()[:, 0]) == [0.0, 0.0, 0.0]
    assert list(ax.get_xticks()) == [0]
    left, right = ax.get_xlim()
    assert left + right == pytest.approx(0.0, abs=0.25)  # the tick in the middle
    assert -0.7 < left < -0.4 and 0.4 < right < 0.7


def test_tied_seeds_are_set_side_by_side():
    offsets = sweep_table._tie_offsets([97.90, 97.65, 97.90])
    assert offsets[1] == 0.0 and offsets[0] == -offsets[2] != 0.0


def _probabilities(labels, confidence, seed=0):
    """Rows with ``confidence`` on the true class and the rest spread over the others."""
    rng = np.random.default_rng(seed)
    probabilities = rng.uniform(0.0, 1.0, (len(labels), 10))
    probabilities[np.arange(len(labels)), labels] = 0.0
    probabilities *= (1 - confidence)[:, None] / probabilities.sum(axis=1, keepdims=True)
    probabilities[np.arange(len(labels)), labels] = confidence
    return probabilities


def test_samples_keep_the_first_images_and_add_the_least_confident(kept_figures):
    images = np.zeros((40, 28, 28), np.uint8)
    labels = np.arange(40) % 10
    confidence = np.linspace(0.99, 0.6, 40)
    confidence[[17, 31]] = [0.21, 0.3]  # the two least confident, 17 wrong below
    probabilities = _probabilities(labels, confidence)
    probabilities[17] = np.roll(probabilities[17], 1)  # predicts label + 1 at 0.21 probability
    figures.plot_samples(images, labels, probabilities, "samples.png")
    (fig,) = kept_figures
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert [t.split(":")[0] for t in titles[:5]] == ["#0", "#1", "#2", "#3", "#4"]
    assert [t.split(":")[0] for t in titles[5:7]] == ["#17", "#31"]
    assert "✗" in titles[5] and "✗" not in titles[6]
    bars = [ax for ax in fig.axes if not ax.get_title()]
    assert len(bars) == 10
    filled = [ax.patches[-1].get_width() for ax in bars]
    assert filled[0] == pytest.approx(0.99) and filled[5] == pytest.approx(0.21, abs=0.01)
    assert bars[5].patches[-1].get_facecolor() != bars[0].patches[-1].get_facecolor()
    renderer = fig.canvas.get_renderer()
    lowest_bar = min(ax.get_window_extent(renderer).y0 for ax in bars[:5])
    highest_title = max(
        ax.title.get_window_extent(renderer).y1 for ax in fig.axes[10:] if ax.get_title()
    )
    assert highest_title < lowest_bar, "a second-row caption overlaps a first-row bar"


def test_mistakes_grid_fills_the_figure_under_its_title(kept_figures):
    images = np.full((30, 28, 28), 200, np.uint8)
    labels = np.arange(30) % 10
    probabilities = np.roll(_probabilities(labels, np.full(30, 0.9)), 1, axis=1)
    figures.plot_mistakes(images, labels, probabilities, "mistakes.png")
    (fig,) = kept_figures
    (ax,) = fig.axes
    renderer = fig.canvas.get_renderer()
    image = ax.get_window_extent(renderer)
    figure_height = fig.get_size_inches()[1] * fig.dpi
    title_bottom = ax.title.get_window_extent(renderer).y0
    assert title_bottom - image.y1 < 0.05 * figure_height, "blank band under the title"
    assert image.height > 0.85 * figure_height


def test_mistakes_are_the_wrong_predictions_most_confident_first(kept_figures):
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 1])
    figures.plot_mistakes(np.zeros((4, 28, 28)), labels, probabilities, "mistakes.png")
    captions = [text.get_text() for text in kept_figures[0].axes[0].texts]
    assert [caption.split(":")[0] for caption in captions] == ["#1", "#2"]


def test_reports_name_the_classes_of_the_dataset(kept_figures, tmp_path):
    """Fashion-MNIST's figures call its classes by their names, not 0-9."""
    from mnist_research.config import DataConfig, ExperimentConfig

    images = np.zeros((20, 28, 28), np.uint8)
    labels = np.arange(20) % 10
    probabilities = _probabilities(labels, np.full(20, 0.9))
    probabilities[3] = np.roll(probabilities[3], 1)  # one mistake: 3 ("Dress") taken for 4
    config = ExperimentConfig(data=DataConfig(dataset="fashion_mnist")).to_dict()
    logits = np.log(probabilities)
    summary = evaluation.summarize(labels, logits)
    figures.write_reports(
        str(tmp_path), config, {"history": HISTORY}, images, labels, logits, summary
    )
    _, samples, confusion, per_class, mistakes = kept_figures
    titles = " ".join(ax.get_title() for ax in samples.axes)
    assert "#3: pred Coat (90%)\ntrue Dress" in titles and "#1: pred Trouser" in titles
    ticks = [t.get_text() for t in confusion.axes[0].get_xticklabels()]
    assert ticks[0] == "T-shirt/top" and ticks[-1] == "Ankle boot"
    assert [t.get_text() for t in per_class.axes[0].get_xticklabels()][1] == "Trouser"
    texts = " ".join(t.get_text() for t in mistakes.axes[0].texts)
    assert "pred Coat" in texts and "true Dress" in texts
