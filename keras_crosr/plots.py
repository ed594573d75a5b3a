"""Figures of the paper and of the tutorials: F1 vs threshold (Fig. 5), sorted samples (Fig. 6), a class's
Weibull CDF, DHRNet reconstructions and training curves.

Every function draws with matplotlib and never calls ``show``, so it works under any backend (``Agg`` on
servers, inline in notebooks). Functions drawing on one axes take ``ax=None`` (a new figure) and return the
``Axes``; those drawing a grid return the ``Figure``.
"""

import numpy as np
from matplotlib import pyplot as plt
from matplotlib.patches import Rectangle

from keras_crosr._validation import is_integer

UNKNOWN_COLOR = "red"  # frames of unknown samples (Fig. 6)
MISCLASSIFIED_COLOR = "cyan"  # frames of misclassified known samples (Fig. 6)


def _new_axes(ax, figsize):
    """`ax`, or the axes of a new figure whose constrained layout keeps the labels and title inside it."""
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _as_images(images, name):
    """`images` as float32 `(n, H, W, C)` in [0, 1] scale with C in (1, 3), or a clear error.

    Integer images are read as 0..255 (divided by 255, as matplotlib's ``imshow`` reads uint8); float images
    are taken as [0, 1] and left unscaled.
    """
    images = np.asarray(images)
    if images.dtype.kind not in "iuf":
        raise TypeError(f"`{name}` must be numeric images; got dtype {images.dtype}.")
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(
            f"`{name}` must be images of shape (n, H, W), (n, H, W, 1) or (n, H, W, 3); got {images.shape}."
        )
    if images.dtype.kind == "f":
        return images.astype(np.float32)
    if images.size and (images.min() < 0 or images.max() > 255):
        raise ValueError(
            f"`{name}` has integer dtype {images.dtype}, read as 0..255, but its values span "
            f"[{images.min()}, {images.max()}]; pass uint8 values in 0..255 or floats in [0, 1]."
        )
    return images.astype(np.float32) / np.float32(255.0)


