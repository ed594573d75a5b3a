"""Tests of keras_crosr.datasets: real offline files (skipped when absent), tfds through mock data, user files."""

import csv
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_crosr import datasets
from keras_crosr.datasets import _images
from keras_crosr.datasets import _source
from keras_crosr.datasets import dbpedia
from keras_crosr.datasets import embedded
from keras_crosr.datasets import make_sample
from keras_crosr.datasets import tinyimagenet

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(autouse=True)
def _no_env_root(monkeypatch):
    """Tests pass data_dir explicitly; a $KERAS_CROSR_DATA in the environment must not change their outcome."""
    monkeypatch.delenv(_source.ENV_VAR, raising=False)


def _check_images(x, shape, n=None):
    assert x.dtype == np.float32
    assert x.shape[1:] == shape
    if n is not None:
        assert len(x) == n
    assert x.min() >= 0.0 and x.max() <= 1.0


def _jpeg(array, quality=90):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def _write_jpeg_archive(path, split, images, labels):
    blobs = [np.frombuffer(_jpeg(im), np.uint8) for im in images]
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
    np.savez(path, **{f"{split}_jpeg": np.concatenate(blobs), f"{split}_offsets": offsets, f"y_{split}": labels})


# ---------------------------------------------------------------- embedded sample, synthetic sets (no data needed)


def test_sample_shapes_balance_and_size():
    sample = datasets.load_sample()
    assert set(sample) == {"x_train", "y_train", "x_test", "y_test", "omniglot"}
    _check_images(sample["x_train"], (28, 28, 1), 5000)
    _check_images(sample["x_test"], (28, 28, 1), 1000)
    _check_images(sample["omniglot"], (28, 28, 1), 2000)
    assert sample["y_train"].dtype == np.int64
    np.testing.assert_array_equal(np.bincount(sample["y_train"]), [500] * 10)
    np.testing.assert_array_equal(np.bincount(sample["y_test"]), [100] * 10)
    # MNIST polarity for both: dark background, bright strokes.
    assert sample["omniglot"].mean() < 0.25 and sample["x_train"].mean() < 0.25
    sample_dir = embedded.SAMPLE_PATH.parent
    assert sum(p.stat().st_size for p in sample_dir.iterdir()) <= 3 * 1024 * 1024


def test_noise_is_uniform_and_seeded():
    a = datasets.load_noise(2000, seed=3)
    _check_images(a, (28, 28, 1), 2000)
    np.testing.assert_array_equal(a, datasets.load_noise(2000, seed=3))
    assert not np.array_equal(a, datasets.load_noise(2000, seed=4))
    assert abs(a.mean() - 0.5) < 0.01 and abs(a.var() - 1 / 12) < 0.005
    assert datasets.load_noise(3, shape=(32, 32, 3)).shape == (3, 32, 32, 3)
    with pytest.raises(ValueError, match="positive"):
        datasets.load_noise(0)


