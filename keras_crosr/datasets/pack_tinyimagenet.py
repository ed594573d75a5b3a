"""Packs the official Tiny ImageNet-200 download into the local files that the Tiny ImageNet loaders read.

    python -m keras_crosr.datasets.pack_tinyimagenet tiny-imagenet-200.zip DATA_DIR [--overwrite]

SOURCE is the official ``tiny-imagenet-200.zip`` (http://cs231n.stanford.edu/tiny-imagenet-200.zip, read in
place, nothing extracted) or the ``tiny-imagenet-200`` folder it extracts to. DATA_DIR receives, in the JPEG-bytes
layout of keras-crosr's ``DATA.md`` (``np.savez_compressed``, the JPEG files' bytes unchanged):

- ``tinyimagenet_train/tinyimagenet_train_part{k}.npz``, k = 0..3: the train images of labels ``50k`` to
  ``50k + 49``, sorted by (label, image index ``i`` of ``<wnid>_<i>.JPEG``);
- ``tinyimagenet_val.npz``: the val images in order ``val_0`` .. ``val_9999``, labelled by ``val_annotations.txt``;
- ``tinyimagenet_test.npz``: the unlabelled test images in order ``test_0`` .. ``test_9999`` and the crop corners
  ``crop_yx`` of ImageNet-crop.

A label is the wnid's line index in ``wnids.txt``. Every image is checked to be a 64x64 JPEG (from its header). All
files are written to temporary names first and renamed into place only when every one of them is complete.
"""

import argparse
import io
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from keras_crosr.datasets import _source
from keras_crosr.datasets.tinyimagenet import NUM_CLASSES
from keras_crosr.datasets.tinyimagenet import TEST_FILE
from keras_crosr.datasets.tinyimagenet import TRAIN_DIR
from keras_crosr.datasets.tinyimagenet import TRAIN_PARTS
from keras_crosr.datasets.tinyimagenet import VAL_FILE

TOP = "tiny-imagenet-200"
URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
IMAGE_SIZE = (64, 64)
CROP_RANGE = 33  # 64 - 32 + 1 top-left corners of a 32x32 crop per axis


class _Tree:
    """Read access to the files of the ``tiny-imagenet-200`` folder, extracted or inside the official zip.

    Relative paths use ``/``. The folder is ``source`` itself or its ``tiny-imagenet-200`` subfolder (for the zip:
    the ``tiny-imagenet-200/`` members, or top-level ones), whichever holds ``wnids.txt``.
    """

    def __init__(self, source):
        self.source = Path(source).expanduser()
        if self.source.is_dir():
            self._zip = None
            tops = [self.source, self.source / TOP]
            self._top = next((t for t in tops if (t / "wnids.txt").is_file()), None)
        elif zipfile.is_zipfile(self.source):
            self._zip = zipfile.ZipFile(self.source)
            names = [n for n in self._zip.namelist() if not n.endswith("/")]
            self._top = next((t for t in (f"{TOP}/", "") if f"{t}wnids.txt" in names), None)
            self._files, self._dirs = {}, set()
            for name in names:
                if self._top is not None and name.startswith(self._top):
                    folder, _, file = name[len(self._top) :].rpartition("/")
                    self._files.setdefault(folder, []).append(file)
                    while folder:
                        self._dirs.add(folder)
                        folder = folder.rpartition("/")[0]
        elif self.source.exists():
            raise ValueError(f"Tiny ImageNet: {self.source} is neither a folder nor a zip file; give {TOP}.zip or "
                             f"the {TOP} folder extracted from it ({URL})")
        else:
            raise FileNotFoundError(f"Tiny ImageNet: no such file or folder: {self.source}")
        if self._top is None:
            self.close()
            raise FileNotFoundError(f"Tiny ImageNet: no wnids.txt in {self.source} (nor in its {TOP}/ folder); give "
                                    f"{TOP}.zip or the {TOP} folder extracted from it ({URL})")

    def close(self):
        if self._zip is not None:
            self._zip.close()

    def where(self, rel):
        """``rel`` as the user sees it: a path, or ``archive.zip:member``."""
        if self._zip is None:
            return str(self._top / rel)
        return f"{self.source}:{self._top}{rel}"

    def is_dir(self, rel):
        return (self._top / rel).is_dir() if self._zip is None else rel in self._dirs

    def listdir(self, rel):
        """Names of the files directly in folder ``rel`` (hidden ones left out), sorted; ``[]`` when absent."""
        if self._zip is None:
            folder = self._top / rel
            names = [e.name for e in os.scandir(folder) if e.is_file()] if folder.is_dir() else []
        else:
            names = self._files.get(rel, [])
        return sorted(n for n in names if not n.startswith("."))

    def read(self, rel):
        if self._zip is None:
            return (self._top / rel).read_bytes()
        return self._zip.read(f"{self._top}{rel}")

    def read_text(self, rel, missing):
        """Text of file ``rel``; ``FileNotFoundError`` saying ``missing`` when it is absent."""
        folder, _, name = rel.rpartition("/")
        if name not in self.listdir(folder):
            raise FileNotFoundError(f"Tiny ImageNet: {missing}: no {self.where(rel)}")
        return self.read(rel).decode("utf-8")


