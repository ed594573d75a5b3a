"""``tf.data`` pipelines over the JPEG-bytes archives, decoded in parallel by ``tf.io.decode_jpeg``.

The numpy loaders (:func:`keras_crosr.datasets.load_cifar10`, :func:`~keras_crosr.datasets.load_tinyimagenet`)
decode every image once with Pillow, in one thread, into a float32 array: simple and right for small data. For
full-size training these pipelines keep the accelerator busy instead: the compressed bytes stay in memory
(46 MB for the CIFAR-10 training split), ``num_parallel_calls=AUTOTUNE`` decoders fill a cache of uint8 images
on the first epoch (150 MB for CIFAR-10 train, 1.2 GB for Tiny ImageNet train), every epoch is reshuffled from
``seed``, batches are scaled to float32 [0, 1] and prefetched::

    train = cifar10_tf_dataset("train", batch_size=128, shuffle=True, seed=0, targets="dhrnet", data_dir=root)
    model.fit(train, epochs=100)

``tf.io.decode_jpeg`` (``dct_method="INTEGER_ACCURATE"``, libjpeg's default) and Pillow may differ by 1 on a few
pixel values. TensorFlow is imported when a pipeline is made.
"""

from pathlib import Path

import numpy as np

from keras_crosr._validation import is_integer
from keras_crosr.datasets import _images
from keras_crosr.datasets import _source
from keras_crosr.datasets.tinyimagenet import NUM_CLASSES as TINYIMAGENET_CLASSES
from keras_crosr.datasets.tinyimagenet import PACK_HINT
from keras_crosr.datasets.tinyimagenet import TRAIN_DIR
from keras_crosr.datasets.tinyimagenet import TRAIN_PARTS
from keras_crosr.datasets.tinyimagenet import VAL_FILE
from keras_crosr.datasets.tinyimagenet import wnids_to_sorted_labels

TARGETS = ("labels", "dhrnet", None)


def _encoded_images(path, split, positions, *, dataset):
    """The JPEG files ``positions`` of an archive as a NumPy object array of ``bytes``."""
    keys = [f"{split}_jpeg", f"{split}_offsets"]
    arrays = _source.load_npz(path, keys, dataset=dataset)
    jpeg, offsets = arrays[keys[0]], arrays[keys[1]]
    if offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != len(jpeg) or (np.diff(offsets) <= 0).any():
        raise ValueError(f"{dataset}: damaged archive {path}: offsets do not index the {len(jpeg)} JPEG bytes")
    encoded = np.empty(len(positions), dtype=object)
    for row, i in enumerate(positions):
        encoded[row] = jpeg[offsets[i] : offsets[i + 1]].tobytes()
    return encoded


