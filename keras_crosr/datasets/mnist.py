"""MNIST and its outlier sets of the paper (section 5, "MNIST"): Omniglot, Noise and MNIST-Noise.

All images are float32 in [0, 1], shape ``(n, 28, 28, 1)``, MNIST polarity (strokes bright, background 0).
"""

import numpy as np

from keras_crosr.datasets import _images
from keras_crosr.datasets import _source

MNIST_FILE = "mnist.npz"
OMNIGLOT_FILE = "omniglot_eval.npz"
OMNIGLOT_SIZE = 13180  # Omniglot images_evaluation: 659 characters x 20 drawers
OUTLIER_COUNT = 10000  # the paper's outlier sets each hold 10,000 images (1:1 with the MNIST test set)


def load_mnist(split="train", *, classes=None, source="auto", data_dir=None):
    """MNIST digits.

    Args:
        split: ``"train"`` (60,000) or ``"test"`` (10,000).
        classes: optional digits to keep (labels are left unchanged).
        source: ``"auto"``, ``"local"`` (``<data_dir>/mnist.npz``) or ``"tfds"`` (``mnist``).
        data_dir: local data root; defaults to ``$KERAS_CROSR_DATA``.

    Returns:
        ``(x, y)``: ``x`` float32 ``(n, 28, 28, 1)`` in [0, 1], ``y`` int64 ``(n,)`` in 0..9.
    """
    _source.check_split(split, ("train", "test"), "MNIST")
    kind, where = _source.resolve("MNIST", MNIST_FILE, source=source, data_dir=data_dir, tfds_name="mnist")
    if kind == "local":
        arrays = _source.load_npz(where, [f"x_{split}", f"y_{split}"], dataset="MNIST")
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
    else:
        arrays = _source.tfds_arrays(where, split, ["image", "label"], dataset="MNIST", filename=MNIST_FILE)
        x, y = arrays["image"], arrays["label"]
    if classes is not None:
        keep = _images.select(y, classes, num_classes=10, dataset="MNIST")
        x, y = x[keep], y[keep]
    return _images.to_float(x), y.astype(np.int64)


def omniglot_indices(n=OUTLIER_COUNT, *, seed=0, total=OMNIGLOT_SIZE):
    """The ``n`` Omniglot positions used as outliers: ``default_rng(seed).choice(total, n, replace=False)``, sorted.

    A uniform draw over all 13,180 evaluation images keeps all 20 alphabets (the first 10,000 in file order
    would drop the last alphabets entirely).
    """
    if not 0 < n <= total:
        raise ValueError(f"Omniglot: n must be in [1, {total}], got {n}")
    return np.sort(np.random.default_rng(seed).choice(total, size=n, replace=False))


def _omniglot_from_105(images):
    """Omniglot 105x105 renderings (white background) -> inverted, Lanczos-resized 28x28 uint8 (MNIST polarity)."""
    from PIL import Image

    out = np.empty((len(images), 28, 28, 1), dtype=np.uint8)
    for i, image in enumerate(images):
        inverted = Image.fromarray(255 - np.asarray(image, dtype=np.uint8))
        out[i, ..., 0] = np.asarray(inverted.resize((28, 28), Image.LANCZOS))
    return out


def load_omniglot(n=OUTLIER_COUNT, *, seed=0, source="auto", data_dir=None):
    """Omniglot evaluation set as MNIST-like outliers (the paper's "Omniglot").

    The 13,180 images of Omniglot's ``images_evaluation`` set (20 alphabets, 659 characters x 20 drawers) are
    resized from 105x105 to 28x28 with Lanczos resampling and inverted (strokes bright, as in MNIST); ``n`` of
    them are kept at the positions :func:`omniglot_indices` draws with ``seed`` (10,000 by default, the paper's
    count). The local file (``omniglot_eval.npz``) holds them in the order of Omniglot's image ids (character
    number, then drawer); tfds (``omniglot``, split ``"test"``) images are put in the order of their ``label``,
    the same character number, so the same positions are drawn, though the drawer picked within a character
    may differ. (Sorting by tfds's ``alphabet`` would not do: its names are sorted, which puts Sylheti before
    Syriac_(Serto), the other way round from the ids.)

    Returns:
        float32 ``(n, 28, 28, 1)`` in [0, 1].
    """
    kind, where = _source.resolve(
        "Omniglot", OMNIGLOT_FILE, source=source, data_dir=data_dir, tfds_name="omniglot"
    )
    if kind == "local":
        x = _source.load_npz(where, ["x_test"], dataset="Omniglot")["x_test"]
    else:
        arrays = _source.tfds_arrays(where, "test", ["image", "label"], dataset="Omniglot", filename=OMNIGLOT_FILE)
        order = np.argsort(arrays["label"], kind="stable")
        x = _omniglot_from_105(arrays["image"][order, :, :, 0])
    keep = omniglot_indices(n, seed=seed, total=len(x))
    return _images.to_float(x[keep])


def load_noise(n=OUTLIER_COUNT, *, shape=(28, 28, 1), seed=0):
    """The paper's "Noise": every pixel drawn independently from U[0, 1] (``np.random.default_rng(seed)``).

    Returns:
        float32 ``(n, *shape)`` in [0, 1].
    """
    if n < 1:
        raise ValueError(f"Noise: n must be positive, got {n}")
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def superimpose(images, noise):
    """Superimposes images on noise: ``clip(images + noise, 0, 1)``.

    The paper makes MNIST-Noise "by superimposing MNIST's test images on Noise" without a formula; adding and
    clipping keeps the noise background where the digit is 0 and saturates the strokes at 1.

    Args:
        images: float32 ``(n, H, W, C)`` in [0, 1].
        noise: float32 of the same shape, in [0, 1].

    Returns:
        float32 ``(n, H, W, C)`` in [0, 1].
    """
    images, noise = np.asarray(images, dtype=np.float32), np.asarray(noise, dtype=np.float32)
    if images.shape != noise.shape:
        raise ValueError(f"superimpose: images {images.shape} and noise {noise.shape} must have the same shape")
    for name, x in (("images", images), ("noise", noise)):
        if x.size and not (x.min() >= 0.0 and x.max() <= 1.0):  # also refuses NaN
            raise ValueError(
                f"superimpose: {name} must be in [0, 1] (uint8 images: divide by 255 first); got values in "
                f"[{x.min():.4g}, {x.max():.4g}]"
            )
    out = images + noise
    return np.clip(out, 0.0, 1.0, out=out)


def make_mnist_noise(images, *, seed=1):
    """MNIST-Noise from given MNIST images: ``superimpose(images, load_noise(len(images), seed=seed))``.

    The default ``seed=1`` keeps its noise independent of :func:`load_noise`'s default ``seed=0``.

    Args:
        images: ``(n, *sample_shape)`` images in [0, 1], of any real dtype (cast to float32); values outside
            [0, 1], such as uint8 pixels in 0..255, are refused.

    Returns:
        float32, the shape of ``images``.
    """
    images = np.asarray(images, dtype=np.float32)
    return superimpose(images, load_noise(len(images), shape=images.shape[1:], seed=seed))


def load_mnist_noise(*, seed=1, source="auto", data_dir=None):
    """The paper's "MNIST-Noise": the 10,000 MNIST test images superimposed on uniform noise.

    Returns:
        float32 ``(10000, 28, 28, 1)`` in [0, 1]; see :func:`superimpose` for the formula.
    """
    x_test, _ = load_mnist("test", source=source, data_dir=data_dir)
    return make_mnist_noise(x_test, seed=seed)
