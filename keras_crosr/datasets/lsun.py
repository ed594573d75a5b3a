"""Image folders the user supplies, e.g. ODIN's released outlier sets LSUN-crop / LSUN-resize (Liang et al. 2018).

ODIN's archives (``LSUN.tar.gz``, ``LSUN_resize.tar.gz``, ``Imagenet.tar.gz``, ``Imagenet_resize.tar.gz`` from
https://github.com/facebookresearch/odin) unpack to a folder of JPEG files, each in a sub-folder such as
``LSUN/test/``. They are not available offline: extract them yourself and pass the folder, or put ``LSUN`` /
``LSUN_resize`` under the data root. Images are read in sorted relative-path order.
"""

from pathlib import Path

import numpy as np

from keras_crosr.datasets import _images
from keras_crosr.datasets import _source

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
MODES = ("crop", "resize")


def list_images(path):
    """Image files under ``path`` (recursively), sorted by relative path."""
    path = Path(path)
    if not path.is_dir():
        raise _source.DatasetNotFoundError(f"image folder not found: {path}")
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {path}")
    return files


def _fit(image, mode, size, name):
    from PIL import Image

    h, w = image.shape[:2]
    if (h, w) == (size, size):
        return image
    if mode == "resize":
        return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
    if h < size or w < size:
        raise ValueError(f"{name}: image {h}x{w} is smaller than the {size}x{size} crop")
    top, left = (h - size) // 2, (w - size) // 2
    return image[top : top + size, left : left + size]


def load_image_folder(path, *, mode="crop", size=32, indices=None):
    """Reads every image under a folder into one array.

    Args:
        path: the folder (searched recursively for .jpg/.jpeg/.png/.bmp).
        mode: ``"crop"``: images larger than ``size`` are centre-cropped; ``"resize"``: resized (Pillow
            bilinear, antialiased). Images of exactly ``size x size`` are kept as they are.
        size: output height and width.
        indices: optional positions in the sorted file list.

    Returns:
        float32 ``(n, size, size, 3)`` in [0, 1] (grayscale images converted to RGB).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    files = list_images(path)
    keep = _images.check_indices(len(files), indices, dataset=str(path))
    out = np.empty((len(keep), size, size, 3), dtype=np.float32)
    for row, i in enumerate(keep):
        image = _images.decode_jpeg(files[i].read_bytes(), dataset=str(files[i]))
        np.divide(_fit(image, mode, size, files[i]), np.float32(255.0), out=out[row], dtype=np.float32)
    return out


def _lsun(folder, mode, path, data_dir, indices):
    if path is None:
        path = _source.resolve(f"LSUN ({mode})", folder, source="local", data_dir=data_dir)[1]
    return load_image_folder(path, mode=mode, indices=indices)


def load_lsun_crop(path=None, *, data_dir=None, indices=None):
    """ODIN's "LSUN (crop)" outliers: 32x32 crops of LSUN test images (centre crop when larger than 32x32).

    Args:
        path: the extracted ``LSUN`` folder; defaults to ``<data_dir>/LSUN``.

    Returns:
        float32 ``(n, 32, 32, 3)`` in [0, 1] (ODIN's release holds 10,000).
    """
    return _lsun("LSUN", "crop", path, data_dir, indices)


def load_lsun_resize(path=None, *, data_dir=None, indices=None):
    """ODIN's "LSUN (resize)" outliers: LSUN test images resized to 32x32.

    Args:
        path: the extracted ``LSUN_resize`` folder; defaults to ``<data_dir>/LSUN_resize``.

    Returns:
        float32 ``(n, 32, 32, 3)`` in [0, 1] (ODIN's release holds 10,000).
    """
    return _lsun("LSUN_resize", "resize", path, data_dir, indices)
