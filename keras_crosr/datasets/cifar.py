"""CIFAR-10 and CIFAR-100 (the unknowns of the CIFAR+10 / CIFAR+50 class-separation protocols).

Local archives use the JPEG-bytes layout of keras-crosr's ``DATA.md``: ``<split>_jpeg`` (all JPEG files
joined), ``<split>_offsets`` (n + 1 int64) and ``y_<split>``. The offline ``cifar10_jpeg.npz`` holds the real
CIFAR-10 images re-encoded as JPEG quality 75, so pixels differ slightly from the original pickles; it is sorted by
(split, class, file name). ``cifar100_jpeg.npz`` (not shipped offline) is read in the same layout, fine labels.

Memory: the JPEGs are decoded once, straight into the float32 output, so the peak is the compressed bytes plus
the output: measured (``benchmarks/bench_datasets.py``) 633 MiB for the 50,000 training images (586 MiB output)
and 128 MiB for the 10,000 test images (117 MiB output). Pass ``classes=`` or ``indices=`` to decode only part
of a split.
"""

import numpy as np

from keras_crosr.datasets import _images
from keras_crosr.datasets import _source

CIFAR10_CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def _load_cifar(dataset, filename, tfds_name, num_classes, split, classes, indices, source, data_dir):
    _source.check_split(split, ("train", "test"), dataset)
    kind, where = _source.resolve(dataset, filename, source=source, data_dir=data_dir, tfds_name=tfds_name)

    if kind == "local":
        labels = _images.read_labels(where, split, dataset=dataset)
        keep = _images.select(labels, classes, indices, num_classes=num_classes, dataset=dataset)
        return _images.decode_archive(where, split, keep, size=32, dataset=dataset), labels[keep]
    arrays = _source.tfds_arrays(where, split, ["image", "label"], dataset=dataset, filename=filename)
    keep = _images.select(arrays["label"], classes, indices, num_classes=num_classes, dataset=dataset)
    return _images.to_float(arrays["image"][keep]), arrays["label"][keep].astype(np.int64)


def load_cifar10(split="train", *, classes=None, indices=None, source="auto", data_dir=None):
    """CIFAR-10.

    Args:
        split: ``"train"`` (50,000) or ``"test"`` (10,000).
        classes: optional class ids to keep (labels are left unchanged; order of
            ``CIFAR10_CLASS_NAMES``).
        indices: optional positions in the split to keep (decoded alone; the result is in split order).
        source: ``"auto"``, ``"local"`` (``<data_dir>/cifar10_jpeg.npz``) or ``"tfds"`` (``cifar10``).
        data_dir: local data root; defaults to ``$KERAS_CROSR_DATA``.

    Returns:
        ``(x, y)``: float32 ``(n, 32, 32, 3)`` in [0, 1], int64 ``(n,)`` in 0..9, in the order of the source (the
        offline ``cifar10_jpeg.npz`` is sorted by class: ``x[:1000]`` is all airplanes; shuffle, or pass
        random ``indices=``, to take part of it).
    """
    return _load_cifar("CIFAR-10", "cifar10_jpeg.npz", "cifar10", 10, split, classes, indices, source, data_dir)


def load_cifar100(split="train", *, classes=None, indices=None, source="auto", data_dir=None):
    """CIFAR-100 with its 100 fine labels (the unknown classes of CIFAR+10 / CIFAR+50).

    Arguments as :func:`load_cifar10`; the local file is ``cifar100_jpeg.npz`` (same layout as the CIFAR-10
    archive; not part of the offline data), the tfds name ``cifar100``.

    Returns:
        ``(x, y)``: float32 ``(n, 32, 32, 3)`` in [0, 1], int64 ``(n,)`` in 0..99.
    """
    return _load_cifar(
        "CIFAR-100", "cifar100_jpeg.npz", "cifar100", 100, split, classes, indices, source, data_dir
    )
