"""A small real sample shipped inside the package, so examples and tests run offline without any data root.

``sample/mnist_omniglot.npz`` (1.4 MB, built by ``python -m keras_crosr.datasets.make_sample``) holds:

- 5,000 MNIST training digits (500 per class) and 1,000 MNIST test digits (100 per class), drawn with
  ``np.random.default_rng(0)``. MNIST: Yann LeCun, Corinna Cortes and Christopher J.C. Burges,
  http://yann.lecun.com/exdb/mnist/, licence CC BY-SA 3.0.
- 2,000 characters of the Omniglot evaluation set (Lake, Salakhutdinov and Tenenbaum, Science 2015,
  https://github.com/brendenlake/omniglot, licence MIT), 28x28 in MNIST polarity like
  :func:`keras_crosr.datasets.load_omniglot`.

The source positions of every image are stored too (``train_indices``, ``test_indices``, ``omniglot_indices``).
"""

from pathlib import Path

import numpy as np

from keras_crosr.datasets import _images
from keras_crosr.datasets import _source

SAMPLE_PATH = Path(__file__).resolve().parent / "sample" / "mnist_omniglot.npz"
_KEYS = ("x_train", "y_train", "x_test", "y_test", "omniglot")


def load_sample(path=SAMPLE_PATH):
    """The embedded MNIST + Omniglot sample.

    Returns:
        dict with ``"x_train"`` float32 ``(5000, 28, 28, 1)``, ``"y_train"`` int64 ``(5000,)``,
        ``"x_test"`` float32 ``(1000, 28, 28, 1)``, ``"y_test"`` int64 ``(1000,)`` and ``"omniglot"``
        float32 ``(2000, 28, 28, 1)``; images in [0, 1].
    """
    arrays = _source.load_npz(path, list(_KEYS), dataset="embedded sample")
    return {k: (v.astype(np.int64) if k.startswith("y_") else _images.to_float(v)) for k, v in arrays.items()}