def jpeg_archive_dataset(
    archives,
    split,
    *,
    size,
    num_classes,
    classes=None,
    indices=None,
    label_map=None,
    batch_size=128,
    shuffle=False,
    seed=None,
    cache=True,
    repeat=False,
    drop_remainder=False,
    targets="labels",
    dataset="JPEG archive",
):
    """A batched ``tf.data.Dataset`` decoding archives in the JPEG-bytes layout of keras-crosr's ``DATA.md``.

    Args:
        archives: path of one ``.npz`` archive, or a list of them read as one split (Tiny ImageNet's parts).
        split: the array prefix: ``"train"`` reads ``train_jpeg``, ``train_offsets`` and ``y_train``.
        size: the images' side; every image must decode to ``(size, size, 3)`` (grayscale is made RGB).
        num_classes: the number of classes of the labels (validates ``classes``).
        classes: optional class ids to keep (in the archive's label order); indices: optional positions in the
            split to keep. The kept samples stay in split order.
        label_map: optional int array mapping archive labels to returned labels (also applied to ``classes``
            through its inverse, i.e. ``classes`` are given in the returned order).
        batch_size: samples per batch.
        shuffle: reshuffle the whole split every epoch; the order of every epoch is fixed by ``seed``.
        seed: shuffling seed (required when ``shuffle`` is true).
        cache: ``True`` caches the decoded uint8 images in memory after the first epoch, a string caches them in
            that file, ``False`` decodes on every epoch (the least memory).
        repeat: repeat indefinitely (pass ``steps_per_epoch`` to ``fit``).
        drop_remainder: drop the last smaller batch (e.g. for equal shares among replicas).
        targets: ``"labels"`` yields ``(x, y)``, ``"dhrnet"`` yields ``(x, dhrnet_targets(x, y))`` for training
            a DHRNet, ``None`` yields ``x`` alone.
        dataset: name used in error messages.

    Returns:
        ``tf.data.Dataset`` of float32 ``(batch, size, size, 3)`` images in [0, 1] (and int64 ``(batch,)``
        labels), with its cardinality known.
    """
    import tensorflow as tf

    if targets not in TARGETS:
        raise ValueError(f"{dataset}: targets must be one of {TARGETS}, got {targets!r}")
    if not is_integer(batch_size, 1):
        raise ValueError(f"{dataset}: batch_size must be a positive integer, got {batch_size!r}")
    if shuffle and seed is None:
        raise ValueError(f"{dataset}: shuffle=True needs a seed, so that the order is reproducible")
    paths = list(archives) if isinstance(archives, (list, tuple)) else [archives]
    if not paths:
        raise ValueError(f"{dataset}: no archive given")
    missing = [str(path) for path in paths if not Path(path).is_file()]
    if missing:
        raise _source.DatasetNotFoundError(
            f"{dataset}: missing archives {missing}; set {_source.ENV_VAR} or data_dir= to the folder holding "
            f"them ({_source.LAYOUT})"
        )
    labels = [_images.read_labels(path, split, dataset=dataset) for path in paths]
    all_labels = np.concatenate(labels)
    if label_map is not None:
        label_map = np.asarray(label_map, dtype=np.int64)
        if label_map.shape != (num_classes,) or not np.array_equal(np.sort(label_map), np.arange(num_classes)):
            raise ValueError(f"{dataset}: label_map must be a permutation of 0..{num_classes - 1}")
        if classes is not None:
            inverse = np.argsort(label_map)
            classes = inverse[_images.check_classes(classes, num_classes, dataset)]
    keep = _images.select(all_labels, classes, indices, num_classes=num_classes, dataset=dataset)
    encoded, base = [], 0
    for path, part_labels in zip(paths, labels):
        local = keep[(keep >= base) & (keep < base + len(part_labels))] - base
        base += len(part_labels)
        encoded.append(_encoded_images(path, split, local, dataset=dataset))
    kept_labels = all_labels[keep] if label_map is None else label_map[all_labels[keep]]

    def decode(data, label):
        image = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
        return tf.ensure_shape(image, (size, size, 3)), label

    def finish(images, batch_labels):
        x = tf.cast(images, tf.float32) / 255.0
        if targets is None:
            return x
        if targets == "labels":
            return x, batch_labels
        from keras_crosr.dhrnet import dhrnet_targets

        return x, dhrnet_targets(x, batch_labels)

    ds = tf.data.Dataset.from_tensor_slices((np.concatenate(encoded), kept_labels))
    if shuffle and not cache:
        ds = ds.shuffle(len(keep), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache("" if cache is True else str(cache))
        if shuffle:
            ds = ds.shuffle(len(keep), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def cifar10_tf_dataset(split="train", *, classes=None, indices=None, data_dir=None, **pipeline):
    """CIFAR-10 from the local ``cifar10_jpeg.npz`` as a ``tf.data`` pipeline (the numpy path is ``load_cifar10``).

    Args:
        split: ``"train"`` (50,000) or ``"test"`` (10,000).
        classes, indices: as :func:`keras_crosr.datasets.load_cifar10`.
        data_dir: local data root; defaults to ``$KERAS_CROSR_DATA``.
        **pipeline: ``batch_size``, ``shuffle``, ``seed``, ``cache``, ``repeat``, ``drop_remainder``, ``targets``
            of :func:`jpeg_archive_dataset`.

    Returns:
        ``tf.data.Dataset`` of float32 ``(batch, 32, 32, 3)`` in [0, 1] with int64 labels in 0..9.
    """
    _source.check_split(split, ("train", "test"), "CIFAR-10")
    path = _source.resolve("CIFAR-10", "cifar10_jpeg.npz", source="local", data_dir=data_dir)[1]
    return jpeg_archive_dataset(
        path, split, size=32, num_classes=10, classes=classes, indices=indices, dataset="CIFAR-10", **pipeline
    )


def tinyimagenet_tf_dataset(
    split="train", *, classes=None, indices=None, label_order="wnids", data_dir=None, **pipeline
):
    """Tiny ImageNet-200 from the local archives as a ``tf.data`` pipeline (numpy path: ``load_tinyimagenet``).

    Args:
        split: ``"train"`` (100,000 from the four parts) or ``"val"`` (10,000).
        classes, indices, label_order: as :func:`keras_crosr.datasets.load_tinyimagenet`.
        data_dir: local data root; defaults to ``$KERAS_CROSR_DATA``.
        **pipeline: options of :func:`jpeg_archive_dataset`.

    Returns:
        ``tf.data.Dataset`` of float32 ``(batch, 64, 64, 3)`` in [0, 1] with int64 labels in 0..199.
    """
    _source.check_split(split, ("train", "val"), "Tiny ImageNet")
    if label_order not in ("wnids", "sorted"):
        raise ValueError(f"Tiny ImageNet: label_order must be 'wnids' or 'sorted', got {label_order!r}")
    filename = TRAIN_DIR if split == "train" else VAL_FILE
    path = _source.resolve("Tiny ImageNet", filename, source="local", data_dir=data_dir, hint=PACK_HINT)[1]
    paths = [path / f"tinyimagenet_train_part{k}.npz" for k in range(TRAIN_PARTS)] if split == "train" else [path]
    label_map = None
    if label_order == "sorted":
        wnids = _source.load_npz(paths[0], ["wnids"], dataset="Tiny ImageNet")["wnids"]
        label_map = wnids_to_sorted_labels(wnids)
    return jpeg_archive_dataset(
        paths, split, size=64, num_classes=TINYIMAGENET_CLASSES, classes=classes, indices=indices,
        label_map=label_map, dataset="Tiny ImageNet", **pipeline,
    )
