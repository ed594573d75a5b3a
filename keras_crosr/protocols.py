"""Open-set evaluation protocols of the paper (section 5), deterministic by seed.

- **Outlier addition** (section 5, "MNIST" and "CIFAR-10"): the known test set plus outliers from another
  source, 1:1 by default, all outliers one "unknown" class with label ``N``.
- **Class separation** (section 5, Table 5): some classes known, the rest unknown, over five trials; the paper
  "exactly followed the evaluation protocols used in [27]" (Neal et al., ECCV 2018) without listing the trials.
  ``splits="neal"`` (default) takes the trials of Neal et al.'s released code (:data:`NEAL_UNKNOWN`) for MNIST,
  SVHN and CIFAR-10; ``splits="arpl"`` the five-trial lists the later literature distributes
  (:data:`ARPL_SPLITS`), which also serve Tiny ImageNet and CIFAR+N under ``"neal"`` (Neal et al.'s code draws
  those at random, in an order that cannot be recovered).
- **DBpedia** (section 5, "DBpedia"): 4 random known classes and 10, 8, 4 or 0 random unknown classes.

Every protocol returns an :class:`OpenSetSplit`: known classes relabelled ``0..K-1`` in the order given, the
unknowns labelled ``K``.
"""

import dataclasses

import numpy as np

from keras_crosr import datasets
from keras_crosr.datasets._images import check_classes