def _require_dir(tree, rel):
    if not tree.is_dir(rel):
        raise FileNotFoundError(f"Tiny ImageNet: missing folder {tree.where(rel)} (expected the layout of {URL})")


def _numbered(tree, folder, prefix):
    """The files ``<prefix><i>.JPEG`` of ``folder`` sorted by the integer ``i``, as relative paths."""
    pattern = re.compile(rf"{re.escape(prefix)}(\d+)\.JPEG")
    numbered = []
    for name in tree.listdir(folder):
        match = pattern.fullmatch(name)
        if match is None:
            raise ValueError(f"Tiny ImageNet: unexpected file {tree.where(f'{folder}/{name}')}: expected only "
                             f"{prefix}<i>.JPEG files there")
        numbered.append((int(match.group(1)), f"{folder}/{name}"))
    return [rel for _, rel in sorted(numbered)]


def read_wnids(tree):
    """The wnids in ``wnids.txt`` line order: a list of 200 distinct ids like ``n01443537``."""
    wnids = tree.read_text("wnids.txt", "missing the class list wnids.txt").split()
    bad = [w for w in wnids if re.fullmatch(r"n\d{8}", w) is None]
    if bad:
        raise ValueError(f"Tiny ImageNet: {tree.where('wnids.txt')} holds entries that are not WordNet ids like "
                         f"n01443537: {bad[:5]}")
    if len(wnids) != NUM_CLASSES or len(set(wnids)) != NUM_CLASSES:
        raise ValueError(f"Tiny ImageNet: {tree.where('wnids.txt')} lists {len(wnids)} wnids "
                         f"({len(set(wnids))} distinct), expected {NUM_CLASSES} distinct ones")
    return wnids


def train_index(tree, wnids):
    """The train images ``train/<wnid>/images/<wnid>_<i>.JPEG`` sorted by (label, i).

    Returns:
        ``(paths, labels)``: relative paths and int64 ``(n,)`` labels (wnid line index).
    """
    _require_dir(tree, "train")
    paths, labels = [], []
    for label, wnid in enumerate(wnids):
        folder = f"train/{wnid}/images"
        files = _numbered(tree, folder, f"{wnid}_")
        if not files:
            raise ValueError(f"Tiny ImageNet: class {wnid} (line {label + 1} of wnids.txt) has no images in "
                             f"{tree.where(folder)}")
        paths += files
        labels += [label] * len(files)
    return paths, np.asarray(labels, dtype=np.int64)


