"""Figures: what each plot draws (lines, images, frames and their colours, sort order), on tiny data."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib import pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from keras_crosr import plots  # noqa: E402
from keras_crosr.openset import CROSR, OpenMax  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _frames(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_f1_vs_threshold_one_labelled_line_per_curve():
    thresholds = np.linspace(0, 1, 11)
    curves = {"Softmax": np.linspace(0.2, 0.5, 11), "CROSR": np.linspace(0.4, 0.8, 11)}
    ax = plots.plot_f1_vs_threshold(thresholds, curves)
    assert [line.get_label() for line in ax.get_lines()] == ["Softmax", "CROSR"]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), curves["CROSR"])
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), thresholds)
    assert ax.get_xlim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["Softmax", "CROSR"]


def test_f1_vs_threshold_draws_on_given_axes_and_checks_lengths():
    figure, (left, right) = plt.subplots(1, 2)
    assert plots.plot_f1_vs_threshold([0.1, 0.5], {"a": [0.3, 0.4]}, ax=right) is right
    assert not left.get_lines() and len(right.get_lines()) == 1
    with pytest.raises(ValueError, match="curve 'a' has shape"):
        plots.plot_f1_vs_threshold([0.1, 0.5, 0.9], {"a": [0.3, 0.4]})
    with pytest.raises(ValueError, match="empty"):
        plots.plot_f1_vs_threshold([0.1], {})


def _tile(mosaic, position, size=4, pad=2, ncols=10):
    top = pad + (position // ncols) * (size + pad)
    left = pad + (position % ncols) * (size + pad)
    return mosaic[top : top + size, left : left + size]


def test_sorted_samples_order_and_frames():
    # Sample i is a constant image of value i / 10, so each tile tells which sample it shows.
    m = 8
    images = np.stack([np.full((4, 4), i / 10.0, dtype=np.float32) for i in range(m)])
    confidence = np.array([0.1, 0.9, 0.5, 0.7, 0.3, 0.8, 0.2, 0.6])
    labels = np.array([0, 1, 3, 2, 3, 0, 1, 2])  # 3 = unknown
    predictions = np.array([0, 1, 1, 0, 3, 0, 3, 2])
    ax = plots.plot_sorted_samples(images, confidence, labels, predictions, unknown_label=3, n=6, ncols=10)
    expected = [1, 5, 3, 7, 2, 4]  # decreasing confidence, top 6
    assert len(ax.images) == 1
    mosaic = ax.images[0].get_array()
    assert mosaic.shape == (2 + 6, 2 + 6 * 6)
    for position, index in enumerate(expected):
        np.testing.assert_allclose(_tile(mosaic, position), index / 10.0, atol=1e-6)
    frames = _frames(ax)
    # Unknown: samples 2 and 4 (positions 4, 5) red; misclassified known: sample 3 (position 2) cyan.
    by_position = {int(round((f.get_x() + 1 - 2) / 6)): f.get_edgecolor() for f in frames}
    assert by_position == {2: to_rgba("cyan"), 4: to_rgba("red"), 5: to_rgba("red")}


def test_sorted_samples_ties_keep_input_order_and_rows_wrap():
    images = np.stack([np.full((4, 4, 3), i / 10.0) for i in range(5)])
    confidence = np.array([0.5, 0.9, 0.5, 0.9, 0.5])
    labels = predictions = np.zeros(5, dtype=int)
    np.testing.assert_array_equal(plots.sorted_order(confidence), [1, 3, 0, 2, 4])
    ax = plots.plot_sorted_samples(images, confidence, labels, predictions, unknown_label=1, n=10, ncols=2)
    mosaic = ax.images[0].get_array()
    assert mosaic.shape == (2 + 3 * 6, 2 + 2 * 6, 3)  # 5 samples in 3 rows of 2
    for position, index in enumerate([1, 3, 0, 2, 4]):
        np.testing.assert_allclose(_tile(mosaic, position, ncols=2), index / 10.0, atol=1e-6)
    assert _frames(ax) == []  # all correct and known


def test_sorted_samples_rejects_mismatched_inputs():
    images = np.zeros((3, 4, 4))
    with pytest.raises(ValueError, match="`labels` must have shape"):
        plots.plot_sorted_samples(images, np.zeros(3), np.zeros(2), np.zeros(3), unknown_label=1)
    with pytest.raises(ValueError, match="images of shape"):
        plots.plot_sorted_samples(np.zeros((3, 4)), np.zeros(3), np.zeros(3), np.zeros(3), unknown_label=1)


def _fitted(detector_class):
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 40)
    logits = rng.normal(size=(120, 3)) + 6.0 * np.eye(3)[labels]
    latent = rng.normal(size=(120, 4))
    features = {"logits": logits, "latent": latent}
    return detector_class(tail_size=10).fit(features, labels), features, labels


def test_weibull_cdf_curve_and_tail_points():
    detector, features, labels = _fitted(CROSR)
    joined = np.concatenate([features["logits"], features["latent"]], axis=1)
    members = joined[(labels == 1) & (np.argmax(features["logits"], axis=1) == 1)]
    distances = np.linalg.norm(members - detector.means_[1], axis=1)
    ax = plots.plot_weibull_cdf(detector, 1, train_distances=distances)
    cdf, rug = ax.get_lines()
    y = cdf.get_ydata()
    assert np.all(np.diff(y) >= 0) and y[0] == 0.0 and y[-1] > 0.99
    assert len(rug.get_xdata()) == len(distances)
    (tail,) = ax.collections
    points = tail.get_offsets()
    assert len(points) == 10
    np.testing.assert_allclose(np.sort(points[:, 0]), np.sort(distances)[-10:])
    np.testing.assert_allclose(points[:, 1], detector.weibull_.w_score(points[:, :1])[:, 1])


def test_weibull_cdf_without_distances_and_bad_input():
    detector, _, _ = _fitted(OpenMax)
    ax = plots.plot_weibull_cdf(detector, 0)
    assert len(ax.get_lines()) == 1 and not ax.collections
    with pytest.raises(ValueError, match="class_index"):
        plots.plot_weibull_cdf(detector, 3)
    with pytest.raises(ValueError, match="no fitted Weibull"):
        plots.plot_weibull_cdf(OpenMax(), 0)


def test_reconstructions_grid():
    x = np.random.default_rng(0).uniform(size=(5, 6, 6, 1)).astype("float32")
    reconstruction = x + 0.5  # clipped to [0, 1] for display
    figure = plots.plot_reconstructions(x, reconstruction, n=3)
    assert len(figure.axes) == 6
    top, bottom = figure.axes[:3], figure.axes[3:]
    for i in range(3):
        np.testing.assert_allclose(top[i].images[0].get_array(), x[i, ..., 0])
        np.testing.assert_allclose(bottom[i].images[0].get_array(), np.clip(x[i, ..., 0] + 0.5, 0, 1))
    with pytest.raises(ValueError, match="same shape"):
        plots.plot_reconstructions(x, x[:, :5])


def test_integer_images_are_read_as_0_to_255():
    rgb = np.random.default_rng(1).integers(0, 256, (4, 5, 5, 3), dtype=np.uint8)
    gray = rgb[..., 0]
    for raw in (gray, rgb):
        scaled = raw / 255.0
        pair = [plots.plot_reconstructions(images, images, n=2) for images in (raw, scaled)]
        for from_uint8, from_float in zip(pair[0].axes, pair[1].axes):
            np.testing.assert_allclose(from_uint8.images[0].get_array(), from_float.images[0].get_array())
        mosaics = [
            plots.plot_sorted_samples(images, np.arange(4.0), np.zeros(4), np.zeros(4), 1).images[0].get_array()
            for images in (raw, scaled)
        ]
        np.testing.assert_allclose(mosaics[0], mosaics[1])
    with pytest.raises(ValueError, match=r"read as 0\.\.255, but its values span \[-1, 300\]"):
        plots.plot_reconstructions(np.array([[[-1, 300]]]), np.zeros((1, 1, 2)))


def test_training_history_plots_losses_only():
    history = {"loss": [3.0, 2.0, 1.5], "logits_loss": [2.0, 1.5, 1.0], "learning_rate": [0.1, 0.05, 0.0]}
    ax = plots.plot_training_history(history)
    assert [line.get_label() for line in ax.get_lines()] == ["loss", "logits_loss"]
    np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3])
    with pytest.raises(ValueError, match="no loss entries"):
        plots.plot_training_history({"accuracy": [0.5]})


def _assert_drawn_inside(figure, *texts):
    figure.canvas.draw()
    for text in texts:
        box = text.get_window_extent()
        inside = np.all(box.min >= figure.bbox.min) and np.all(box.max <= figure.bbox.max)
        assert inside, f"{text.get_text()!r} at {box.bounds} is cut off by the figure {figure.bbox.bounds}"


def test_labels_and_titles_lie_inside_the_figure():
    ax = plots.plot_weibull_cdf(_fitted(OpenMax)[0], 0)
    _assert_drawn_inside(ax.figure, ax.xaxis.label, ax.yaxis.label)
    ax = plots.plot_training_history({"loss": [1.0, 0.5]})
    _assert_drawn_inside(ax.figure, ax.xaxis.label, ax.yaxis.label)
    ax = plots.plot_f1_vs_threshold([0.0, 1.0], {"a": [0.2, 0.4]})
    _assert_drawn_inside(ax.figure, ax.xaxis.label, ax.yaxis.label)
    images = np.random.default_rng(0).uniform(size=(3, 6, 6)).astype("float32")
    ax = plots.plot_sorted_samples(images, [0.3, 0.2, 0.1], [0, 1, 2], [0, 1, 2], unknown_label=2)
    _assert_drawn_inside(ax.figure, ax.title)
    figure = plots.plot_reconstructions(images[:1], images[:1])
    _assert_drawn_inside(figure, *(axes.yaxis.label for axes in figure.axes))