# The unknown classes of the five trials of Neal et al.'s released code (github.com/lwneal/counterfactual-open-set,
# generativeopenset/datasets/download_cifar10.py and download_svhn.py; the MNIST script of its forks says "Splits to
# match the CIFAR and SVHN experiments"): the same for MNIST, SVHN and CIFAR-10, the other 6 classes known.
NEAL_UNKNOWN = [[3, 6, 7, 8], [1, 2, 4, 6], [2, 3, 4, 9], [0, 1, 2, 6], [4, 5, 6, 9]]
NEAL_DATASETS = ("mnist", "svhn", "cifar10")
# The five-trial class-separation lists of iCGY96/ARPL `split.py` (`splits_2020`), attributed to Neal et al. by
# the later literature but not those of Neal et al.'s code; identical lists are in sgvaze/osr_closed_set_all_you_need
# `data/open_set_splits/osr_splits.py`. Their SVHN and CIFAR-10 trials 0 and 1 share the same known classes (in
# another order), and so do the CIFAR+N trials 1 and 2.
# "cifar+N": the known lists are CIFAR-10 classes ("cifar100" in ARPL), the unknown lists CIFAR-100 classes
# ("cifar100-10" / "cifar100-50"). "tinyimagenet" ids are in sorted-wnid (torchvision ImageFolder) order.
_CIFAR_PLUS_KNOWN = [[4, 7, 9, 1], [6, 7, 1, 9], [9, 6, 1, 7], [6, 4, 9, 1], [1, 0, 9, 8]]
ARPL_SPLITS = {
    "mnist": {
        "num_classes": 10,
        "known": [[2, 4, 5, 9, 8, 3], [3, 2, 6, 9, 4, 0], [5, 8, 3, 2, 4, 6], [3, 7, 8, 4, 0, 5], [6, 3, 4, 9, 8, 2]],
    },
    "svhn": {
        "num_classes": 10,
        "known": [[5, 3, 7, 2, 8, 6], [3, 8, 7, 6, 2, 5], [8, 9, 4, 7, 2, 1], [3, 8, 2, 5, 0, 6], [4, 9, 2, 7, 1, 0]],
    },
    "cifar10": {
        "num_classes": 10,
        "known": [[0, 6, 4, 9, 1, 7], [7, 6, 4, 9, 0, 1], [1, 5, 7, 3, 9, 4], [8, 6, 1, 9, 0, 7], [2, 4, 1, 7, 9, 6]],
    },
    "cifar+10": {
        "num_classes": 10,
        "num_unknown_classes": 100,
        "known": _CIFAR_PLUS_KNOWN,
        "unknown": [
            [30, 25, 1, 9, 8, 0, 46, 52, 49, 71],
            [41, 9, 49, 40, 73, 60, 48, 30, 95, 71],
            [8, 9, 49, 40, 73, 60, 48, 95, 30, 71],
            [95, 60, 30, 73, 46, 49, 68, 99, 8, 71],
            [33, 2, 3, 97, 46, 21, 64, 63, 88, 43],
        ],
    },
    "cifar+50": {
        "num_classes": 10,
        "num_unknown_classes": 100,
        "known": _CIFAR_PLUS_KNOWN,
        "unknown": [
            [27, 94, 29, 77, 88, 26, 69, 48, 75, 5, 59, 93, 39, 57, 45, 40, 78, 20, 98, 47, 66, 70, 91, 76, 41,
             83, 99, 32, 53, 72, 2, 95, 21, 73, 84, 68, 35, 11, 55, 60, 30, 25, 1, 9, 8, 0, 46, 52, 49, 71],
            [65, 97, 86, 24, 45, 67, 2, 3, 91, 98, 79, 29, 62, 82, 33, 76, 0, 35, 5, 16, 54, 11, 99, 52, 85,
             1, 25, 66, 28, 84, 23, 56, 75, 46, 21, 72, 55, 68, 8, 69, 41, 9, 49, 40, 73, 60, 48, 30, 95, 71],
            [20, 83, 65, 97, 94, 2, 93, 16, 67, 29, 62, 33, 24, 98, 5, 86, 35, 54, 0, 91, 52, 66, 85, 84, 56,
             11, 1, 76, 25, 55, 21, 99, 72, 41, 23, 75, 28, 68, 69, 46, 8, 9, 49, 40, 73, 60, 48, 95, 30, 71],
            [92, 82, 77, 64, 5, 33, 62, 56, 70, 0, 20, 28, 67, 14, 84, 53, 91, 29, 85, 2, 52, 83, 75, 35, 11,
             21, 72, 98, 55, 1, 41, 76, 25, 66, 69, 9, 48, 54, 40, 23, 95, 60, 30, 73, 46, 49, 68, 99, 8, 71],
            [47, 6, 19, 0, 62, 93, 59, 65, 54, 70, 34, 55, 23, 38, 72, 76, 53, 31, 78, 96, 77, 27, 92, 18, 82,
             50, 98, 32, 1, 75, 83, 4, 51, 35, 80, 11, 74, 66, 36, 42, 33, 2, 3, 97, 46, 21, 64, 63, 88, 43],
        ],
    },
    "tinyimagenet": {
        "num_classes": 200,
        "known": [
            [108, 147, 17, 58, 193, 123, 72, 144, 75, 167, 134, 14, 81, 171, 44, 197, 152, 66, 1, 133],
            [198, 161, 91, 59, 57, 134, 61, 184, 90, 35, 29, 23, 199, 38, 133, 19, 186, 18, 85, 67],
            [177, 0, 119, 26, 78, 80, 191, 46, 134, 92, 31, 152, 27, 60, 114, 50, 51, 133, 162, 93],
            [98, 36, 158, 177, 189, 157, 170, 191, 82, 196, 138, 166, 43, 13, 152, 11, 75, 174, 193, 190],
            [95, 6, 145, 153, 0, 143, 31, 23, 189, 81, 20, 21, 89, 26, 36, 170, 102, 177, 108, 169],
        ],
    },
}  # fmt: skip
NUM_TRIALS = 5
SPLITS = ("neal", "arpl")
SPLITS_BEFORE_CHOICE = "arpl"  # the lists of the class-separation runs recorded before `splits` could be chosen
DBPEDIA_NUM_KNOWN = 4
DBPEDIA_NUM_UNKNOWN = (10, 8, 4, 0)  # the paper's 4/14, 4/12, 4/8 and 4/4 settings
OUTLIER_SETS = {
    "mnist": ("omniglot", "mnist_noise", "noise"),
    "cifar10": ("imagenet_crop", "imagenet_resize", "lsun_crop", "lsun_resize"),
}


