"""Tests of keras_crosr.datasets.pack_tinyimagenet on a synthetic miniature of the official tiny-imagenet-200."""

import re
import shutil

import numpy as np
import pytest
from PIL import Image

from keras_crosr import datasets
from keras_crosr.datasets import pack_tinyimagenet as pack_module
from keras_crosr.datasets import tinyimagenet

# 200 made-up wnids n00001000..n00001199, listed in a scrambled (not sorted) order as in the real wnids.txt.
WNIDS = [f"n{1000 + (137 * k) % 200:08d}" for k in range(200)]
TRAIN_INDICES = (0, 2, 10)  # numeric order 0, 2, 10; name order would be 0, 10, 2
N_VAL, N_TEST = 12, 5
GRAY = {"train/{w0}/images/{w0}_2.JPEG", "val/images/val_3.JPEG", "test/images/test_1.JPEG"}
ARRAYS = {
    "tinyimagenet_train/tinyimagenet_train_part0.npz": {"train_jpeg", "train_offsets", "y_train", "wnids"},
    "tinyimagenet_val.npz": {"val_jpeg", "val_offsets", "y_val", "wnids"},
    "tinyimagenet_test.npz": {"test_jpeg", "test_offsets", "crop_yx"},
}
OUTPUTS = [f"tinyimagenet_train/tinyimagenet_train_part{k}.npz" for k in range(4)] + [
    "tinyimagenet_val.npz",
    "tinyimagenet_test.npz",
]


