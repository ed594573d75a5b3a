"""Data sets of the CROSR paper as numpy arrays, plus a ``tf.data`` helper and a small embedded sample.

Images are float32 in [0, 1], NHWC, with int64 labels; text is int32 token ids ``(n, max_length)`` with 0 =
padding and 1 = out-of-vocabulary. The loaders of data sets that tensorflow-datasets serves take
``source="auto" | "tfds" | "local"``; the others (Noise, the ImageNet and LSUN crops and resizes) are synthetic
or local only and take no ``source``. Local files are read from ``data_dir=`` (default ``$KERAS_CROSR_DATA``),
laid out as keras-crosr's ``DATA.md`` describes. The loaders never write into ``data_dir``;
:mod:`keras_crosr.datasets.pack_tinyimagenet` writes the Tiny ImageNet files there from the official download.
"""

from keras_crosr.datasets._source import ENV_VAR
from keras_crosr.datasets._source import DatasetNotFoundError
from keras_crosr.datasets._images import pad_images
from keras_crosr.datasets.cifar import CIFAR10_CLASS_NAMES
from keras_crosr.datasets.cifar import load_cifar10
from keras_crosr.datasets.cifar import load_cifar100
from keras_crosr.datasets.dbpedia import Vocabulary
from keras_crosr.datasets.dbpedia import load_dbpedia
from keras_crosr.datasets.dbpedia import load_dbpedia_text
from keras_crosr.datasets.dbpedia import tokenize
from keras_crosr.datasets.embedded import load_sample
from keras_crosr.datasets.jpeg_pipeline import cifar10_tf_dataset
from keras_crosr.datasets.jpeg_pipeline import jpeg_archive_dataset
from keras_crosr.datasets.jpeg_pipeline import tinyimagenet_tf_dataset
from keras_crosr.datasets.lsun import load_image_folder
from keras_crosr.datasets.lsun import load_lsun_crop
from keras_crosr.datasets.lsun import load_lsun_resize
from keras_crosr.datasets.mnist import load_mnist
from keras_crosr.datasets.mnist import load_mnist_noise
from keras_crosr.datasets.mnist import load_noise
from keras_crosr.datasets.mnist import load_omniglot
from keras_crosr.datasets.mnist import make_mnist_noise
from keras_crosr.datasets.mnist import superimpose
from keras_crosr.datasets.pipeline import make_tf_dataset
from keras_crosr.datasets.svhn import load_svhn
from keras_crosr.datasets.tinyimagenet import load_imagenet_crop
from keras_crosr.datasets.tinyimagenet import load_imagenet_resize
from keras_crosr.datasets.tinyimagenet import load_tinyimagenet
from keras_crosr.datasets.tinyimagenet import load_tinyimagenet_wnids

LOADERS = {
    "mnist": load_mnist,
    "omniglot": load_omniglot,
    "noise": load_noise,
    "mnist_noise": load_mnist_noise,
    "cifar10": load_cifar10,
    "cifar100": load_cifar100,
    "imagenet_crop": load_imagenet_crop,
    "imagenet_resize": load_imagenet_resize,
    "lsun_crop": load_lsun_crop,
    "lsun_resize": load_lsun_resize,
    "svhn": load_svhn,
    "tinyimagenet": load_tinyimagenet,
    "dbpedia": load_dbpedia,
}


def load(name, **kwargs):
    """Loads a data set by name (a key of ``LOADERS``), passing ``kwargs`` to its loader."""
    if name not in LOADERS:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(sorted(LOADERS))}")
    return LOADERS[name](**kwargs)