def test_superimpose_formula():
    x = np.array([0.0, 0.3, 1.0], np.float32).reshape(1, 3, 1, 1)
    u = np.array([0.5, 0.9, 0.2], np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(datasets.superimpose(x, u).ravel(), [0.5, 1.0, 1.0])
    with pytest.raises(ValueError, match="same shape"):
        datasets.superimpose(x, u[:, :2])
    digits = datasets.load_sample()["x_test"][:50]
    noisy = datasets.make_mnist_noise(digits, seed=1)
    np.testing.assert_array_equal(noisy, datasets.superimpose(digits, datasets.load_noise(50, seed=1)))
    assert (noisy >= digits).all()
    with pytest.raises(ValueError, match=r"images must be in \[0, 1\] \(uint8 images: divide by 255 first\); got "
                                         r"values in \[0, 255\]"):
        datasets.make_mnist_noise(np.round(digits * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"noise must be in \[0, 1\]"):
        datasets.superimpose(x, u + np.nan)


def test_pad_images_centres_and_keeps_the_pixels():
    digits = datasets.load_sample()["x_test"][:4]  # (4, 28, 28, 1)
    padded = datasets.pad_images(digits, (32, 32))
    assert padded.shape == (4, 32, 32, 1) and padded.dtype == digits.dtype
    np.testing.assert_array_equal(padded[:, 2:30, 2:30], digits)
    assert not padded[:, :2].any() and not padded[:, 30:].any() and not padded[:, :, :2].any()
    odd = datasets.pad_images(np.ones((1, 2, 3, 2), np.float32), (5, 4))  # odd margins: extra row / column last
    np.testing.assert_array_equal(odd[0, :, :, 0], [[0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 0],
                                                    [0, 0, 0, 0]])
    np.testing.assert_array_equal(datasets.pad_images(digits, (28, 28)), digits)
    with pytest.raises(ValueError, match=r"cannot pad images of size \(28, 28\) to the smaller size \(32, 20\)"):
        datasets.pad_images(digits, (32, 20))
    with pytest.raises(ValueError, match=r"expected images of shape \(n, H, W, C\), got shape \(28, 28, 1\)"):
        datasets.pad_images(digits[0], (32, 32))


@pytest.mark.parametrize("load", [
    lambda d: datasets.load_mnist(source="local", data_dir=d),
    lambda d: datasets.load_omniglot(source="local", data_dir=d),
    lambda d: datasets.load_cifar10(source="local", data_dir=d),
    lambda d: datasets.load_cifar100(source="local", data_dir=d),
    lambda d: datasets.load_svhn("test", source="local", data_dir=d),
    lambda d: datasets.load_tinyimagenet(source="local", data_dir=d),
    lambda d: datasets.load_tinyimagenet("val", source="local", data_dir=d),
    lambda d: datasets.load_imagenet_resize(data_dir=d),
    lambda d: datasets.load_lsun_crop(data_dir=d),
    lambda d: datasets.load_lsun_resize(data_dir=d),
    lambda d: datasets.load_dbpedia_text(data_dir=d),
])
def test_a_missing_local_file_is_named_and_documented_in_data_md(tmp_path, load):
    with pytest.raises(datasets.DatasetNotFoundError) as error:
        load(tmp_path)
    missing = re.search(rf"local file not found: {re.escape(str(tmp_path))}/(\S+)\. ", str(error.value)).group(1)
    assert "DATA.md" in str(error.value)
    assert f"`{missing}" in (Path(__file__).parents[1] / "DATA.md").read_text()  # the user's reference


def test_unknown_name_split_and_source():
    with pytest.raises(ValueError, match="unknown data set 'imagenet'.*mnist"):
        datasets.load("imagenet")
    with pytest.raises(ValueError, match="split must be one of"):
        datasets.load_mnist("validation")
    with pytest.raises(ValueError, match="source must be one of"):
        datasets.load_mnist("test", source="web")


def test_missing_local_file_names_data_set_variable_and_file(tmp_path):
    with pytest.raises(datasets.DatasetNotFoundError) as err:
        datasets.load_mnist("test", source="local", data_dir=tmp_path)
    message = str(err.value)
    assert "MNIST" in message and "KERAS_CROSR_DATA" in message and str(tmp_path / "mnist.npz") in message
    with pytest.raises(datasets.DatasetNotFoundError, match="no data_dir given"):
        datasets.load_mnist("test", source="local")
    # No tfds build exists for Tiny ImageNet: "auto" fails with the expected file, "tfds" says so.
    with pytest.raises(datasets.DatasetNotFoundError, match="tinyimagenet_val.npz.*does not provide"):
        datasets.load_tinyimagenet("val", source="auto", data_dir=tmp_path)
    with pytest.raises(datasets.DatasetNotFoundError, match="not available from tensorflow-datasets; use source="):
        datasets.load_tinyimagenet("val", source="tfds")


def test_auto_without_tfds_installed(tmp_path, monkeypatch):
    monkeypatch.setattr(_source, "_tfds_importable", lambda: False)
    with pytest.raises(datasets.DatasetNotFoundError, match="CIFAR-10.*cifar10_jpeg.npz.*'cifar10'.*not installed"):
        datasets.load_cifar10("test", data_dir=tmp_path)


def _fake_tfds_mnist(tfds_name, split, keys, **names):
    return {"image": np.zeros((3, 28, 28, 1), np.uint8), "label": np.arange(3)}


def test_data_root_that_does_not_exist_is_an_error_not_a_download(tmp_path, monkeypatch):
    def no_tfds(*args, **kwargs):
        raise AssertionError("tensorflow-datasets must not be called")

    monkeypatch.setattr(_source, "_tfds_importable", lambda: True)
    monkeypatch.setattr(_source, "tfds_arrays", no_tfds)
    missing = tmp_path / "typo"
    for source in ("auto", "local"):
        with pytest.raises(datasets.DatasetNotFoundError, match=re.escape(f"MNIST: data_dir={missing} is not an")):
            datasets.load_mnist("test", source=source, data_dir=missing)
    monkeypatch.setenv(_source.ENV_VAR, str(missing))
    with pytest.raises(datasets.DatasetNotFoundError, match=re.escape(f"$KERAS_CROSR_DATA={missing} is not an")):
        datasets.load_mnist("test")
    # source="tfds" never reads the data root.
    monkeypatch.setattr(_source, "tfds_arrays", _fake_tfds_mnist)
    assert datasets.load_mnist("test", source="tfds", data_dir=missing)[0].shape == (3, 28, 28, 1)


def test_auto_warns_when_the_data_root_lacks_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(_source, "_tfds_importable", lambda: True)
    monkeypatch.setattr(_source, "tfds_arrays", _fake_tfds_mnist)
    with pytest.warns(UserWarning, match=re.escape(f"{tmp_path / 'mnist.npz'} not found; loading 'mnist' from")):
        x, _ = datasets.load_mnist("test", data_dir=tmp_path)
    assert x.shape == (3, 28, 28, 1)


def test_auto_prefers_local_and_env_variable(tmp_path, monkeypatch):
    x = np.random.default_rng(0).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    y = np.arange(6, dtype=np.int64)
    np.savez(tmp_path / "mnist.npz", x_train=x, y_train=y, x_test=x[:4], y_test=y[:4])
    monkeypatch.setenv(_source.ENV_VAR, str(tmp_path))
    x_test, y_test = datasets.load_mnist("test")
    np.testing.assert_array_equal(x_test, x[:4].astype(np.float32) / 255)
    np.testing.assert_array_equal(y_test, y[:4])
    _, y_sel = datasets.load_mnist("train", classes=[5, 1])
    np.testing.assert_array_equal(y_sel, [1, 5])
    with pytest.raises(ValueError, match="duplicate classes"):
        datasets.load_mnist("train", classes=[1, 1])
    from keras_crosr.datasets._images import check_indices

    np.testing.assert_array_equal(check_indices(6, [4, 0, 2], dataset="CIFAR-10"), [0, 2, 4])  # in split order
    with pytest.raises(ValueError, match=r"CIFAR-10: indices must not repeat; repeated: \[3\]"):
        check_indices(6, [3, 1, 3], dataset="CIFAR-10")
    with pytest.raises(ValueError, match=r"out of range \[0, 10\)"):
        datasets.load_mnist("train", classes=[3, 10])


def test_a_missing_sample_file_is_not_found(tmp_path):
    with pytest.raises(datasets.DatasetNotFoundError, match="no file .*missing.npz"):
        datasets.load_sample(path=tmp_path / "missing.npz")


def test_damaged_archives(tmp_path):
    (tmp_path / "mnist.npz").write_bytes(b"this is not a zip archive")
    with pytest.raises(ValueError, match="MNIST: damaged or unreadable archive"):
        datasets.load_mnist("test", data_dir=tmp_path)
    good = tmp_path / "good.npz"
    np.savez(good, x_test=np.zeros((100, 28, 28, 1), np.uint8), y_test=np.zeros(100, np.int64))
    (tmp_path / "mnist.npz").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="damaged or unreadable archive"):
        datasets.load_mnist("test", data_dir=tmp_path)
    np.savez(tmp_path / "mnist.npz", x_test=np.zeros((2, 28, 28, 1), np.uint8))
    with pytest.raises(ValueError, match=r"lacks the arrays \['y_test'\]"):
        datasets.load_mnist("test", data_dir=tmp_path)


def test_jpeg_archive_decoding_and_damaged_jpeg(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    labels = np.array([3, 1, 3, 0, 9], np.int64)
    _write_jpeg_archive(tmp_path / "cifar10_jpeg.npz", "test", images, labels)
    x, y = datasets.load_cifar10("test", data_dir=tmp_path)
    _check_images(x, (32, 32, 3), 5)
    expected = np.stack([np.asarray(Image.open(io.BytesIO(_jpeg(im)))) for im in images]).astype(np.float32) / 255
    np.testing.assert_array_equal(x, expected)
    np.testing.assert_array_equal(y, labels)
    x3, y3 = datasets.load_cifar10("test", classes=[3], data_dir=tmp_path)
    np.testing.assert_array_equal(x3, expected[[0, 2]])
    np.testing.assert_array_equal(datasets.load_cifar10("test", indices=[4, 1], data_dir=tmp_path)[1], [1, 9])
    with pytest.raises(ValueError, match=r"indices must lie in \[0, 5\)"):
        datasets.load_cifar10("test", indices=[5], data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"CIFAR-10: indices must not repeat; repeated: \[1\]"):
        datasets.load_cifar10("test", indices=[1, 4, 1], data_dir=tmp_path)
    with np.load(tmp_path / "cifar10_jpeg.npz") as z:
        arrays = dict(z)
    arrays["test_jpeg"] = arrays["test_jpeg"].copy()
    arrays["test_jpeg"][: arrays["test_offsets"][1]] = 7  # overwrite the first JPEG
    np.savez(tmp_path / "cifar10_jpeg.npz", **arrays)
    with pytest.raises(ValueError, match="CIFAR-10 image 0: damaged or unreadable image"):
        datasets.load_cifar10("test", data_dir=tmp_path)
    arrays["test_offsets"] = arrays["test_offsets"][:-1]
    np.savez(tmp_path / "cifar10_jpeg.npz", **arrays)
    with pytest.raises(ValueError, match="offsets do not index"):
        datasets.load_cifar10("test", indices=[1], data_dir=tmp_path)


def test_image_folder_lsun(tmp_path):
    folder = tmp_path / "LSUN" / "test"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    big = rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)
    Image.fromarray(big).save(folder / "a.png")
    exact = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(exact).save(folder / "b.png")
    Image.fromarray(rng.integers(0, 256, (40, 48), dtype=np.uint8)).save(folder / "c.jpg")  # grayscale
    (folder / "notes.txt").write_text("not an image")
    crop = datasets.load_lsun_crop(data_dir=tmp_path)
    _check_images(crop, (32, 32, 3), 3)
    np.testing.assert_array_equal(crop[0], big[2:34, 2:34].astype(np.float32) / 255)
    np.testing.assert_array_equal(crop[1], exact.astype(np.float32) / 255)
    assert (crop[2, ..., 0] == crop[2, ..., 2]).all()
    resize = datasets.load_lsun_resize(tmp_path / "LSUN")
    _check_images(resize, (32, 32, 3), 3)
    np.testing.assert_array_equal(resize[1], crop[1])
    np.testing.assert_array_equal(datasets.load_image_folder(tmp_path, indices=[2]), crop[2:])
    with pytest.raises(datasets.DatasetNotFoundError, match="LSUN_resize"):
        datasets.load_lsun_resize(data_dir=tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        datasets.load_image_folder(tmp_path / "empty")
    Image.fromarray(exact[:20, :20]).save(folder / "d.png")
    with pytest.raises(ValueError, match="smaller than the 32x32 crop"):
        datasets.load_lsun_crop(tmp_path / "LSUN")
    with pytest.raises(ValueError, match="mode must be one of"):
        datasets.load_image_folder(folder, mode="pad")


def test_svhn_mat_files(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (32, 32, 3, 7), dtype=np.uint8)
    y = np.array([[10], [1], [2], [10], [9], [5], [3]], np.uint8)
    savemat(tmp_path / "test_32x32.mat", {"X": x, "y": y})
    images, labels = datasets.load_svhn("test", data_dir=tmp_path)
    _check_images(images, (32, 32, 3), 7)
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 9, 5, 3])
    np.testing.assert_array_equal(images[4], x[..., 4].astype(np.float32) / 255)
    np.testing.assert_array_equal(images, np.moveaxis(x, 3, 0).astype(np.float32) / 255)
    assert images.flags.c_contiguous  # like every other loader, despite the column-major .mat array
    zeros = datasets.load_svhn("test", classes=[0], data_dir=tmp_path)[0]
    assert len(zeros) == 2 and zeros.flags.c_contiguous
    (tmp_path / "train_32x32.mat").write_bytes(b"MATLAB garbage")
    with pytest.raises(ValueError, match="SVHN: damaged or unreadable .mat"):
        datasets.load_svhn("train", source="local", data_dir=tmp_path)


