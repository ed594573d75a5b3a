"""Data-parallel training of a DHRNet with TensorFlow's and Keras' own distribution APIs.

Nothing here replaces an engine: ``tf.distribute.MirroredStrategy`` (one machine, several devices),
``tf.distribute.MultiWorkerMirroredStrategy`` (several machines, ``TF_CONFIG``) and
``keras.distribution.DataParallel`` (JAX backend) do the work. The two helpers make a distributed run give the
same losses and the same open-set head as a single-device run with the same seed and global batch:

- :func:`distributed_dataset`: a ``tf.data`` pipeline of global batches whose order in epoch ``e`` depends on
  ``(seed, e)`` alone. A plain ``Dataset.shuffle(seed=..., reshuffle_each_iteration=True)`` depends on how many
  iterators were made, and Keras makes one extra iterator before the first epoch when a strategy is set (to build
  the model), so such a run sees a different order than on one device.
- :func:`multi_worker_mirrored_strategy`: ``tf.distribute.MultiWorkerMirroredStrategy`` usable by Keras 3's
  ``model.fit`` / ``model.predict``.
- :func:`distributed_features`: the ``{"logits", "latent"}`` features of the training set, extracted with
  ``model.predict`` sharded over the model's devices, in input order, for fitting a detector.

One machine, several devices (TensorFlow backend)::

    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        model = compile_dhrnet(build_dhrnet("cifar_cnn", num_classes=10))
    dataset, steps = distributed_dataset(x, y, global_batch_size=256, seed=0)
    model.fit(dataset, epochs=100, steps_per_epoch=steps)
    features = distributed_features(model, x, batch_size=256)
    detector = CROSR().fit(features, y)

Several machines: the same code on every worker, with ``TF_CONFIG`` set on each and
``strategy = multi_worker_mirrored_strategy()`` (TensorFlow's strategy, made to accept two ``reduce`` calls of
Keras 3). JAX backend: ``keras.distribution.set_distribution(keras.distribution.DataParallel())`` before building
the model, and no scope; the same ``distributed_dataset`` (or NumPy arrays with ``shuffle=False`` where TensorFlow
is not installed). ``OpenSetHead`` works as it is under all three when used as a ``fit`` callback: it extracts the
features with ``distributed_features``, the sharded extraction, from arrays, and batch by batch from a dataset.
"""

import functools

import keras
import numpy as np

from keras_crosr._validation import is_integer, positive_int
from keras_crosr.dhrnet import dhrnet_targets
from keras_crosr.dhrnet import inference_model


