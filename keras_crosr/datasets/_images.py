"""Shared image helpers: uint8 -> float32, zero-padding, JPEG-bytes decoding, class / index selection."""

import io

import numpy as np

from keras_crosr.datasets import _source


def to_float(images):
    """uint8 images -> float32 in [0, 1], same shape."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got dtype {images.dtype}")
    out = images.astype(np.float32)
    out /= np.float32(255.0)
    return out


def pad_images(images, size):
    """Zero-pads images ``(n, H, W, C)`` to ``size = (H', W')`` around their centre (an odd margin puts the extra
    row / column at the bottom / right), e.g. MNIST's 28x28 digits to a 32x32 network's input."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected images of shape (n, H, W, C), got shape {images.shape}")
    height, width = (int(s) for s in size)
    if height < images.shape[1] or width < images.shape[2]:
        raise ValueError(f"cannot pad images of size {images.shape[1:3]} to the smaller size {(height, width)}")
    top, left = (height - images.shape[1]) // 2, (width - images.shape[2]) // 2
    margins = ((0, 0), (top, height - images.shape[1] - top), (left, width - images.shape[2] - left), (0, 0))
    return np.pad(images, margins)


def select(labels, classes=None, indices=None, *, num_classes, dataset):
    """Positions to keep: ``indices`` (in split order) intersected with the samples whose label is in ``classes``.

    Returns:
        sorted int64 array of positions into the split.
    """
    keep = check_indices(len(labels), indices, dataset=dataset)
    if classes is not None:
        classes = check_classes(classes, num_classes, dataset)
        keep = keep[np.isin(labels[keep], classes)]
    return keep


def check_indices(n, indices=None, *, dataset):
    """Sorted positions in ``[0, n)``: all of them, or ``indices`` (distinct, any order) validated against ``n``."""
    if indices is None:
        return np.arange(n, dtype=np.int64)
    indices = np.asarray(indices).reshape(-1)
    if indices.size and not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"{dataset}: indices must be integers, got dtype {indices.dtype}")
    indices = indices.astype(np.int64)
    if indices.size and (indices.min() < 0 or indices.max() >= n):
        raise ValueError(f"{dataset}: indices must lie in [0, {n}), got range [{indices.min()}, {indices.max()}]")
    unique, counts = np.unique(indices, return_counts=True)
    if len(unique) < len(indices):  # a position is kept once: a repeated one would silently be dropped
        raise ValueError(f"{dataset}: indices must not repeat; repeated: {unique[counts > 1][:10].tolist()}")
    return unique


def check_classes(classes, num_classes, dataset):
    """Validates a class list: integers in ``[0, num_classes)``, no duplicates. Returns an int64 array."""
    arr = np.asarray(list(classes))
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"{dataset}: classes must be a 1-D list of integers, got {list(classes)!r}")
    arr = arr.astype(np.int64)
    bad = arr[(arr < 0) | (arr >= num_classes)]
    if bad.size:
        raise ValueError(f"{dataset}: classes {bad.tolist()} out of range [0, {num_classes})")
    values, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"{dataset}: duplicate classes {values[counts > 1].tolist()} in {arr.tolist()}")
    return arr


def decode_jpeg(data, *, dataset):
    """One encoded image (JPEG, PNG, ... bytes) -> uint8 RGB array ``(H, W, 3)``; grayscale is converted to RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{dataset}: damaged or unreadable image data: {err}") from err


def read_labels(path, split, *, dataset):
    """The ``y_<split>`` labels of a JPEG-bytes archive (read alone, without the JPEG bytes), int64."""
    return _source.load_npz(path, [f"y_{split}"], dataset=dataset)[f"y_{split}"].astype(np.int64)


def decode_archive(path, split, positions, *, size, transform=None, out=None, dataset):
    """Decodes images ``positions`` of the ``<split>_jpeg`` / ``<split>_offsets`` arrays of a JPEG-bytes archive.

    Returns:
        float32 ``(len(positions), size, size, 3)`` in [0, 1] (``out`` when given); see :func:`decode_jpeg_bytes`.
    """
    keys = [f"{split}_jpeg", f"{split}_offsets"]
    arrays = _source.load_npz(path, keys, dataset=dataset)
    jpeg, offsets = arrays[keys[0]], arrays[keys[1]]
    if offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != len(jpeg) or (np.diff(offsets) <= 0).any():
        raise ValueError(f"{dataset}: damaged archive {path}: offsets do not index the {len(jpeg)} JPEG bytes")
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size and positions.max() >= len(offsets) - 1:
        raise ValueError(f"{dataset}: archive {path} holds {len(offsets) - 1} images, asked for {positions.max()}")
    return decode_jpeg_bytes(jpeg, offsets, positions, size=size, transform=transform, out=out, dataset=dataset)


def decode_jpeg_bytes(jpeg, offsets, positions, *, size, transform=None, out=None, dataset):
    """Decodes images ``positions`` of a JPEG-bytes archive straight into one float32 array.

    Each image is decoded, optionally transformed (``transform(uint8 HWC, position) -> uint8 HWC``), and
    written into a preallocated ``(len(positions), size, size, 3)`` float32 output (``out``, or a new array), so
    the peak memory is the compressed bytes plus the float32 output (4 bytes per pixel channel), never a second
    full-size copy.
    """
    if out is None:
        out = np.empty((len(positions), size, size, 3), dtype=np.float32)
    elif out.shape != (len(positions), size, size, 3) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {(len(positions), size, size, 3)}, got {out.dtype} {out.shape}")
    scale = np.float32(255.0)
    for row, i in enumerate(positions):
        image = decode_jpeg(jpeg[offsets[i] : offsets[i + 1]].tobytes(), dataset=f"{dataset} image {i}")
        if transform is not None:
            image = transform(image, i)
        if image.shape != (size, size, 3):
            raise ValueError(f"{dataset}: image {i} has shape {image.shape}, expected {(size, size, 3)}")
        np.divide(image, scale, out=out[row], dtype=np.float32)
    return out