def _write_dbpedia_csv(root, rows_train, rows_test):
    folder = root / "dbpedia_csv"
    folder.mkdir()
    for name, rows in (("train.csv", rows_train), ("test.csv", rows_test)):
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)


def test_dbpedia_csv_tokenisation_and_vocabulary(tmp_path):
    train = [(1, "A", "Acme Corp makes widgets, widgets and gears."), (9, "V", "A village in Serbia's north.")]
    test = [(14, "B", "An unseen zebra book about widgets")]
    _write_dbpedia_csv(tmp_path, train, test)
    (x_train, y_train), (x_test, y_test), vocab = datasets.load_dbpedia(max_length=6, data_dir=tmp_path)
    assert x_train.dtype == np.int32 and x_train.shape == (2, 6) and x_test.shape == (1, 6)
    np.testing.assert_array_equal(y_train, [0, 8])
    np.testing.assert_array_equal(y_test, [13])
    assert vocab.tokens[0] == "widgets"  # most frequent training word gets id 2
    assert vocab.decode(x_train[1]) == ["a", "village", "in", "serbia's", "north"]
    assert x_train[1, -1] == dbpedia.PAD_ID
    # "an", "unseen", "zebra", "book", "about" never occur in training text: out of vocabulary.
    np.testing.assert_array_equal(x_test[0], [1, 1, 1, 1, 1, vocab.encode(["widgets"], 1)[0, 0]])
    restored = datasets.Vocabulary.from_json(vocab.to_json())
    np.testing.assert_array_equal(restored.encode(["Acme widgets"], 3), vocab.encode(["Acme widgets"], 3))
    vocab.save(tmp_path / "vocab.json")
    assert datasets.Vocabulary.load(tmp_path / "vocab.json").tokens == vocab.tokens
    small = datasets.Vocabulary.build(["b a a c c c"], max_tokens=4)
    assert small.tokens == ["c", "a"] and small.size == 4


