"""Tests of keras_crosr.protocols: outlier addition, published class-separation splits, DBpedia splits."""

import csv

import numpy as np
import pytest

from keras_crosr import datasets
from keras_crosr import protocols
from keras_crosr.datasets import tinyimagenet

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _toy(n_per_class=5, num_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(num_classes), n_per_class)
    x = rng.random((len(y), 4, 4, 1), dtype=np.float32) + y[:, None, None, None]  # x encodes its class
    return x, y


def test_outlier_addition_one_to_one_and_seeded():
    x_test, y_test = _toy()
    pool = np.random.default_rng(1).random((120, 4, 4, 1), dtype=np.float32) + 100
    split = protocols.outlier_addition(x_test, y_test, pool, seed=3)
    assert split.num_known == 10 and len(split.x_test_known) == len(split.x_test_unknown) == 50
    np.testing.assert_array_equal(split.y_test, np.concatenate([y_test, np.full(50, 10)]))
    assert split.x_test.shape == (100, 4, 4, 1) and split.unknown_classes.size == 0
    assert (split.x_test_unknown >= 100).all()
    again = protocols.outlier_addition(x_test, y_test, pool, seed=3)
    np.testing.assert_array_equal(split.x_test_unknown, again.x_test_unknown)
    other = protocols.outlier_addition(x_test, y_test, pool, seed=4)
    assert not np.array_equal(split.x_test_unknown, other.x_test_unknown)
    assert len(protocols.outlier_addition(x_test, y_test, pool, ratio=0.5).x_test_unknown) == 25
    exact = protocols.outlier_addition(x_test, y_test, pool[:50])
    np.testing.assert_array_equal(exact.x_test_unknown, pool[:50])  # whole pool, in order
    assert protocols.outlier_addition(x_test, y_test, pool, num_classes=12).y_test_unknown[0] == 12


