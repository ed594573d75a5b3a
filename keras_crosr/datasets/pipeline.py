"""``tf.data`` pipelines from numpy arrays (TensorFlow is imported only when a pipeline is made)."""

import numpy as np


def make_tf_dataset(
    x, y=None, *, batch_size=128, shuffle=False, seed=None, repeat=False, drop_remainder=False, map_fn=None,
    prefetch=True,
):
    """A batched ``tf.data.Dataset`` over in-memory arrays.

    Args:
        x: array ``(n, ...)`` or a dict of arrays sharing the first axis.
        y: optional targets: an array ``(n, ...)`` or a dict of them (e.g. ``dhrnet_targets(x, y)``).
        batch_size: samples per batch.
        shuffle: reshuffle every epoch over the whole data set; the order is fixed by ``seed``.
        seed: shuffling seed (required when ``shuffle`` is true, so that runs are reproducible).
        repeat: repeat indefinitely.
        drop_remainder: drop the last smaller batch.
        map_fn: optional function applied to each batch (``(x, y)`` or ``x``) before prefetching.
        prefetch: prefetch ``tf.data.AUTOTUNE`` batches.

    Returns:
        ``tf.data.Dataset`` yielding ``(x_batch, y_batch)``, or ``x_batch`` when ``y`` is None.
    """
    import tensorflow as tf

    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if shuffle and seed is None:
        raise ValueError("shuffle=True needs a seed, so that the order is reproducible")
    n = _length(x, "x")
    if y is not None and _length(y, "y") != n:
        raise ValueError(f"x and y must have the same number of samples, got {n} and {_length(y, 'y')}")
    ds = tf.data.Dataset.from_tensor_slices(x if y is None else (x, y))
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if map_fn is not None:
        ds = ds.map(map_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds


def _length(data, name):
    arrays = list(data.values()) if isinstance(data, dict) else [data]
    lengths = {np.shape(a)[0] for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"all arrays in {name} must share the first axis, got lengths {sorted(lengths)}")
    return lengths.pop()