def test_dbpedia_bad_input(tmp_path):
    _write_dbpedia_csv(tmp_path, [(15, "T", "text")], [(1, "T", "text")])
    with pytest.raises(ValueError, match="class 15 outside 1..14"):
        datasets.load_dbpedia(data_dir=tmp_path)
    with pytest.raises(datasets.DatasetNotFoundError, match="DBpedia.*dbpedia_subset.npz"):
        datasets.load_dbpedia(release="subset", data_dir=tmp_path)
    with pytest.raises(ValueError, match="release must be one of"):
        datasets.load_dbpedia(release="full")
    with pytest.raises(ValueError, match="tokens must be unique"):
        datasets.Vocabulary(["a", "a"])
    with pytest.raises(ValueError, match=r"max_tokens must be at least 3 \(padding, OOV, one word\), got 2"):
        datasets.Vocabulary.build(["a b"], max_tokens=2)


def test_make_tf_dataset_deterministic():
    x = np.arange(40, dtype=np.float32).reshape(20, 2)
    y = {"logits": np.arange(20), "reconstruction": x}

    def order(seed):
        ds = datasets.make_tf_dataset(x, y, batch_size=6, shuffle=True, seed=seed)
        return np.concatenate([targets["logits"].numpy() for _, targets in ds])

    np.testing.assert_array_equal(order(1), order(1))
    assert sorted(order(1).tolist()) == list(range(20)) and not np.array_equal(order(1), order(2))
    batches = list(datasets.make_tf_dataset(x, batch_size=8, drop_remainder=True))
    assert [tuple(b.shape) for b in batches] == [(8, 2), (8, 2)]
    mapped = next(iter(datasets.make_tf_dataset(x, y["logits"], batch_size=4, map_fn=lambda a, b: (a * 2, b))))
    np.testing.assert_array_equal(mapped[0].numpy(), x[:4] * 2)
    with pytest.raises(ValueError, match="needs a seed"):
        datasets.make_tf_dataset(x, shuffle=True)
    with pytest.raises(ValueError, match="same number of samples"):
        datasets.make_tf_dataset(x, np.arange(3))
    with pytest.raises(ValueError, match="batch_size must be positive, got 0"):
        datasets.make_tf_dataset(x, batch_size=0)