def val_index(tree, wnids):
    """The val images ``val/images/val_<i>.JPEG`` sorted by i, labelled by ``val/val_annotations.txt``.

    Returns:
        ``(paths, labels)``: relative paths and int64 ``(n,)`` labels (wnid line index).
    """
    _require_dir(tree, "val/images")
    label_of = {w: k for k, w in enumerate(wnids)}
    annotations = {}
    where = tree.where("val/val_annotations.txt")
    text = tree.read_text("val/val_annotations.txt", "missing the val labels")
    for line_number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(f"Tiny ImageNet: {where} line {line_number} is not '<file>\\t<wnid>\\t...': {line!r}")
        name, wnid = fields[0].strip(), fields[1].strip()
        if wnid not in label_of:
            raise ValueError(f"Tiny ImageNet: {where} line {line_number} names the unknown wnid {wnid!r} (not in "
                             f"wnids.txt) for {name}")
        if name in annotations:
            raise ValueError(f"Tiny ImageNet: {where} annotates {name} twice (line {line_number})")
        annotations[name] = label_of[wnid]
    paths = _numbered(tree, "val/images", "val_")
    if not paths:
        raise ValueError(f"Tiny ImageNet: no val images in {tree.where('val/images')}")
    names = {rel.rpartition("/")[2] for rel in paths}
    unannotated = [rel for rel in paths if rel.rpartition("/")[2] not in annotations]
    if unannotated:
        raise ValueError(f"Tiny ImageNet: {len(unannotated)} val images have no annotation in {where}, e.g. "
                         f"{tree.where(unannotated[0])}")
    absent = sorted(set(annotations) - names)
    if absent:
        raise ValueError(f"Tiny ImageNet: {where} annotates {len(absent)} images missing from "
                         f"{tree.where('val/images')}, e.g. {absent[0]}")
    return paths, np.asarray([annotations[rel.rpartition("/")[2]] for rel in paths], dtype=np.int64)


def crop_corners(n):
    """The fixed top-left corners ``(n, 2)`` int64 (y, x), each in 0..32, of ImageNet-crop's 32x32 crops."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, CROP_RANGE, n)
    x = rng.integers(0, CROP_RANGE, n)
    return np.stack([y, x], axis=1)


def read_jpeg_bytes(tree, paths):
    """The files ``paths`` joined, each checked to be a 64x64 JPEG from its header.

    Returns:
        ``(jpeg, offsets)``: flat uint8 bytes and int64 ``(len(paths) + 1,)`` offsets from 0.
    """
    from PIL import Image, UnidentifiedImageError

    chunks = []
    for rel in paths:
        data = tree.read(rel)
        try:
            with Image.open(io.BytesIO(data)) as image:
                kind, size = image.format, image.size
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"Tiny ImageNet: {tree.where(rel)} is not a readable image: {err}") from err
        if kind != "JPEG" or size != IMAGE_SIZE:
            raise ValueError(f"Tiny ImageNet: {tree.where(rel)} is not a 64x64 JPEG: it is a {size[0]}x{size[1]} "
                             f"{kind}")
        chunks.append(data)
    offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in chunks], out=offsets[1:])
    return np.frombuffer(b"".join(chunks), dtype=np.uint8), offsets


def _write_temporary(path, arrays):
    """Writes ``arrays`` with ``np.savez_compressed`` to a new temporary file beside ``path``; returns its path."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez_compressed(file, **arrays)
    except BaseException:
        os.unlink(temporary)
        raise
    return temporary


