"""Builds the embedded sample ``keras_crosr/datasets/sample/mnist_omniglot.npz`` from the real offline data.

    python -m keras_crosr.datasets.make_sample [--data-dir DIR]

Picks, with ``np.random.default_rng(0)``, 500 MNIST training and 100 MNIST test digits per class and 2,000
Omniglot evaluation characters (:func:`keras_crosr.datasets.mnist.omniglot_indices` with ``seed=0``), keeps
them as uint8 together with their source positions, and writes them with ``np.savez_compressed``.
"""

import argparse
from pathlib import Path

import numpy as np

from keras_crosr.datasets import _source
from keras_crosr.datasets.mnist import MNIST_FILE
from keras_crosr.datasets.mnist import OMNIGLOT_FILE
from keras_crosr.datasets.mnist import omniglot_indices
from keras_crosr.datasets.embedded import SAMPLE_PATH

TRAIN_PER_CLASS = 500
TEST_PER_CLASS = 100
OMNIGLOT_COUNT = 2000


def balanced_indices(labels, per_class, rng):
    """``per_class`` positions of each label drawn without replacement, sorted."""
    picks = [rng.choice(np.flatnonzero(labels == c), size=per_class, replace=False) for c in np.unique(labels)]
    return np.sort(np.concatenate(picks))


def build_sample(data_dir=None, path=SAMPLE_PATH):
    """Writes the sample archive to ``path`` and returns its size in bytes."""
    mnist_path = _source.resolve("MNIST", MNIST_FILE, source="local", data_dir=data_dir)[1]
    omniglot_path = _source.resolve("Omniglot", OMNIGLOT_FILE, source="local", data_dir=data_dir)[1]
    mnist = _source.load_npz(mnist_path, ["x_train", "y_train", "x_test", "y_test"], dataset="MNIST")
    omniglot = _source.load_npz(omniglot_path, ["x_test"], dataset="Omniglot")["x_test"]
    rng = np.random.default_rng(0)
    train_idx = balanced_indices(mnist["y_train"], TRAIN_PER_CLASS, rng)
    test_idx = balanced_indices(mnist["y_test"], TEST_PER_CLASS, rng)
    omniglot_idx = omniglot_indices(OMNIGLOT_COUNT, seed=0, total=len(omniglot))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        x_train=mnist["x_train"][train_idx],
        y_train=mnist["y_train"][train_idx],
        train_indices=train_idx,
        x_test=mnist["x_test"][test_idx],
        y_test=mnist["y_test"][test_idx],
        test_indices=test_idx,
        omniglot=omniglot[omniglot_idx],
        omniglot_indices=omniglot_idx,
    )
    return Path(path).stat().st_size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help=f"data root (default: ${_source.ENV_VAR})")
    parser.add_argument("--output", default=str(SAMPLE_PATH))
    args = parser.parse_args(argv)
    size = build_sample(args.data_dir, args.output)
    print(f"wrote {args.output} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