def test_tensorflow_imported_lazily():
    code = (
        "import sys, keras_crosr.datasets, keras_crosr.protocols\n"
        "keras_crosr.datasets.load_sample(); keras_crosr.datasets.load_noise(5)\n"
        "assert 'tensorflow' not in sys.modules and 'tensorflow_datasets' not in sys.modules, sorted(sys.modules)\n"
    )
    env = dict(os.environ, KERAS_BACKEND="jax")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


# ---------------------------------------------------------------- tfds path, without network


def test_tests_cannot_reach_the_network(tmp_path, network_attempts):
    """tests/conftest.py makes connections to other machines fail (before any DNS look-up); loopback and unix
    sockets still work (tests/test_distribute.py picks free local ports)."""
    import socket

    with pytest.raises(RuntimeError, match="must run offline"):
        socket.create_connection(("example.com", 443), timeout=1)
    for family, address in ((socket.AF_INET, ("192.0.2.1", 9)), (socket.AF_INET6, ("2001:db8::1", 9, 0, 0))):
        try:
            client = socket.socket(family)
        except OSError:  # no IPv6 here
            continue
        with client, pytest.raises(RuntimeError, match="must run offline"):
            client.settimeout(1)
            client.connect(address)
        with socket.socket(family) as client, pytest.raises(RuntimeError, match="must run offline"):
            client.connect_ex(address)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        for host in ("127.0.0.1", "localhost"):
            socket.create_connection((host, server.getsockname()[1]), timeout=5).close()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "s"))
        server.listen()
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(tmp_path / "s"))
    assert network_attempts[0] == ("example.com", 443) and len(network_attempts) in (3, 5)  # 5 with IPv6
    network_attempts.clear()  # refused on purpose: the guard would fail this test at teardown