def _show_image(ax, image):
    """Draws one float `(H, W, C)` image in [0, 1] (clipped) without ticks."""
    image = np.clip(image, 0.0, 1.0)
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
    else:
        ax.imshow(image)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_f1_vs_threshold(thresholds, curves, ax=None):
    """Macro-F1 against the rejection threshold, one line per method (Fig. 5).

    Args:
        thresholds: `(t,)` rejection thresholds (e.g. ``keras_crosr.experiments.runner.F1_THRESHOLDS``).
        curves: dict ``{method name: (t,) macro-F1 values}``, e.g. from ``keras_crosr.metrics.f1_vs_threshold``.
        ax: axes to draw on (default: a new figure).

    Returns:
        The ``Axes``, with one line per curve, labelled with the method names.
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(f"`thresholds` must be a non-empty 1-D array; got shape {thresholds.shape}.")
    if not curves:
        raise ValueError("`curves` is empty: pass a dict {method name: F1 values}.")
    ax = _new_axes(ax, (5, 4))
    for name, f1 in curves.items():
        f1 = np.asarray(f1, dtype=np.float64)
        if f1.shape != thresholds.shape:
            raise ValueError(
                f"curve {name!r} has shape {f1.shape} but there are {thresholds.size} thresholds."
            )
        ax.plot(thresholds, f1, marker=".", label=str(name))
    ax.set_xlabel("rejection threshold")
    ax.set_ylabel("macro-F1 (N + 1 classes)")
    ax.set_xlim(float(thresholds.min()), float(thresholds.max()))
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def sorted_order(confidence):
    """Indices sorting `confidence` `(n,)` in decreasing order; ties keep the input order."""
    confidence = np.asarray(confidence, dtype=np.float64)
    if confidence.ndim != 1:
        raise ValueError(f"`confidence` must be 1-D (n,); got shape {confidence.shape}.")
    return np.argsort(-confidence, kind="stable")


def plot_sorted_samples(images, confidence, labels, predictions, unknown_label, n=50, ncols=10, pad=2, ax=None):
    """The ``n`` most confident samples, in decreasing order of confidence, row by row (Fig. 6).

    Unknown samples (``labels == unknown_label``) are framed red; known samples whose prediction differs from
    their label (another class, or rejected as unknown) are framed cyan; correct known samples are not framed.
    A method that gives unknowns low confidence shows few red frames.

    Args:
        images: `(m, H, W)` or `(m, H, W, C)` images, C in (1, 3): floats in [0, 1] or integers in 0..255
            (e.g. raw uint8 MNIST), drawn alike.
        confidence: `(m,)` the method's confidence, e.g. the largest known probability of ``predict_proba``.
        labels: `(m,)` true labels in ``0..N``, ``unknown_label`` (N) for unknown samples.
        predictions: `(m,)` the method's predictions in ``0..N``.
        unknown_label: N, the label of the unknown class.
        n: how many samples to draw (at most ``m``).
        ncols: samples per row.
        pad: pixels between samples.
        ax: axes to draw on (default: a new figure).

    Returns:
        The ``Axes``: one mosaic image and one frame (``Rectangle`` patch) per unknown or misclassified sample.
    """
    images = _as_images(images, "images")
    confidence = np.asarray(confidence, dtype=np.float64)
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    m = images.shape[0]
    for name, value in (("confidence", confidence), ("labels", labels), ("predictions", predictions)):
        if value.shape != (m,):
            raise ValueError(f"`{name}` must have shape ({m},), one entry per image; got {value.shape}.")
    for name, value in (("n", n), ("ncols", ncols)):
        if not is_integer(value, 1):
            raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
    if m == 0:
        raise ValueError("`images` is empty.")
    order = sorted_order(confidence)[:n]
    n = order.size
    nrows = -(-n // ncols)
    height, width, channels = images.shape[1:]
    cell_h, cell_w = height + pad, width + pad
    mosaic = np.ones((nrows * cell_h + pad, min(n, ncols) * cell_w + pad, channels), dtype=np.float32)
    ax = _new_axes(ax, (max(min(n, ncols), 7) * 0.8, nrows * 0.8 + 0.4))  # at least as wide as the title
    for position, index in enumerate(order):
        top = pad + (position // ncols) * cell_h
        left = pad + (position % ncols) * cell_w
        mosaic[top : top + height, left : left + width] = np.clip(images[index], 0.0, 1.0)
        if labels[index] == unknown_label:
            color = UNKNOWN_COLOR
        elif predictions[index] != labels[index]:
            color = MISCLASSIFIED_COLOR
        else:
            continue
        ax.add_patch(Rectangle((left - 1, top - 1), width + 1, height + 1, fill=False, edgecolor=color,
                               linewidth=1.5))
    _show_image(ax, mosaic)
    shown = f"{n} samples" if n == m else f"top {n} of {m}"
    ax.set_title(f"{shown} by decreasing confidence (red: unknown, cyan: misclassified known)", fontsize=9)
    return ax


def plot_weibull_cdf(detector, class_index, train_distances=None, ax=None):
    """A class's fitted Weibull model: its CDF (W-score) over the distance to the class mean.

    Args:
        detector: a fitted ``OpenMax``, ``CROSR`` or ``OneClassCROSR`` (anything with ``weibull_``).
        class_index: the known class, ``0..N-1``.
        train_distances: optional `(k,)` distances of the class's training samples to its mean, e.g.
            ``np.linalg.norm(f[labels == c] - detector.means_[c], axis=1)`` for the correctly classified
            features ``f`` (``concat([logits, latent])`` for CROSR). They are drawn as a rug, and the
            ``detector.tail_size`` largest (the tail the Weibull model was fitted on) as points on the CDF.
        ax: axes to draw on (default: a new figure).

    Returns:
        The ``Axes``: the CDF line, then (with ``train_distances``) the rug and the tail points.
    """
    weibull = getattr(detector, "weibull_", None)
    if weibull is None:
        raise ValueError(
            f"{type(detector).__name__} has no fitted Weibull models (`weibull_`): fit an OpenMax, CROSR or "
            "OneClassCROSR first."
        )
    if not is_integer(class_index, 0) or class_index >= weibull.n_models:
        raise ValueError(f"`class_index` must be an int in 0..{weibull.n_models - 1}; got {class_index!r}.")
    c = int(class_index)
    # Distances where the shifted tail value t = d * sign + translate_amount - small_score is 0 and where the
    # W-score reaches 0.999: t = scale * (-log(0.001)) ** (1 / shape).
    start = (weibull.small_score[c] - weibull.translate_amount[c]) * weibull.sign[c]
    stop = (weibull.scale[c] * (-np.log(1e-3)) ** (1.0 / weibull.shape[c]) + weibull.small_score[c]
            - weibull.translate_amount[c]) * weibull.sign[c]
    low, high = sorted((start, stop))
    if train_distances is not None:
        train_distances = np.asarray(train_distances, dtype=np.float64)
        if train_distances.ndim != 1 or train_distances.size == 0:
            raise ValueError(f"`train_distances` must be a non-empty 1-D array; got shape {train_distances.shape}.")
        low, high = min(low, train_distances.min()), max(high, train_distances.max())
    margin = 0.05 * (high - low if high > low else 1.0)
    grid = np.linspace(low - margin, high + margin, 400)
    ax = _new_axes(ax, (5, 3.5))
    ax.plot(grid, weibull.w_score(grid[:, None])[:, c], label=f"Weibull CDF, class {c}")
    if train_distances is not None:
        ax.plot(train_distances, np.zeros_like(train_distances), "|", color="gray", label="training samples")
        tail = np.sort(train_distances)[-getattr(detector, "tail_size", train_distances.size):]
        ax.scatter(tail, weibull.w_score(tail[:, None])[:, c], color="C3", zorder=3,
                   label=f"tail ({tail.size} largest)")
    ax.set_xlabel("distance to the class mean" if hasattr(detector, "means_") else "outlier score")
    ax.set_ylabel("W-score (probability of an outlier)")
    ax.set_ylim(-0.05, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_reconstructions(x, reconstruction, n=8):
    """Inputs (top row) and their DHRNet reconstructions (bottom row).

    Args:
        x: `(m, H, W)` or `(m, H, W, C)` input images, C in (1, 3): floats in [0, 1] or integers in 0..255.
        reconstruction: the model's ``"reconstruction"`` output for ``x``, same shape; floats in [0, 1]
            (clipped) or integers in 0..255, whatever the dtype of ``x``.
        n: how many samples to draw (at most ``m``).

    Returns:
        The ``Figure``, with ``2 * n`` axes: inputs first, then reconstructions, left to right.
    """
    x = _as_images(x, "x")
    reconstruction = _as_images(reconstruction, "reconstruction")
    if x.shape != reconstruction.shape:
        raise ValueError(f"`x` {x.shape} and `reconstruction` {reconstruction.shape} must have the same shape.")
    if not is_integer(n, 1):
        raise ValueError(f"`n` must be a positive int; got {n!r}.")
    n = min(n, x.shape[0])
    figure, axes = plt.subplots(2, n, figsize=(1.2 * n, 2.6), squeeze=False, layout="constrained")
    for i in range(n):
        _show_image(axes[0, i], x[i])
        _show_image(axes[1, i], reconstruction[i])
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("reconstruction")
    return figure


def plot_training_history(history, ax=None):
    """The losses of a ``model.fit`` run against the epoch, one line per loss.

    Args:
        history: the ``keras.callbacks.History`` returned by ``fit`` or its ``history`` dict.
        ax: axes to draw on (default: a new figure).

    Returns:
        The ``Axes``, with one line per history entry whose name contains ``"loss"``.
    """
    values = getattr(history, "history", history)
    if not isinstance(values, dict):
        raise TypeError(f"`history` must be a keras History or a dict of lists; got {type(history).__name__}.")
    losses = {name: v for name, v in values.items() if "loss" in name}
    if not losses:
        raise ValueError(f"`history` has no loss entries; its keys are {sorted(values)}.")
    ax = _new_axes(ax, (5, 3.5))
    for name, curve in losses.items():
        ax.plot(np.arange(1, len(curve) + 1), curve, marker=".", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax
