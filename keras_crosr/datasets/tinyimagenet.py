"""Tiny ImageNet-200 (train / val) and the ODIN outlier sets ImageNet-crop / ImageNet-resize made from its test set.

Label orders: ``label_order="wnids"`` (default) numbers the classes by their line in ``wnids.txt``, as the
archives store them; ``label_order="sorted"`` numbers them by sorted wnid, the order of
``torchvision.datasets.ImageFolder`` in which the ARPL open-set splits (attributed to Neal et al. 2018, as
distributed with ARPL and "Open-set recognition: a good closed-set classifier is all you need") are written.

Local files (keras-crosr's ``DATA.md``): ``tinyimagenet_train/tinyimagenet_train_part{0..3}.npz`` (part =
wnids label // 50, 25,000 images each), ``tinyimagenet_val.npz`` (10,000, 50 per class) and
``tinyimagenet_test.npz`` (10,000 unlabelled test images plus the crop corners ``crop_yx``). tensorflow-datasets
has no Tiny ImageNet, so these loaders are local only; :mod:`keras_crosr.datasets.pack_tinyimagenet` makes the
files from the official ``tiny-imagenet-200.zip``.

Memory: images are decoded once into the float32 output, 48 KiB per 64x64 image: 4.6 GiB for the whole training
split, 469 MiB for val or for the 20 known classes of a class-separation trial (pass ``classes=``: only the
JPEGs of those classes are decoded); the measured peak is 1.04-1.11 x the output (``benchmarks/bench_datasets.py``).
"""

import numpy as np

from keras_crosr.datasets import _images
from keras_crosr.datasets import _source

NUM_CLASSES = 200
TRAIN_DIR = "tinyimagenet_train"
TRAIN_PARTS = 4
VAL_FILE = "tinyimagenet_val.npz"
TEST_FILE = "tinyimagenet_test.npz"
LABEL_ORDERS = ("wnids", "sorted")
PACK_HINT = (
    "make these files from the official download http://cs231n.stanford.edu/tiny-imagenet-200.zip with "
    "`python -m keras_crosr.datasets.pack_tinyimagenet tiny-imagenet-200.zip DATA_DIR`"
)


def sorted_to_wnids_labels(wnids):
    """Permutation ``p`` with ``p[sorted_index] = wnids.txt line index`` (``np.argsort(wnids)``).

    Published class lists written in sorted-wnid (ImageFolder) order are mapped to archive labels by ``p[list]``.
    """
    wnids = np.asarray(wnids)
    if len(np.unique(wnids)) != len(wnids):
        raise ValueError("Tiny ImageNet: wnids must be unique")
    return np.argsort(wnids, kind="stable").astype(np.int64)


def wnids_to_sorted_labels(wnids):
    """Inverse permutation: ``q[wnids.txt line index] = sorted-wnid index``."""
    p = sorted_to_wnids_labels(wnids)
    q = np.empty_like(p)
    q[p] = np.arange(len(p))
    return q


def _check_label_order(label_order):
    if label_order not in LABEL_ORDERS:
        raise ValueError(f"Tiny ImageNet: label_order must be one of {LABEL_ORDERS}, got {label_order!r}")


def _local(filename, data_dir):
    return _source.resolve("Tiny ImageNet", filename, source="local", data_dir=data_dir, hint=PACK_HINT)[1]


def load_tinyimagenet_wnids(*, data_dir=None):
    """The 200 wnids in ``wnids.txt`` line order (from ``tinyimagenet_val.npz``), as a ``<U9`` array."""
    return _source.load_npz(_local(VAL_FILE, data_dir), ["wnids"], dataset="Tiny ImageNet")["wnids"]


def load_tinyimagenet(
    split="train", *, classes=None, indices=None, label_order="wnids", source="local", data_dir=None
):
    """Tiny ImageNet-200, 64x64 RGB (the 168 grayscale val images are converted to RGB).

    Args:
        split: ``"train"`` (100,000, sorted by class) or ``"val"`` (10,000, the usual test split).
        classes: optional class ids to keep, in ``label_order``; only the JPEGs of those classes are decoded.
        indices: optional positions in the split to keep.
        label_order: ``"wnids"`` (line in ``wnids.txt``) or ``"sorted"`` (sorted wnid, ImageFolder order);
            applies to ``classes`` and to the returned labels.
        source: ``"local"`` or ``"auto"`` (tensorflow-datasets has no Tiny ImageNet).
        data_dir: local data root; defaults to ``$KERAS_CROSR_DATA``.

    Returns:
        ``(x, y)``: float32 ``(n, 64, 64, 3)`` in [0, 1], int64 ``(n,)`` in 0..199.
    """
    _source.check_split(split, ("train", "val"), "Tiny ImageNet")
    _check_label_order(label_order)
    filename = TRAIN_DIR if split == "train" else VAL_FILE
    path = _source.resolve("Tiny ImageNet", filename, source=source, data_dir=data_dir, hint=PACK_HINT)[1]
    if split == "train":
        paths = [path / f"tinyimagenet_train_part{k}.npz" for k in range(TRAIN_PARTS)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise _source.DatasetNotFoundError(
                f"Tiny ImageNet: missing training parts {missing}; set {_source.ENV_VAR} or data_dir= to the "
                f"folder holding them ({_source.LAYOUT}); {PACK_HINT}"
            )
    else:
        paths = [path]
    wnids = _source.load_npz(paths[0], ["wnids"], dataset="Tiny ImageNet")["wnids"]
    if classes is not None and label_order == "sorted":
        classes = sorted_to_wnids_labels(wnids)[_images.check_classes(classes, NUM_CLASSES, "Tiny ImageNet")]
    labels = [_images.read_labels(p, split, dataset="Tiny ImageNet") for p in paths]
    all_labels = np.concatenate(labels)
    keep = _images.select(all_labels, classes, indices, num_classes=NUM_CLASSES, dataset="Tiny ImageNet")
    x = np.empty((len(keep), 64, 64, 3), dtype=np.float32)
    y = all_labels[keep]
    base, row = 0, 0
    for part_path, part_labels in zip(paths, labels):
        local = keep[(keep >= base) & (keep < base + len(part_labels))] - base
        base += len(part_labels)
        if local.size:
            part_out = x[row : row + len(local)]
            _images.decode_archive(part_path, split, local, size=64, out=part_out, dataset="Tiny ImageNet")
            row += len(local)
    if label_order == "sorted":
        y = wnids_to_sorted_labels(wnids)[y]
    return x, y


def _odin_test_images(mode, indices, path, data_dir):
    from keras_crosr.datasets.lsun import load_image_folder

    if path is not None:
        return load_image_folder(path, mode=mode, indices=indices)
    test_path = _local(TEST_FILE, data_dir)
    n = len(_source.load_npz(test_path, ["test_offsets"], dataset="ImageNet outliers")["test_offsets"]) - 1
    positions = _images.check_indices(n, indices, dataset="ImageNet outliers")
    if mode == "crop":
        corners = _source.load_npz(test_path, ["crop_yx"], dataset="ImageNet-crop")["crop_yx"]

        def transform(image, i):
            y0, x0 = corners[i]
            return image[y0 : y0 + 32, x0 : x0 + 32]

    else:
        from PIL import Image

        def transform(image, i):
            return np.asarray(Image.fromarray(image).resize((32, 32), Image.BILINEAR))

    return _images.decode_archive(test_path, "test", positions, size=32, transform=transform, dataset="ImageNet")


def load_imagenet_crop(*, indices=None, path=None, data_dir=None):
    """ODIN's "ImageNet (crop)" outliers for CIFAR-10: a 32x32 crop of each of the 10,000 Tiny ImageNet test images.

    Without ``path`` this is a **reconstruction**: the crop corners are the fixed ``crop_yx`` of
    ``tinyimagenet_test.npz`` (drawn with ``np.random.default_rng(0)``), not ODIN's own random crops, whose
    released files are not available offline; results on it must say so. With ``path``, the images of ODIN's
    released folder (``Imagenet``) are read instead (see :func:`keras_crosr.datasets.load_image_folder`).

    Returns:
        float32 ``(n, 32, 32, 3)`` in [0, 1] (``n`` = 10,000 or ``len(indices)``).
    """
    return _odin_test_images("crop", indices, path, data_dir)


def load_imagenet_resize(*, indices=None, path=None, data_dir=None):
    """ODIN's "ImageNet (resize)" outliers for CIFAR-10: the 10,000 Tiny ImageNet test images resized to 32x32.

    Without ``path`` this is a **reconstruction** from ``tinyimagenet_test.npz`` (Pillow bilinear, antialiased,
    the default filter of torchvision's ``Resize``), not ODIN's released files; results on it must say so. With
    ``path``, ODIN's released folder (``Imagenet_resize``) is read instead.

    Returns:
        float32 ``(n, 32, 32, 3)`` in [0, 1].
    """
    return _odin_test_images("resize", indices, path, data_dir)