def test_tfds_path_with_mock_data(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.core.utils import gcs_utils

    # mock_data answers "not on GCS" to gcs_utils.exists; also switch off tfds's GCS access as a whole (tfds 4.9's
    # default, not older releases'): its GCS downloads then raise instead of reaching the network
    monkeypatch.setattr(gcs_utils, "_is_gcs_disabled", True, raising=False)
    with tfds.testing.mock_data(num_examples=12):
        assert not gcs_utils.is_dataset_on_gcs("mnist/3.0.1")
        x, y = datasets.load_mnist("test", source="tfds")
        _check_images(x, (28, 28, 1), 12)
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() <= 9
        x, y = datasets.load_cifar10("train", source="tfds", indices=[0, 5, 7])
        _check_images(x, (32, 32, 3), 3)
        x, y = datasets.load_svhn("test", source="tfds")
        _check_images(x, (32, 32, 3), 12)
        x = datasets.load_omniglot(10, source="tfds")
        _check_images(x, (28, 28, 1), 10)
        # "auto" falls back to tfds when the local file is absent.
        with pytest.warns(UserWarning, match="cifar100_jpeg.npz not found"):
            x, _ = datasets.load_cifar100("test", data_dir=tmp_path)
        _check_images(x, (32, 32, 3), 12)


def test_omniglot_from_tfds_follows_the_character_ids_like_the_local_file(monkeypatch):
    """tfds's `label` is the character number of Omniglot's image ids, the local file's order; its `alphabet`
    index is not (sorted names put Sylheti, ids 1503-1530, before Syriac_(Serto), ids 1480-1502)."""
    from keras_crosr.datasets import _source

    labels = np.array([1502, 1479, 1502, 1479, 1500])  # Sylheti, Syriac_(Serto), ..., in tfds's storage order
    images = np.repeat(np.arange(5, dtype=np.uint8)[:, None, None, None] * 50, 105, axis=1).repeat(105, axis=2)
    tfds_arrays = {"image": images, "label": labels, "alphabet": np.array([16, 17, 16, 17, 17])}  # sorted names
    monkeypatch.setattr(_source, "resolve", lambda *args, **kwargs: ("tfds", "omniglot"))
    monkeypatch.setattr(_source, "tfds_arrays", lambda name, split, keys, **names: {k: tfds_arrays[k] for k in keys})
    x = datasets.load_omniglot(5, source="tfds")
    stored = 255 - 50 * np.array([1, 3, 4, 0, 2])  # ids 1480, 1480, 1501, 1503, 1503; inverted, as MNIST
    np.testing.assert_allclose(x.reshape(5, -1).mean(axis=1), stored / 255, atol=1e-6)


def test_tfds_that_cannot_load_is_a_missing_data_set(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(datasets.DatasetNotFoundError, match=r"SVHN: tensorflow-datasets could not load 'svhn_cropped' "
                       r"\(ConnectionError: no network\); give the local file 'test_32x32.mat' instead, in the "
                       r"folder given by data_dir= \(command line: --data-dir\) or the environment variable "
                       "KERAS_CROSR_DATA"):
        datasets.load_svhn("test", source="tfds")


def test_omniglot_tfds_conversion_matches_local_preprocessing(data_dir):
    """The tfds path (105x105 renderings) reproduces the offline 28x28 images exactly."""
    with np.load(data_dir / "omniglot_eval.npz") as z:
        originals, expected = z["x_test_105"][:40], z["x_test"][:40]
    rendered = np.where(originals, 255, 0).astype(np.uint8)  # tfds: white background, black strokes
    from keras_crosr.datasets.mnist import _omniglot_from_105

    np.testing.assert_array_equal(_omniglot_from_105(rendered), expected)


# ---------------------------------------------------------------- real offline files


def test_mnist_real(data_dir):
    x_train, y_train = datasets.load_mnist("train", data_dir=data_dir)
    x_test, y_test = datasets.load_mnist("test", source="local", data_dir=data_dir)
    _check_images(x_train, (28, 28, 1), 60000)
    _check_images(x_test, (28, 28, 1), 10000)
    assert x_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y_train), MNIST_TRAIN_COUNTS)
    np.testing.assert_array_equal(np.bincount(y_test), MNIST_TEST_COUNTS)
    np.testing.assert_array_equal(y_train[:10], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4])
    mnist_noise = datasets.load_mnist_noise(data_dir=data_dir)
    np.testing.assert_array_equal(mnist_noise, datasets.make_mnist_noise(x_test, seed=1))


def test_omniglot_real(data_dir):
    x = datasets.load_omniglot(data_dir=data_dir)
    _check_images(x, (28, 28, 1), 10000)
    np.testing.assert_array_equal(x, datasets.load_omniglot(data_dir=data_dir))
    assert x.mean() < 0.2 and x.max() == 1.0  # MNIST polarity
    with np.load(data_dir / "omniglot_eval.npz") as z:
        alphabets = z["y_alphabet"][datasets.mnist.omniglot_indices()]
    assert len(np.unique(alphabets)) == 20
    with pytest.raises(ValueError, match="n must be in"):
        datasets.load_omniglot(20000, data_dir=data_dir)


def test_sample_matches_sources_and_rebuilds_identically(data_dir, tmp_path):
    out = tmp_path / "sample.npz"
    make_sample.build_sample(data_dir, out)
    with np.load(out) as rebuilt, np.load(embedded.SAMPLE_PATH) as shipped:
        for key in shipped.files:
            np.testing.assert_array_equal(rebuilt[key], shipped[key])
        with np.load(data_dir / "mnist.npz") as mnist:
            np.testing.assert_array_equal(shipped["x_train"], mnist["x_train"][shipped["train_indices"]])
            np.testing.assert_array_equal(shipped["y_test"], mnist["y_test"][shipped["test_indices"]])


@pytest.fixture(scope="module")
def cifar_test(data_dir):
    return datasets.load_cifar10("test", data_dir=data_dir)


def test_cifar10_real(data_dir, cifar_test):
    x, y = cifar_test
    _check_images(x, (32, 32, 3), 10000)
    np.testing.assert_array_equal(np.bincount(y), [1000] * 10)
    train_labels = _images.read_labels(data_dir / "cifar10_jpeg.npz", "train", dataset="CIFAR-10")
    np.testing.assert_array_equal(np.bincount(train_labels), [5000] * 10)
    x_sub, y_sub = datasets.load_cifar10("train", indices=np.arange(0, 50000, 500), data_dir=data_dir)
    _check_images(x_sub, (32, 32, 3), 100)
    np.testing.assert_array_equal(np.bincount(y_sub), [10] * 10)
    # Published CIFAR-10 mean is 125.3/123.0/113.9; the JPEG re-encoding moves it by a few levels.
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)) * 255, [125.3, 123.0, 113.9], atol=3.0)