def test_outlier_addition_bad_input():
    x_test, y_test = _toy()
    with pytest.raises(ValueError, match="100 outliers needed.*only 60"):
        protocols.outlier_addition(x_test, y_test, np.zeros((60, 4, 4, 1)), ratio=2.0)
    with pytest.raises(ValueError, match="sample shape"):
        protocols.outlier_addition(x_test, y_test, np.zeros((60, 4, 4, 3)))
    with pytest.raises(ValueError, match="expected y of shape"):
        protocols.outlier_addition(x_test, y_test[:3], np.zeros((60, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 5\)"):
        protocols.outlier_addition(x_test, y_test, np.zeros((60, 4, 4, 1)), num_classes=5)


def test_class_separation_relabels_and_separates():
    x_train, y_train = _toy(seed=0)
    x_test, y_test = _toy(seed=1)
    split = protocols.class_separation(x_train, y_train, x_test, y_test, [7, 2, 5])
    np.testing.assert_array_equal(split.known_classes, [7, 2, 5])
    np.testing.assert_array_equal(split.unknown_classes, [0, 1, 3, 4, 6, 8, 9])
    # Known class known_classes[i] -> label i; x encodes the original class in its integer part.
    np.testing.assert_array_equal(np.floor(split.x_train[:, 0, 0, 0]), np.array([7, 2, 5])[split.y_train])
    np.testing.assert_array_equal(np.floor(split.x_test_known[:, 0, 0, 0]), np.array([7, 2, 5])[split.y_test_known])
    assert len(split.x_train) == 15 and len(split.x_test_unknown) == 35
    assert set(np.floor(split.x_test_unknown[:, 0, 0, 0]).astype(int)) == {0, 1, 3, 4, 6, 8, 9}
    assert set(split.y_test.tolist()) == {0, 1, 2, 3}
    partial = protocols.class_separation(x_train, y_train, x_test, y_test, [0, 1], [9])
    assert len(partial.x_test_unknown) == 5


def test_class_separation_unknowns_from_second_data_set():
    x_train, y_train = _toy()
    x_other, y_other = _toy(n_per_class=2, num_classes=100, seed=5)
    split = protocols.class_separation(
        x_train, y_train, x_train, y_train, [4, 7, 9, 1], [30, 25, 1], x_unknown=x_other, y_unknown=y_other,
        num_unknown_classes=100,
    )
    assert len(split.x_test_unknown) == 6
    assert set(np.floor(split.x_test_unknown[:, 0, 0, 0]).astype(int)) == {1, 25, 30}


@pytest.mark.parametrize(
    "known, unknown, match",
    [
        ([1, 2, 2], None, "duplicate classes"),
        ([1, 10], None, r"out of range \[0, 10\)"),
        ([-1, 3], None, "out of range"),
        ([1, 2], [2, 3], "both known and unknown"),
        ([1, 2], [3, 3], "duplicate classes"),
        ([], None, "must not be empty"),
        ([1.5, 2], None, "list of integers"),
    ],
)
def test_class_separation_bad_class_lists(known, unknown, match):
    x, y = _toy()
    with pytest.raises(ValueError, match=match):
        protocols.class_separation(x, y, x, y, known, unknown)


@pytest.mark.parametrize("splits", ["neal", "arpl"])
def test_published_splits_have_the_protocol_sizes(splits):
    sizes = {
        "mnist": (6, 4), "svhn": (6, 4), "cifar10": (6, 4), "cifar+10": (4, 10), "cifar+50": (4, 50),
        "tinyimagenet": (20, 180),
    }  # fmt: skip
    assert set(protocols.ARPL_SPLITS) == set(sizes)
    for name, (n_known, n_unknown) in sizes.items():
        spec = protocols.ARPL_SPLITS[name]
        for trial in range(protocols.NUM_TRIALS):
            known, unknown = protocols.published_split(name, trial, splits)
            assert len(known) == n_known == len(set(known.tolist()))
            assert len(unknown) == n_unknown == len(set(unknown.tolist()))
            assert known.min() >= 0 and known.max() < spec["num_classes"]
            if not name.startswith("cifar+"):
                assert not set(known.tolist()) & set(unknown.tolist())
                assert len(known) + len(unknown) == spec["num_classes"]
            else:
                assert unknown.max() < 100


def test_arpl_splits_are_the_lists_of_arpl_and_vaze_et_al():
    # Spot checks against ARPL split.py / osr_closed_set_all_you_need osr_splits.py.
    np.testing.assert_array_equal(protocols.published_split("mnist", 0, "arpl")[0], [2, 4, 5, 9, 8, 3])
    np.testing.assert_array_equal(protocols.published_split("svhn", 4, "arpl")[0], [4, 9, 2, 7, 1, 0])
    np.testing.assert_array_equal(protocols.published_split("cifar10", 2, "arpl")[0], [1, 5, 7, 3, 9, 4])
    np.testing.assert_array_equal(protocols.published_split("cifar+10", 1)[1], [41, 9, 49, 40, 73, 60, 48, 30, 95, 71])
    assert protocols.published_split("cifar+50", 4)[1][-1] == 43
    np.testing.assert_array_equal(protocols.published_split("tinyimagenet", 3)[0][:4], [98, 36, 158, 177])
    # The duplicate their comments do not mention: CIFAR-10 trials 0 and 1 know the same classes.
    assert sorted(protocols.published_split("cifar10", 0, "arpl")[0]) == sorted(
        protocols.published_split("cifar10", 1, "arpl")[0])
    with pytest.raises(ValueError, match="no published split for 'cifar100'"):
        protocols.published_split("cifar100", 0)
    with pytest.raises(ValueError, match="trial must be in 0..4"):
        protocols.published_split("mnist", 5)
    with pytest.raises(ValueError, match=r"splits must be one of \('neal', 'arpl'\), got 'vaze'"):
        protocols.published_split("mnist", 0, "vaze")


def test_neal_splits_are_the_trials_of_neal_et_al_s_code():
    # lwneal/counterfactual-open-set download_cifar10.py / download_svhn.py: `splits` lists the unknown classes.
    for dataset in ("mnist", "svhn", "cifar10"):
        known, unknown = protocols.published_split(dataset, 0)  # "neal" is the default
        np.testing.assert_array_equal(unknown, [3, 6, 7, 8])
        np.testing.assert_array_equal(known, [0, 1, 2, 4, 5, 9])
        np.testing.assert_array_equal(protocols.published_split(dataset, 4, "neal")[1], [4, 5, 6, 9])
    known_sets = {tuple(protocols.published_split("cifar10", t)[0]) for t in range(protocols.NUM_TRIALS)}
    assert len(known_sets) == protocols.NUM_TRIALS  # five different trials
    for dataset in ("cifar+10", "cifar+50", "tinyimagenet"):  # no recoverable lists in Neal et al.'s code
        for trial in range(protocols.NUM_TRIALS):
            for ours, arpl in zip(protocols.published_split(dataset, trial, "neal"),
                                  protocols.published_split(dataset, trial, "arpl")):
                np.testing.assert_array_equal(ours, arpl)


def test_random_class_split_seeded_and_disjoint():
    known, unknown = protocols.random_class_split(14, 4, 8, seed=7)
    assert len(known) == 4 and len(unknown) == 8 and not set(known) & set(unknown)
    again = protocols.random_class_split(14, 4, 8, seed=7)
    np.testing.assert_array_equal(known, again[0])
    np.testing.assert_array_equal(unknown, again[1])
    assert any(not np.array_equal(known, protocols.random_class_split(14, 4, 8, seed=s)[0]) for s in range(8, 12))
    with pytest.raises(ValueError, match="cannot pick 4 known and 11 unknown"):
        protocols.random_class_split(14, 4, 11)


def _dbpedia_csv(root):
    folder = root / "dbpedia_csv"
    folder.mkdir()
    for name, n in (("train.csv", 6), ("test.csv", 3)):
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            rows = [(c + 1, "t", f"word{c} common text number {i} of class{c}") for c in range(14) for i in range(n)]
            csv.writer(f).writerows(rows)


@pytest.mark.parametrize("num_unknown", protocols.DBPEDIA_NUM_UNKNOWN)
def test_dbpedia_splits(tmp_path, num_unknown):
    _dbpedia_csv(tmp_path)
    split, vocab = protocols.make_dbpedia_split(num_unknown, seed=2, max_length=8, data_dir=tmp_path)
    assert split.num_known == 4 and len(split.unknown_classes) == num_unknown
    assert not set(split.known_classes.tolist()) & set(split.unknown_classes.tolist())
    assert split.x_train.shape == (24, 8) and split.x_train.dtype == np.int32
    assert len(split.x_test_known) == 12 and len(split.x_test_unknown) == 3 * num_unknown
    assert split.name == f"dbpedia 4/{4 + num_unknown} seed 2"
    # The vocabulary holds the known classes' training words only.
    known_words = {f"class{c}" for c in split.known_classes}
    assert {t for t in vocab.tokens if t.startswith("class")} == known_words
    again, _ = protocols.make_dbpedia_split(num_unknown, seed=2, max_length=8, data_dir=tmp_path)
    np.testing.assert_array_equal(again.known_classes, split.known_classes)
    np.testing.assert_array_equal(again.x_test, split.x_test)


def test_dbpedia_bad_setting():
    with pytest.raises(ValueError, match=r"num_unknown must be one of \(10, 8, 4, 0\)"):
        protocols.make_dbpedia_split(6)


def test_make_outlier_addition_bad_names():
    with pytest.raises(ValueError, match="known must be one of"):
        protocols.make_outlier_addition("svhn", "noise")
    with pytest.raises(ValueError, match="outlier set for mnist must be one of"):
        protocols.make_outlier_addition("mnist", "lsun_crop")


# ---------------------------------------------------------------- real offline files


@pytest.mark.parametrize("outlier", ["omniglot", "mnist_noise", "noise"])
def test_mnist_outlier_addition_real(data_dir, outlier):
    split = protocols.make_outlier_addition("mnist", outlier, with_train=False, data_dir=data_dir)
    assert split.x_train is None
    assert len(split.x_test_known) == len(split.x_test_unknown) == 10000
    np.testing.assert_array_equal(np.bincount(split.y_test), MNIST_TEST_COUNTS + [10000])
    assert split.x_test_unknown.shape == (10000, 28, 28, 1) and split.x_test_unknown.dtype == np.float32
    assert split.name == f"mnist vs {outlier}"


def test_cifar_outlier_addition_real(data_dir):
    split = protocols.make_outlier_addition("cifar10", "imagenet_crop", with_train=False, data_dir=data_dir)
    assert len(split.x_test_known) == len(split.x_test_unknown) == 10000
    assert split.x_test.shape == (20000, 32, 32, 3)


@pytest.mark.parametrize("splits, known, unknown", [("neal", [0, 1, 2, 4, 5, 9], [3, 6, 7, 8]),
                                                     ("arpl", [2, 4, 5, 9, 8, 3], [0, 1, 6, 7])])
def test_mnist_class_separation_real(data_dir, splits, known, unknown):
    split = protocols.make_class_separation("mnist", 0, splits=splits, data_dir=data_dir)
    counts_train, counts_test = np.array(MNIST_TRAIN_COUNTS), np.array(MNIST_TEST_COUNTS)
    np.testing.assert_array_equal(np.bincount(split.y_train), counts_train[known])
    np.testing.assert_array_equal(np.bincount(split.y_test_known), counts_test[known])
    assert len(split.x_test_unknown) == counts_test[unknown].sum()
    assert split.name == f"mnist trial 0 ({splits} splits)"


def test_cifar_plus_needs_cifar100(data_dir):
    with pytest.raises(datasets.DatasetNotFoundError, match="CIFAR-100.*cifar100_jpeg.npz"):
        protocols.make_class_separation("cifar+10", 0, source="local", data_dir=data_dir)


def test_tinyimagenet_class_separation_uses_sorted_wnids(data_dir):
    split = protocols.make_class_separation("tinyimagenet", 0, data_dir=data_dir)
    assert split.x_train.shape == (10000, 64, 64, 3)
    assert len(split.x_test_known) == 1000 and len(split.x_test_unknown) == 9000
    np.testing.assert_array_equal(np.bincount(split.y_train), [500] * 20)
    # Label 0 is published class 108 in sorted-wnid order, i.e. the archive's class argsort(wnids)[108].
    wnids = datasets.load_tinyimagenet_wnids(data_dir=data_dir)
    archive_label = tinyimagenet.sorted_to_wnids_labels(wnids)[108]
    assert np.sort(wnids)[108] == wnids[archive_label]
    x_val, _ = datasets.load_tinyimagenet("val", classes=[archive_label], data_dir=data_dir)
    np.testing.assert_array_equal(split.x_test_known[split.y_test_known == 0], x_val)