def distributed_dataset(x, y, global_batch_size, *, seed=None, model=None):
    """An endless ``tf.data`` pipeline of DHRNet training batches for ``model.fit`` under any strategy.

    Epoch ``e`` is one pass over the samples, in the order ``stateless_shuffle(range(n), seed=(seed, e))`` (or in
    input order when ``seed`` is None), cut into ``n // global_batch_size`` full global batches (the remainder of
    each epoch is dropped, so that every replica gets an equal share). The order depends on ``(seed, e)`` only,
    never on how many iterators were made, so a one-device run and a distributed run see the same batches.
    Keras splits each global batch among the replicas (``MirroredStrategy``: consecutive slices; the auto-shard
    policy is ``DATA``, so ``MultiWorkerMirroredStrategy`` workers also take their slice of every global batch,
    and each worker must be given the same ``x``, ``y`` and ``seed``).

    Args:
        x: images ``(n, H, W, C)`` or token ids ``(n, T)``.
        y: integer labels ``(n,)``.
        global_batch_size: samples per step over all replicas (the per-replica batch times their number).
        seed: shuffling seed (an int); None keeps the input order.
        model: optional; passed to :func:`keras_crosr.dhrnet_targets` (a supervised model gets ``{"logits"}``).

    Returns:
        ``(dataset, steps_per_epoch)``: the dataset yields ``(x_batch, targets)`` with the target dict of
        ``dhrnet_targets``; pass ``steps_per_epoch`` to ``model.fit`` (the dataset never ends). ``x`` is held in
        memory as one tensor; for the JPEG archives see :mod:`keras_crosr.datasets.jpeg_pipeline`.
    """
    import tensorflow as tf

    x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"`y` must be integer labels of shape (n,); received dtype {y.dtype}, shape {y.shape}.")
    if x.ndim < 2 or len(x) != len(y):
        raise ValueError(f"`x` must be an array (n, ...) with one row per label; received {x.shape} for {len(y)}.")
    global_batch_size = positive_int(global_batch_size, "global_batch_size")
    if global_batch_size > len(y):
        raise ValueError(f"`global_batch_size`={global_batch_size} exceeds the {len(y)} samples.")
    if seed is not None and not is_integer(seed, 0):
        raise ValueError(f"`seed` must be a non-negative integer or None; received seed={seed!r}.")
    n = len(y)
    x_all, y_all = tf.constant(x), tf.constant(y.astype(np.int64))

    def epoch_batches(epoch):
        order = tf.range(n, dtype=tf.int64)
        if seed is not None:
            key = tf.stack([tf.constant(int(seed), tf.int64), epoch])
            order = tf.random.experimental.stateless_shuffle(order, seed=key)
        return tf.data.Dataset.from_tensor_slices(order).batch(global_batch_size, drop_remainder=True)

    def gather(indices):
        x_batch = tf.gather(x_all, indices)
        return x_batch, dhrnet_targets(x_batch, tf.gather(y_all, indices), model=model)

    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = (
        tf.data.Dataset.counter()
        .flat_map(epoch_batches)
        .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
        .with_options(options)
    )
    return dataset, n // global_batch_size


@functools.cache
def _multi_worker_strategy_class():
    import tensorflow as tf

    class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """``tf.distribute.MultiWorkerMirroredStrategy`` whose ``reduce`` takes what Keras 3 gives it."""

        def reduce(self, reduce_op, value, axis):
            def reduce_one(v):
                local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else tf.convert_to_tensor(v)
                rank = local.shape.rank
                return super(MultiWorkerMirroredStrategy, self).reduce(reduce_op, v, None if rank == 0 else axis)

            return tf.nest.map_structure(reduce_one, value)

    return MultiWorkerMirroredStrategy


def multi_worker_mirrored_strategy(**kwargs):
    """A ``tf.distribute.MultiWorkerMirroredStrategy`` that Keras 3's ``model.fit`` and ``predict`` can use.

    Keras 3 (up to 3.15 at least; keras-team/keras#20585, #20329) calls ``strategy.reduce`` on a whole
    ``(x, targets)`` batch before the first step and with ``axis=0`` on the scalar losses after each step; the
    TensorFlow strategy reduces only single values and rejects an axis on scalars, so ``fit`` fails on every
    worker. The strategy returned here is TensorFlow's own (a subclass), with ``reduce`` applied to each value of
    a structure and scalars reduced without an axis; training, all-reduce and sharding are unchanged.

    Args:
        **kwargs: passed to ``tf.distribute.MultiWorkerMirroredStrategy`` (``cluster_resolver``,
            ``communication_options``, e.g. ``tf.distribute.experimental.CommunicationOptions(timeout_seconds=...)``).

    The cluster comes from ``TF_CONFIG`` (one JSON per worker, e.g. ``{"cluster": {"worker": ["host1:12345",
    "host2:12345"]}, "task": {"type": "worker", "index": 0}}``); without it, one local worker.
    """
    return _multi_worker_strategy_class()(**kwargs)


def _replicas(model):
    """How many ways a batch is split: the strategy's replicas (TensorFlow) or the mesh's batch axis (JAX)."""
    if keras.backend.backend() == "tensorflow":
        return model.distribute_strategy.num_replicas_in_sync
    distribution = keras.distribution.distribution()
    if distribution is None or not hasattr(distribution, "batch_dim_name"):
        return 1
    mesh = distribution.device_mesh
    return mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)]