def test_tinyimagenet_real_and_sorted_wnid_remapping(data_dir):
    wnids = datasets.load_tinyimagenet_wnids(data_dir=data_dir)
    assert wnids.shape == (200,) and wnids[0] == "n02124075"
    val_labels = _images.read_labels(data_dir / "tinyimagenet_val.npz", "val", dataset="Tiny ImageNet")
    np.testing.assert_array_equal(np.bincount(val_labels), [50] * 200)
    x_val, y_val = datasets.load_tinyimagenet("val", indices=np.arange(0, 10000, 100), data_dir=data_dir)
    _check_images(x_val, (64, 64, 3), 100)
    np.testing.assert_array_equal(y_val, val_labels[::100])
    # Sorted-wnid id s names the class wnids[p[s]]: the ImageFolder (sorted folder) order.
    p = tinyimagenet.sorted_to_wnids_labels(wnids)
    np.testing.assert_array_equal(wnids[p], np.sort(wnids))
    np.testing.assert_array_equal(tinyimagenet.wnids_to_sorted_labels(wnids)[p], np.arange(200))
    s = 108  # first known class of the published trial 0
    x_sorted, y_sorted = datasets.load_tinyimagenet("train", classes=[s], label_order="sorted", data_dir=data_dir)
    x_wnid, y_wnid = datasets.load_tinyimagenet("train", classes=[p[s]], data_dir=data_dir)
    assert len(x_sorted) == 500 and set(y_sorted) == {s} and set(y_wnid) == {p[s]} and p[s] != s
    np.testing.assert_array_equal(x_sorted, x_wnid)
    with pytest.raises(ValueError, match="label_order must be one of"):
        datasets.load_tinyimagenet("val", label_order="imagefolder", data_dir=data_dir)


def test_imagenet_crop_resize_real(data_dir):
    path = data_dir / "tinyimagenet_test.npz"
    with np.load(path) as z:
        offsets, corners, jpeg = z["test_offsets"], z["crop_yx"], z["test_jpeg"]
    assert len(offsets) - 1 == 10000 and corners.min() >= 0 and corners.max() <= 32
    idx = [0, 17, 9999]
    crop = datasets.load_imagenet_crop(indices=idx, data_dir=data_dir)
    resize = datasets.load_imagenet_resize(indices=idx, data_dir=data_dir)
    _check_images(crop, (32, 32, 3), 3)
    _check_images(resize, (32, 32, 3), 3)
    for row, i in enumerate(idx):
        full = _images.decode_jpeg(jpeg[offsets[i] : offsets[i + 1]].tobytes(), dataset="test")
        y0, x0 = corners[i]
        np.testing.assert_array_equal(crop[row], full[y0 : y0 + 32, x0 : x0 + 32] / np.float32(255))
        # the reconstruction: Pillow's antialiased bilinear resize of the decoded 64x64 RGB image (torchvision's
        # Resize default), redone here straight from the JPEG bytes
        with Image.open(io.BytesIO(jpeg[offsets[i] : offsets[i + 1]].tobytes())) as source:
            expected = np.asarray(source.convert("RGB").resize((32, 32), Image.BILINEAR))
        np.testing.assert_array_equal(resize[row], expected / np.float32(255))


def test_dbpedia_subset_real(data_dir):
    (x_train, y_train), (x_test, y_test), vocab = datasets.load_dbpedia(data_dir=data_dir)
    assert x_train.shape == (5000, 128) and x_test.shape == (5000, 128) and x_train.dtype == np.int32
    for y in (y_train, y_test):
        counts = np.bincount(y, minlength=14)
        assert len(counts) == 14 and counts.min() >= 300 and counts.max() <= 400
    assert len(vocab) == 20000 and x_train.max() < len(vocab)
    assert (x_train[:, 0] > 0).all()  # no empty abstracts
    # The vocabulary comes from the training texts only: OOV is rarer in training than in test.
    assert (x_train == dbpedia.OOV_ID).mean() < (x_test == dbpedia.OOV_ID).mean()


def test_nothing_written_into_data_dir(data_dir, tmp_path):
    def snapshot():
        return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in data_dir.rglob("*"))

    before = snapshot()
    datasets.load_mnist("test", data_dir=data_dir)
    datasets.load_omniglot(100, data_dir=data_dir)
    datasets.load_cifar10("train", indices=[0, 1], data_dir=data_dir)
    datasets.load_tinyimagenet("train", indices=[0], data_dir=data_dir)
    datasets.load_imagenet_resize(indices=[0], data_dir=data_dir)
    datasets.load_dbpedia(data_dir=data_dir)
    make_sample.build_sample(data_dir, tmp_path / "s.npz")
    assert snapshot() == before
