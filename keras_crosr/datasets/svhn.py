"""SVHN (Street View House Numbers, cropped digits, Netzer et al. 2011).

Local: the official ``train_32x32.mat`` / ``test_32x32.mat`` (http://ufldl.stanford.edu/housenumbers/) placed
in the data root, read with ``scipy.io.loadmat`` (``X`` is ``(32, 32, 3, n)`` uint8, ``y`` is ``(n, 1)`` with
digit 0 stored as 10, mapped here to 0). Online: tensorflow-datasets ``svhn_cropped``. SVHN is not available
offline on the project's machines.
"""

import numpy as np

from keras_crosr.datasets import _images
from keras_crosr.datasets import _source


def _read_mat(path):
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        mat = loadmat(path)
    except (MatReadError, NotImplementedError, ValueError, OSError, TypeError) as err:
        raise ValueError(f"SVHN: damaged or unreadable .mat file {path}: {err}") from err
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"SVHN: {path} lacks the arrays 'X' and 'y' of the official *_32x32.mat files")
    x, y = mat["X"], mat["y"].reshape(-1).astype(np.int64)
    if x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise ValueError(f"SVHN: {path}: X has shape {x.shape}, expected (32, 32, 3, {len(y)})")
    if y.min() < 1 or y.max() > 10:
        raise ValueError(f"SVHN: {path}: labels must be 1..10 (10 = digit 0), got [{y.min()}, {y.max()}]")
    return np.moveaxis(x, 3, 0), y % 10


def load_svhn(split="train", *, classes=None, source="auto", data_dir=None):
    """SVHN cropped digits.

    Args:
        split: ``"train"`` (73,257), ``"test"`` (26,032) or ``"extra"`` (531,131).
        classes: optional digits to keep (labels are left unchanged).
        source: ``"auto"``, ``"local"`` (``<data_dir>/<split>_32x32.mat``) or ``"tfds"`` (``svhn_cropped``).
        data_dir: local data root; defaults to ``$KERAS_CROSR_DATA``.

    Returns:
        ``(x, y)``: float32 ``(n, 32, 32, 3)`` in [0, 1], int64 ``(n,)`` in 0..9.
    """
    _source.check_split(split, ("train", "test", "extra"), "SVHN")
    kind, where = _source.resolve(
        "SVHN", f"{split}_32x32.mat", source=source, data_dir=data_dir, tfds_name="svhn_cropped"
    )
    if kind == "local":
        x, y = _read_mat(where)
    else:
        arrays = _source.tfds_arrays(where, split, ["image", "label"], dataset="SVHN", filename=f"{split}_32x32.mat")
        x, y = arrays["image"], arrays["label"].astype(np.int64)
    if classes is not None:
        keep = _images.select(y, classes, num_classes=10, dataset="SVHN")
        x, y = x[keep], y[keep]
    # The local .mat array is column-major and moveaxis leaves it strided, a layout that both the selection
    # and the float conversion keep: make it C-contiguous while it is uint8 (a no-op for the tfds arrays).
    return _images.to_float(np.ascontiguousarray(x)), y