def _write_jpeg(path, rng, gray=False, size=64, kind="JPEG"):
    """A smooth random image (upsampled 8x8 noise) saved with Pillow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    coarse = rng.integers(0, 256, (8, 8) if gray else (8, 8, 3), dtype=np.uint8)
    Image.fromarray(coarse).resize((size, size), Image.BILINEAR).save(path, kind)


def _make_official(root):
    """A miniature ``tiny-imagenet-200`` folder under ``root``; returns it and the val labels (wnids line index)."""
    rng = np.random.default_rng(7)
    top = root / "tiny-imagenet-200"
    top.mkdir(parents=True)
    (top / "wnids.txt").write_text("".join(f"{w}\n" for w in WNIDS))
    (top / "words.txt").write_text("".join(f"{w}\tthing {w}\n" for w in sorted(WNIDS)))
    gray = {g.format(w0=WNIDS[0]) for g in GRAY}
    for wnid in WNIDS:
        (top / "train" / wnid / "images").mkdir(parents=True)
        (top / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for i in TRAIN_INDICES:
            rel = f"train/{wnid}/images/{wnid}_{i}.JPEG"
            _write_jpeg(top / rel, rng, gray=rel in gray)
    y_val = rng.integers(0, 200, N_VAL)
    lines = [f"val_{i}.JPEG\t{WNIDS[y_val[i]]}\t0\t1\t62\t63\n" for i in rng.permutation(N_VAL)]
    (top / "val").mkdir()
    (top / "val" / "val_annotations.txt").write_text("".join(lines))
    for i in range(N_VAL):
        _write_jpeg(top / f"val/images/val_{i}.JPEG", rng, gray=f"val/images/val_{i}.JPEG" in gray)
    for i in range(N_TEST):
        _write_jpeg(top / f"test/images/test_{i}.JPEG", rng, gray=f"test/images/test_{i}.JPEG" in gray)
    return top, y_val


def _rgb(path):
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _float(images):
    return np.stack(images).astype(np.float32) / np.float32(255.0)


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """The miniature packed from its folder and from its zip: ``(top, y_val, folder_out, zip_out)``."""
    root = tmp_path_factory.mktemp("tin")
    top, y_val = _make_official(root / "official")
    archive = shutil.make_archive(str(root / "tiny-imagenet-200"), "zip", root / "official", "tiny-imagenet-200")
    from_folder = pack_module.pack_tinyimagenet(top, root / "from_folder")
    pack_module.pack_tinyimagenet(archive, root / "from_zip")
    assert from_folder == {
        "train": [root / "from_folder" / name for name in OUTPUTS[:4]],
        "val": root / "from_folder" / OUTPUTS[4],
        "test": root / "from_folder" / OUTPUTS[5],
    }
    return top, y_val, root / "from_folder", root / "from_zip"


def test_folder_and_zip_give_identical_archives_of_the_original_bytes(packed):
    top, y_val, from_folder, from_zip = packed
    assert sorted(str(p.relative_to(from_folder)) for p in from_folder.rglob("*") if p.is_file()) == sorted(OUTPUTS)
    for name in OUTPUTS:
        with np.load(from_folder / name) as a, np.load(from_zip / name) as b:
            assert set(a.files) == set(b.files) == ARRAYS.get(name, ARRAYS[OUTPUTS[0]])
            for key in a.files:
                assert a[key].dtype == b[key].dtype
                np.testing.assert_array_equal(a[key], b[key])
    files, labels = [], []
    for k in range(4):
        with np.load(from_folder / OUTPUTS[k]) as part:
            assert part["train_offsets"].dtype == np.int64 and part["y_train"].dtype == np.int64
            assert part["wnids"].dtype == np.dtype("<U9")
            np.testing.assert_array_equal(part["wnids"], WNIDS)
            np.testing.assert_array_equal(part["y_train"], np.repeat(np.arange(50 * k, 50 * k + 50), 3))
            jpeg, offsets = part["train_jpeg"], part["train_offsets"]
            files += [jpeg[offsets[i] : offsets[i + 1]].tobytes() for i in range(len(offsets) - 1)]
            labels += part["y_train"].tolist()
    expected = [(top / f"train/{w}/images/{w}_{i}.JPEG").read_bytes() for w in WNIDS for i in TRAIN_INDICES]
    assert files == expected  # unchanged bytes, sorted by (label, numeric image index)
    with np.load(from_folder / "tinyimagenet_val.npz") as val:
        np.testing.assert_array_equal(val["y_val"], y_val)
        jpeg, offsets = val["val_jpeg"], val["val_offsets"]
        assert offsets[0] == 0 and offsets[-1] == len(jpeg) and jpeg.dtype == np.uint8
        assert [jpeg[offsets[i] : offsets[i + 1]].tobytes() for i in range(N_VAL)] == [
            (top / f"val/images/val_{i}.JPEG").read_bytes() for i in range(N_VAL)
        ]


def test_loaders_read_the_packed_files(packed):
    top, y_val, data_dir, _ = packed
    np.testing.assert_array_equal(datasets.load_tinyimagenet_wnids(data_dir=data_dir), WNIDS)
    x, y = datasets.load_tinyimagenet("train", data_dir=data_dir)
    np.testing.assert_array_equal(y, np.repeat(np.arange(200), 3))
    originals = [_rgb(top / f"train/{w}/images/{w}_{i}.JPEG") for w in WNIDS for i in TRAIN_INDICES]
    np.testing.assert_array_equal(x, _float(originals))
    x, y = datasets.load_tinyimagenet("val", data_dir=data_dir)
    np.testing.assert_array_equal(y, y_val)
    np.testing.assert_array_equal(x, _float([_rgb(top / f"val/images/val_{i}.JPEG") for i in range(N_VAL)]))
    # label_order="sorted": classes and labels are indices into sorted(WNIDS).
    _, y_sorted = datasets.load_tinyimagenet("val", label_order="sorted", data_dir=data_dir)
    np.testing.assert_array_equal(y_sorted, [sorted(WNIDS).index(WNIDS[label]) for label in y_val])
    x_one, y_one = datasets.load_tinyimagenet("train", classes=[0], label_order="sorted", data_dir=data_dir)
    wnid = sorted(WNIDS)[0]
    np.testing.assert_array_equal(y_one, [0, 0, 0])
    np.testing.assert_array_equal(x_one, _float([_rgb(top / f"train/{wnid}/images/{wnid}_{i}.JPEG")
                                                 for i in TRAIN_INDICES]))
    # ImageNet-crop / -resize from the test images, with the developers' two-draw crop corners.
    rng = np.random.default_rng(0)
    corners = np.stack([rng.integers(0, 33, N_TEST), rng.integers(0, 33, N_TEST)], axis=1)
    with np.load(data_dir / "tinyimagenet_test.npz") as test:
        assert test["crop_yx"].dtype == np.int64
        np.testing.assert_array_equal(test["crop_yx"], corners)
    test_images = [_rgb(top / f"test/images/test_{i}.JPEG") for i in range(N_TEST)]
    crops = [image[y0 : y0 + 32, x0 : x0 + 32] for image, (y0, x0) in zip(test_images, corners)]
    np.testing.assert_array_equal(datasets.load_imagenet_crop(data_dir=data_dir), _float(crops))
    resized = [np.asarray(Image.fromarray(image).resize((32, 32), Image.BILINEAR)) for image in test_images]
    np.testing.assert_array_equal(datasets.load_imagenet_resize(data_dir=data_dir), _float(resized))


def test_existing_files_are_kept_unless_overwrite(packed, tmp_path, capsys):
    top, _, data_dir, _ = packed
    out = tmp_path / "out"
    shutil.copytree(data_dir, out)
    (out / "tinyimagenet_val.npz").write_bytes(b"old")
    with pytest.raises(FileExistsError, match=r"tinyimagenet_train_part0.npz already exists \(6 of the output files "
                       r"do\); pass overwrite=True \(--overwrite\)"):
        pack_module.pack_tinyimagenet(top, out)
    assert (out / "tinyimagenet_val.npz").read_bytes() == b"old"
    with pytest.raises(SystemExit) as exit_:
        pack_module.main([str(top), str(out)])
    assert exit_.value.code == 1 and "--overwrite" in capsys.readouterr().err
    pack_module.main([str(top), str(out), "--overwrite"])
    err = capsys.readouterr().err
    assert "packing tinyimagenet_train_part0.npz: 150 images of labels 0..49" in err and "wrote" in err
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (data_dir / name).read_bytes()
    assert not list(out.rglob("*.tmp"))  # no temporary file left behind


def _replace_image(rel, size, kind):
    def damage(top):
        _write_jpeg(top / rel, np.random.default_rng(0), size=size, kind=kind)
    return damage


def _edit_annotation(old, new):
    def damage(top):
        path = top / "val" / "val_annotations.txt"
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(new if line.startswith(old) else line for line in lines))
    return damage


@pytest.mark.parametrize("damage, error, match", [
    (lambda top: (top / "wnids.txt").unlink(), FileNotFoundError, r"no wnids.txt in .*official"),
    (_replace_image(f"train/{WNIDS[5]}/images/{WNIDS[5]}_2.JPEG", 32, "JPEG"), ValueError,
     rf"train/{WNIDS[5]}/images/{WNIDS[5]}_2.JPEG is not a 64x64 JPEG: it is a 32x32 JPEG"),
    # the last file packed: the finished archives' temporary files must be removed too
    (_replace_image("test/images/test_4.JPEG", 64, "PNG"), ValueError,
     r"test/images/test_4.JPEG is not a 64x64 JPEG: it is a 64x64 PNG"),
    (_edit_annotation("val_3.JPEG", "val_3.JPEG\tn99999999\t0\t0\t63\t63\n"), ValueError,
     r"val_annotations.txt line \d+ names the unknown wnid 'n99999999' \(not in wnids.txt\) for val_3.JPEG"),
    (_edit_annotation("val_11.JPEG", ""), ValueError, r"1 val images have no annotation in .*e\.g\. .*val_11.JPEG"),
    (lambda top: shutil.rmtree(top / "train" / WNIDS[7] / "images"), ValueError,
     rf"class {WNIDS[7]} \(line 8 of wnids.txt\) has no images in"),
    (lambda top: shutil.rmtree(top / "test"), FileNotFoundError, r"missing folder .*test/images"),
    (lambda top: (top / "val" / "val_annotations.txt").unlink(), FileNotFoundError,
     r"missing the val labels: no .*val_annotations.txt"),
])
def test_bad_input_is_named_and_nothing_is_written(packed, tmp_path, damage, error, match):
    top = shutil.copytree(packed[0], tmp_path / "official" / "tiny-imagenet-200")
    damage(top)
    with pytest.raises(error, match=match):
        pack_module.pack_tinyimagenet(tmp_path / "official", tmp_path / "out")
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]  # neither outputs nor temporaries


def test_missing_files_say_how_to_make_them(tmp_path):
    hint = re.escape(tinyimagenet.PACK_HINT)
    assert "http://cs231n.stanford.edu/tiny-imagenet-200.zip" in tinyimagenet.PACK_HINT
    command = "`python -m keras_crosr.datasets.pack_tinyimagenet tiny-imagenet-200.zip DATA_DIR`"
    assert command in tinyimagenet.PACK_HINT
    for load in (
        lambda: datasets.load_tinyimagenet("val", data_dir=tmp_path),
        lambda: datasets.load_tinyimagenet_wnids(data_dir=tmp_path),
        lambda: datasets.load_imagenet_crop(data_dir=tmp_path),
        lambda: datasets.load_imagenet_resize(data_dir=tmp_path),
    ):
        with pytest.raises(datasets.DatasetNotFoundError, match=rf"local file not found: .*\(.*\); {hint}$"):
            load()
    with pytest.raises(datasets.DatasetNotFoundError, match=rf"tensorflow-datasets does not provide it; {hint}$"):
        datasets.load_tinyimagenet("val", source="auto", data_dir=tmp_path)
    (tmp_path / "tinyimagenet_train").mkdir()
    with pytest.raises(datasets.DatasetNotFoundError, match=rf"missing training parts.*; {hint}$"):
        datasets.load_tinyimagenet("train", data_dir=tmp_path)
    from keras_crosr.datasets.jpeg_pipeline import tinyimagenet_tf_dataset

    with pytest.raises(datasets.DatasetNotFoundError, match=rf"local file not found: .*; {hint}$"):
        tinyimagenet_tf_dataset("val", data_dir=tmp_path)
    with pytest.raises(datasets.DatasetNotFoundError, match="CIFAR-10") as error:
        datasets.load_cifar10(source="local", data_dir=tmp_path)
    assert "pack_tinyimagenet" not in str(error.value)