def pack_tinyimagenet(source, data_dir, *, overwrite=False, progress=None):
    """Writes the Tiny ImageNet files of ``DATA.md`` into ``data_dir`` from the official download.

    Args:
        source: ``tiny-imagenet-200.zip`` or the extracted ``tiny-imagenet-200`` folder.
        data_dir: the local data folder to write into (created if needed).
        overwrite: replace existing output files; without it an existing one is a ``FileExistsError``.
        progress: optional ``callable(message)`` told about each file as it is packed.

    Returns:
        dict ``{"train": [4 part paths], "val": path, "test": path}`` of the written files.

    Raises:
        FileNotFoundError: ``source``, ``wnids.txt``, a split folder or ``val_annotations.txt`` is missing.
        ValueError: a class without images, an unknown or missing val annotation, a file that is not a 64x64 JPEG.
        FileExistsError: an output file exists and ``overwrite`` is false.
    """
    data_dir = Path(data_dir).expanduser()
    outputs = {
        "train": [data_dir / TRAIN_DIR / f"tinyimagenet_train_part{k}.npz" for k in range(TRAIN_PARTS)],
        "val": data_dir / VAL_FILE,
        "test": data_dir / TEST_FILE,
    }
    targets = [*outputs["train"], outputs["val"], outputs["test"]]
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"Tiny ImageNet: {existing[0]} already exists ({len(existing)} of the output files "
                              f"do); pass overwrite=True (--overwrite) to replace them")
    tree = _Tree(source)
    written = {}  # temporary -> target, renamed into place once every file is complete
    try:
        wnids = read_wnids(tree)
        train_paths, y_train = train_index(tree, wnids)
        val_paths, y_val = val_index(tree, wnids)
        _require_dir(tree, "test/images")
        test_paths = _numbered(tree, "test/images", "test_")
        if not test_paths:
            raise ValueError(f"Tiny ImageNet: no test images in {tree.where('test/images')}")
        wnid_array = np.asarray(wnids, dtype="<U9")
        outputs["train"][0].parent.mkdir(parents=True, exist_ok=True)
        per_part = NUM_CLASSES // TRAIN_PARTS
        for k, target in enumerate(outputs["train"]):
            rows = np.flatnonzero(y_train // per_part == k)
            if progress is not None:
                progress(f"{target.name}: {len(rows)} images of labels {k * per_part}..{(k + 1) * per_part - 1}")
            jpeg, offsets = read_jpeg_bytes(tree, [train_paths[i] for i in rows])
            arrays = {"train_jpeg": jpeg, "train_offsets": offsets, "y_train": y_train[rows], "wnids": wnid_array}
            written[_write_temporary(target, arrays)] = target
        if progress is not None:
            progress(f"{VAL_FILE}: {len(val_paths)} images")
        jpeg, offsets = read_jpeg_bytes(tree, val_paths)
        arrays = {"val_jpeg": jpeg, "val_offsets": offsets, "y_val": y_val, "wnids": wnid_array}
        written[_write_temporary(outputs["val"], arrays)] = outputs["val"]
        if progress is not None:
            progress(f"{TEST_FILE}: {len(test_paths)} images")
        jpeg, offsets = read_jpeg_bytes(tree, test_paths)
        arrays = {"test_jpeg": jpeg, "test_offsets": offsets, "crop_yx": crop_corners(len(test_paths))}
        written[_write_temporary(outputs["test"], arrays)] = outputs["test"]
    except BaseException:
        for temporary in written:
            os.unlink(temporary)
        raise
    finally:
        tree.close()
    for temporary, target in written.items():
        os.replace(temporary, target)
    return outputs


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_crosr.datasets.pack_tinyimagenet",
        description=__doc__.splitlines()[0],
        epilog=f"The official download: {URL}. The files are described in keras-crosr's DATA.md.",
    )
    parser.add_argument("source", metavar="SOURCE", help=f"{TOP}.zip, or the {TOP} folder extracted from it")
    parser.add_argument("data_dir", metavar="DATA_DIR",
                        help=f"the data folder to write into (created if needed); the loaders' data_dir= or "
                        f"${_source.ENV_VAR}")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that already exist")
    args = parser.parse_args(argv)
    try:
        outputs = pack_tinyimagenet(args.source, args.data_dir, overwrite=args.overwrite,
                                    progress=lambda message: print(f"packing {message}", file=sys.stderr, flush=True))
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")
    for path in [*outputs["train"], outputs["val"], outputs["test"]]:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)


if __name__ == "__main__":
    main()