def _feature_model(model):
    """``inference_model(model)`` (``model`` itself when decoder-free), built in its strategy scope (TensorFlow)."""
    if keras.backend.backend() == "tensorflow":
        with model.distribute_strategy.scope():
            return inference_model(model)
    return inference_model(model)


def _model_input(model, x):
    """``x`` with ``model``'s input rank, or a ``ValueError`` that names ``x.shape`` (or the non-finite values).

    As Keras does, a channel axis of size 1 is added or dropped: ``(n, 28, 28)`` feeds ``(None, 28, 28, 1)``.
    Doing it here keeps the rank of every call the same, so that ``predict`` of a reused model never retraces
    with an unknown rank.
    """
    shape, expected = x.shape, tuple(model.inputs[0].shape[1:])
    if x.ndim and not len(x):
        raise ValueError(f"`x` holds no samples (shape {shape}).")
    if x.ndim == len(expected) and expected[-1:] == (1,):
        x = x[..., None]
    elif x.ndim == len(expected) + 2 and shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != len(expected) + 1 or any(want is not None and got != want for got, want in zip(x.shape[1:], expected)):
        raise ValueError(
            f"`x` must have shape (n, {', '.join(map(str, expected))}) for model {model.name!r}; received {shape}."
        )
    if np.issubdtype(x.dtype, np.floating):
        non_finite = np.count_nonzero(~np.isfinite(x))
        if non_finite:
            raise ValueError(f"`x` holds {non_finite} NaN or infinite values.")
    return x


def distributed_features(model, x, *, batch_size=256, verbose=0):
    """The detector features of ``x``, extracted with ``model.predict`` sharded over the model's devices.

    The decoder-free :func:`keras_crosr.inference_model` is built in the model's ``tf.distribute`` strategy scope
    (TensorFlow backend), or runs under the global ``keras.distribution`` (JAX backend), so each batch is split
    among the replicas (and workers) and the rows come back in input order, equal to the single-device features.
    Arrays are padded with zero rows to a multiple of the replicas (and the padding's rows dropped), because a JAX
    mesh only takes batches that split evenly; a dataset's batches must then split evenly themselves.

    Args:
        model: a trained ``build_dhrnet`` model (built under the strategy, or the distribution, to shard), or its
            ``inference_model``, which is used as it is (no new model is built, so repeated calls trace once).
        x: inputs ``(n, ...)``, or a ``tf.data.Dataset`` of input batches in a fixed order.
        batch_size: global batch size of the extraction (arrays only); a multiple of the number of replicas.
        verbose: Keras progress bar of ``predict`` (0 = silent, 1 = bar, 2 = one line).

    Returns:
        dict ``{"logits": (n, N), "latent": (n, D)}`` (supervised: ``{"logits"}``) of NumPy float32 arrays, the
        input of CROSR / OpenMax ``fit`` (OpenMax and the softmax threshold use ``features["logits"]``).
    """
    batch_size = positive_int(batch_size, "batch_size")
    replicas = _replicas(model)
    if batch_size % replicas:
        raise ValueError(f"`batch_size`={batch_size} must be a multiple of the {replicas} replicas.")
    feature_model = _feature_model(model)
    if hasattr(x, "element_spec"):  # a tf.data.Dataset: already batched
        features = feature_model.predict(x, verbose=verbose)
    else:
        x = _model_input(feature_model, np.asarray(x))
        n = len(x)
        if n % replicas:  # batch_size is a multiple of replicas: then the last batch splits evenly too
            x = np.concatenate([x, np.zeros((replicas - n % replicas,) + x.shape[1:], dtype=x.dtype)])
        features = feature_model.predict(x, batch_size=batch_size, verbose=verbose)
        features = {key: value[:n] for key, value in features.items()}
    return {key: np.asarray(value, dtype=np.float32) for key, value in features.items()}