@dataclasses.dataclass(frozen=True, eq=False)
class OpenSetSplit:
    """Arrays of one open-set evaluation.

    Attributes:
        x_train, y_train: known-class training data, labels in ``0..K-1`` (``None`` when not loaded).
        x_test_known, y_test_known: known-class test data, labels in ``0..K-1``.
        x_test_unknown: unknown test data (labelled ``K`` by ``y_test_unknown`` / ``y_test``).
        known_classes: original ids of the known classes; known class ``known_classes[i]`` has label ``i``.
        unknown_classes: original ids of the unknown classes (empty for outlier addition).
        name: description of the protocol, e.g. ``"mnist trial 0"``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test_known: np.ndarray
    y_test_known: np.ndarray
    x_test_unknown: np.ndarray
    known_classes: np.ndarray
    unknown_classes: np.ndarray
    name: str = ""

    @property
    def num_known(self):
        """K, the number of known classes (also the unknown label)."""
        return len(self.known_classes)

    @property
    def y_test_unknown(self):
        """``(len(x_test_unknown),)`` int64, all ``K`` (the unknown label)."""
        return np.full(len(self.x_test_unknown), self.num_known, dtype=np.int64)

    @property
    def x_test(self):
        """Known then unknown test samples."""
        return np.concatenate([self.x_test_known, self.x_test_unknown])

    @property
    def y_test(self):
        """Labels of :attr:`x_test`: ``0..K-1`` for knowns, ``K`` for unknowns."""
        return np.concatenate([self.y_test_known, self.y_test_unknown])


def _check_pair(x, y, name):
    x, y = np.asarray(x), np.asarray(y)
    if y.ndim != 1 or len(x) != len(y):
        raise ValueError(f"{name}: x has {len(x)} samples and y has shape {y.shape}; expected y of shape ({len(x)},)")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}: labels must be integers, got dtype {y.dtype}")
    return x, y.astype(np.int64)


def outlier_addition(
    x_test, y_test, x_outliers, *, x_train=None, y_train=None, num_classes=None, ratio=1.0, seed=0,
    name="outlier addition",
):
    """Known test set plus outliers, all outliers labelled ``num_classes``.

    Args:
        x_test, y_test: the known test set ``(n, *sample_shape)`` and its labels ``(n,)`` in ``0..N-1``.
        x_outliers: the outlier pool ``(m, *sample_shape)``.
        x_train, y_train: optional training data ``(n_train, *sample_shape)`` / ``(n_train,)``, passed through.
        num_classes: N; defaults to ``max(label) + 1``.
        ratio: outliers per known test sample (the paper's 1:1 is ``1.0``). When the pool is larger, the
            outliers are drawn with ``np.random.default_rng(seed)`` without replacement (kept in pool order).
        seed: subsampling seed.

    Returns:
        :class:`OpenSetSplit` with ``round(ratio * len(x_test))`` unknowns.
    """
    x_test, y_test = _check_pair(x_test, y_test, "known test set")
    x_outliers = np.asarray(x_outliers)
    if x_outliers.shape[1:] != x_test.shape[1:]:
        raise ValueError(f"outliers have sample shape {x_outliers.shape[1:]}, the test set {x_test.shape[1:]}")
    if x_train is not None:
        x_train, y_train = _check_pair(x_train, y_train, "training set")
    labels = [y_test] if y_train is None else [y_test, y_train]
    if num_classes is None:
        num_classes = int(max(y.max() for y in labels)) + 1
    if any(y.size and (y.min() < 0 or y.max() >= num_classes) for y in labels):
        raise ValueError(f"labels must lie in [0, {num_classes})")
    if ratio <= 0:
        raise ValueError(f"ratio must be positive, got {ratio}")
    n_out = int(round(ratio * len(x_test)))
    if n_out > len(x_outliers):
        raise ValueError(
            f"{n_out} outliers needed (ratio {ratio} x {len(x_test)} test samples), only {len(x_outliers)}"
        )
    if n_out < len(x_outliers):
        x_outliers = x_outliers[np.sort(np.random.default_rng(seed).choice(len(x_outliers), n_out, replace=False))]
    return OpenSetSplit(
        x_train, y_train, x_test, y_test, x_outliers, np.arange(num_classes), np.empty(0, np.int64), name
    )


def _relabel(y, classes):
    lookup = np.full(int(max(y.max(initial=0), classes.max(initial=0))) + 1, -1, dtype=np.int64)
    lookup[classes] = np.arange(len(classes))
    return lookup[y]


def class_separation(
    x_train, y_train, x_test, y_test, known_classes, unknown_classes=None, *, num_classes=None, x_unknown=None,
    y_unknown=None, num_unknown_classes=None, name="class separation",
):
    """Known classes vs unknown classes.

    Args:
        x_train, y_train, x_test, y_test: a labelled data set, samples ``(n, *sample_shape)`` and labels ``(n,)``
            in ``0..num_classes-1``.
        known_classes: ids of the known classes; ``known_classes[i]`` gets label ``i``.
        unknown_classes: ids of the unknown classes; defaults to all classes that are not known.
        num_classes: number of classes of the data set; defaults to ``max(label) + 1``.
        x_unknown, y_unknown: optional second data set the unknowns come from (CIFAR+N: CIFAR-100 test),
            ``(m, *sample_shape)`` / ``(m,)``, with ``num_unknown_classes`` classes; ``unknown_classes`` then
            index its labels.
        num_unknown_classes: number of classes of ``y_unknown``; defaults to ``max(y_unknown) + 1``.

    Returns:
        :class:`OpenSetSplit`: training and known test data of the known classes, unknown test data of the
        unknown classes (from ``x_test``, or from ``x_unknown`` when given).
    """
    x_train, y_train = _check_pair(x_train, y_train, "training set")
    x_test, y_test = _check_pair(x_test, y_test, "test set")
    if num_classes is None:
        num_classes = int(max(y_train.max(), y_test.max())) + 1
    known = check_classes(known_classes, num_classes, "known_classes")
    if len(known) == 0:
        raise ValueError("known_classes must not be empty")
    if x_unknown is None:
        pool_x, pool_y, pool_classes = x_test, y_test, num_classes
        default_unknown = np.setdiff1d(np.arange(num_classes), known)
    else:
        pool_x, pool_y = _check_pair(x_unknown, y_unknown, "unknown set")
        pool_classes = num_unknown_classes or int(pool_y.max()) + 1
        default_unknown = np.arange(pool_classes)
    if unknown_classes is None:
        unknown = default_unknown
    else:
        unknown = check_classes(unknown_classes, pool_classes, "unknown_classes")
    if x_unknown is None and np.intersect1d(known, unknown).size:
        raise ValueError(f"classes {np.intersect1d(known, unknown).tolist()} are both known and unknown")
    train_mask, test_mask = np.isin(y_train, known), np.isin(y_test, known)
    return OpenSetSplit(
        x_train[train_mask],
        _relabel(y_train[train_mask], known),
        x_test[test_mask],
        _relabel(y_test[test_mask], known),
        pool_x[np.isin(pool_y, unknown)],
        known,
        unknown,
        name,
    )


def published_split(dataset, trial, splits="neal"):
    """``(known_classes, unknown_classes)`` of trial ``trial`` (0..4) of a published class-separation benchmark.

    ``dataset`` is a key of :data:`ARPL_SPLITS`. ``splits="neal"``: MNIST, SVHN and CIFAR-10 trials of Neal et
    al.'s code (the unknowns :data:`NEAL_UNKNOWN`, the known classes in ascending order), the others as
    ``"arpl"``; ``"arpl"``: :data:`ARPL_SPLITS`. Unknowns are the remaining classes, except for ``"cifar+10"`` /
    ``"cifar+50"`` whose unknowns are CIFAR-100 classes. Tiny ImageNet ids are in sorted-wnid order (see
    :func:`keras_crosr.datasets.tinyimagenet.sorted_to_wnids_labels`). Known class ``known[i]`` gets label ``i``.
    """
    if dataset not in ARPL_SPLITS:
        raise ValueError(f"no published split for {dataset!r}; known: {', '.join(ARPL_SPLITS)}")
    if splits not in SPLITS:
        raise ValueError(f"splits must be one of {SPLITS}, got {splits!r}")
    if trial not in range(NUM_TRIALS):
        raise ValueError(f"trial must be in 0..{NUM_TRIALS - 1}, got {trial!r}")
    spec = ARPL_SPLITS[dataset]
    if splits == "neal" and dataset in NEAL_DATASETS:
        unknown = np.asarray(NEAL_UNKNOWN[trial], dtype=np.int64)
        return np.setdiff1d(np.arange(spec["num_classes"]), unknown), unknown
    known = np.asarray(spec["known"][trial], dtype=np.int64)
    if "unknown" in spec:
        return known, np.asarray(spec["unknown"][trial], dtype=np.int64)
    return known, np.setdiff1d(np.arange(spec["num_classes"]), known)


def random_class_split(num_classes, num_known, num_unknown, *, seed=0):
    """Random ``(known, unknown)`` class ids (each sorted, disjoint) drawn with ``np.random.default_rng(seed)``."""
    if num_known < 1 or num_unknown < 0 or num_known + num_unknown > num_classes:
        raise ValueError(f"cannot pick {num_known} known and {num_unknown} unknown classes out of {num_classes}")
    order = np.random.default_rng(seed).permutation(num_classes)
    return np.sort(order[:num_known]), np.sort(order[num_known : num_known + num_unknown])


def make_class_separation(dataset, trial, *, splits="neal", source="auto", data_dir=None):
    """Loads the data and builds trial ``trial`` of a published class-separation benchmark.

    ``dataset``: ``"mnist"``, ``"svhn"``, ``"cifar10"`` (6 known / 4 unknown), ``"cifar+10"``, ``"cifar+50"`` (4
    CIFAR-10 known, 10 / 50 CIFAR-100 unknown) or ``"tinyimagenet"`` (20 known / 180 unknown, val as test; the
    published sorted-wnid ids are applied to the archive's ``wnids.txt`` labels through the sorted-wnid remapping).
    ``splits``: whose trials, ``"neal"`` or ``"arpl"`` (see :func:`published_split`). As in the published code,
    the whole test split of each class is used (no 1:1 balancing).

    Returns:
        :class:`OpenSetSplit`.
    """
    known, unknown = published_split(dataset, trial, splits)
    kw = {"source": source, "data_dir": data_dir}
    name = f"{dataset} trial {trial} ({splits} splits)"
    if dataset == "tinyimagenet":
        kw["label_order"] = "sorted"
        train = datasets.load_tinyimagenet("train", classes=known, **kw)
        test = datasets.load_tinyimagenet("val", **kw)
        return class_separation(*train, *test, known, unknown, num_classes=200, name=name)
    loader = {"mnist": datasets.load_mnist, "svhn": datasets.load_svhn}.get(dataset, datasets.load_cifar10)
    if dataset.startswith("cifar+"):
        x_unknown, y_unknown = datasets.load_cifar100("test", classes=unknown, **kw)  # first: fails fast
        train = loader("train", classes=known, **kw)
        test = loader("test", classes=known, **kw)
        return class_separation(
            *train, *test, known, unknown, num_classes=10, x_unknown=x_unknown, y_unknown=y_unknown,
            num_unknown_classes=100, name=name,
        )
    train = loader("train", classes=known, **kw)
    test = loader("test", **kw)
    return class_separation(*train, *test, known, unknown, num_classes=10, name=name)


def make_outlier_addition(known, outlier, *, seed=0, with_train=True, source="auto", data_dir=None, path=None):
    """Loads the data and builds an outlier-addition benchmark of the paper (Tables 2 and 3).

    Args:
        known: ``"mnist"`` or ``"cifar10"``.
        outlier: for MNIST ``"omniglot"``, ``"mnist_noise"``, ``"noise"``; for CIFAR-10 ``"imagenet_crop"``,
            ``"imagenet_resize"`` (offline reconstructions, see their loaders), ``"lsun_crop"``, ``"lsun_resize"``.
        seed: seed of the outlier set (Omniglot subset, noise) and of the 1:1 subsampling.
        with_train: also load the full training split.
        source: ``"auto"``, ``"local"`` or ``"tfds"``, as the data-set loaders.
        data_dir: local data root (default ``$KERAS_CROSR_DATA``).
        path: folder of ODIN's released images for the ImageNet / LSUN sets (LSUN needs it or ``data_dir``).

    Returns:
        :class:`OpenSetSplit` with 10,000 known and 10,000 unknown test samples, unknown label 10.
    """
    if known not in OUTLIER_SETS:
        raise ValueError(f"known must be one of {tuple(OUTLIER_SETS)}, got {known!r}")
    if outlier not in OUTLIER_SETS[known]:
        raise ValueError(f"outlier set for {known} must be one of {OUTLIER_SETS[known]}, got {outlier!r}")
    kw = {"source": source, "data_dir": data_dir}
    loader = datasets.load_mnist if known == "mnist" else datasets.load_cifar10
    x_test, y_test = loader("test", **kw)
    x_train, y_train = loader("train", **kw) if with_train else (None, None)
    if outlier == "omniglot":
        x_out = datasets.load_omniglot(seed=seed, **kw)
    elif outlier == "noise":
        x_out = datasets.load_noise(seed=seed)
    elif outlier == "mnist_noise":
        x_out = datasets.make_mnist_noise(x_test, seed=seed + 1)
    else:
        x_out = datasets.LOADERS[outlier](path=path, data_dir=data_dir)
    return outlier_addition(
        x_test, y_test, x_out, x_train=x_train, y_train=y_train, num_classes=10, seed=seed,
        name=f"{known} vs {outlier}",
    )


def make_dbpedia_split(num_unknown, *, seed=0, max_length=128, max_tokens=20000, release="auto", data_dir=None):
    """DBpedia class separation: 4 random known classes and ``num_unknown`` (10, 8, 4 or 0) random unknown ones.

    The vocabulary is built on the training texts of the known classes only (the model never sees unknown-class
    text), and applied to every split.

    Returns:
        ``(split, vocabulary)``: an :class:`OpenSetSplit` of int32 token ids and the
        :class:`keras_crosr.datasets.Vocabulary`.
    """
    if num_unknown not in DBPEDIA_NUM_UNKNOWN:
        raise ValueError(f"num_unknown must be one of {DBPEDIA_NUM_UNKNOWN} (the paper's settings), got {num_unknown}")
    known, unknown = random_class_split(14, DBPEDIA_NUM_KNOWN, num_unknown, seed=seed)
    (t_train, y_train), (t_test, y_test) = datasets.load_dbpedia_text(release=release, data_dir=data_dir)
    train_mask = np.isin(y_train, known)
    vocabulary = datasets.Vocabulary.build(
        [t for t, keep in zip(t_train, train_mask) if keep], max_tokens=max_tokens
    )
    split = class_separation(
        vocabulary.encode([t for t, keep in zip(t_train, train_mask) if keep], max_length),
        y_train[train_mask],
        vocabulary.encode(t_test, max_length),
        y_test,
        known,
        unknown,
        num_classes=14,
        name=f"dbpedia {DBPEDIA_NUM_KNOWN}/{DBPEDIA_NUM_KNOWN + num_unknown} seed {seed}",
    )
    return split, vocabulary
