"""`OpenSetHead`: fit an open-set detector on a trained model's features, as a Keras callback."""

import copy
import hashlib
import itertools

import keras
import numpy as np

from keras_crosr._validation import is_integer
from keras_crosr.dhrnet import inference_model
from keras_crosr.distribute import _feature_model, distributed_features
from keras_crosr.openset import CROSR, NotFittedError, OpenMax, SoftmaxThreshold

__all__ = ["DivergedModelError", "OpenSetHead"]

DETECTORS = {"softmax": SoftmaxThreshold, "openmax": OpenMax, "crosr": CROSR}


def _labels(y):
    """Integer labels `(n,)` from a batch of targets (a dict of targets uses its `"logits"` entry)."""
    if isinstance(y, dict):
        if "logits" not in y:
            raise ValueError(f"dict targets must have a 'logits' entry (the class labels); got keys {sorted(y)}.")
        y = y["logits"]
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"labels must be integer class ids of shape (n,); got shape {y.shape}.")
    return y


def _weights_digest(model):
    """A digest of the values of all of `model`'s weights (trainable or not): what its features depend on."""
    digest = hashlib.blake2b(digest_size=16)
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight.value)).tobytes())
    return digest.hexdigest()


class DivergedModelError(ValueError):
    """The model's features hold NaN or inf: its training diverged, and no detector can be fitted on it."""


def _kind(dtype):
    """`"float"` or `"integer"` (booleans count as integers) for a NumPy, TensorFlow, JAX or torch dtype."""
    return "float" if "float" in str(getattr(dtype, "name", dtype)) else "integer"


def _is_arrays(train_data):
    return isinstance(train_data, tuple) and len(train_data) == 2


def _check_not_endless(train_data):
    """Refuses the endless iterables that say so, which feature extraction would never finish: a
    `tf.data.Dataset` of infinite cardinality and a `keras.utils.PyDataset` whose `num_batches` is None."""
    cardinality = getattr(train_data, "cardinality", None)
    if callable(cardinality) and int(cardinality()) == -1:  # tf.data.INFINITE_CARDINALITY
        raise ValueError(
            "`train_data` is an endless dataset (e.g. `.repeat()`): pass `steps=`, the number of its batches to "
            "fit the detector on, or the dataset without `.repeat()`."
        )
    if isinstance(train_data, keras.utils.PyDataset) and train_data.num_batches is None:
        raise ValueError(
            "`train_data` is an endless dataset (a keras.utils.PyDataset whose `num_batches` is None): pass "
            "`steps=`, the number of its batches to fit the detector on."
        )


class OpenSetHead(keras.callbacks.Callback):
    """Fits an open-set detector on a trained model's (logits, latent) features.

    Used as a callback, it runs at the end of `model.fit`: it extracts the features of `train_data` with
    `keras_crosr.dhrnet.inference_model(model)` (the decoder-free model), batch by batch with a progress
    bar, and fits the detector. `head.fit(model)` does the same on an already trained model. A model without
    a `"latent"` output (`variant="supervised"`) gives the detector its logits `(n, N)` alone (a detector that needs
    z, such as CROSR, is refused for it when training begins). A detector that
    cannot be fitted at the end of `model.fit` raises a `RuntimeError` after training (the network is trained).

    Callbacks end in list order: put `OpenSetHead` after `keras.callbacks.EarlyStopping(restore_best_weights=True)`
    in `callbacks`, so that it fits on the restored weights. The `predict*` methods check that the model's weights
    are still those the detector was fitted on, and raise a `RuntimeError` otherwise (refit with `head.fit(model)`);
    the check hashes the weights, 43 ms for the CIFAR plain CNN and 0.2 s for DenseNet-92 on a 2-core CPU, so call
    them on batches, or use `head.detector_` on `inference_model(model)` features in a per-sample loop.

    Example:

    ```python
    head = OpenSetHead((x_train, y_train), detector="crosr")
    model.fit(x_train, dhrnet_targets(x_train, y_train), epochs=10, callbacks=[head])
    head.predict(x_test)  # (n,) ints in 0..N, N = unknown
    ```

    Args:
        train_data: the training data, as a tuple `(x, y)` of arrays with integer labels `y` of shape `(n,)`,
            or an iterable of `(x, y)` batches (`tf.data.Dataset`, `keras.utils.PyDataset`, ...), where `y`
            may be the target dict of `dhrnet_targets` (its `"logits"` entry holds the labels). Batches
            `(x, y, sample_weight)` are taken too, their weights unused: every sample counts once in the
            detector's fit, so leave out the samples that should not count rather than weighting them 0.
        detector: `"softmax"`, `"openmax"`, `"crosr"` (default parameters), or an unfitted detector
            instance, which is copied: `head.detector_` is the fitted copy.
        batch_size: batch size of the feature extraction and of the `predict*` methods.
        verbose: 0 = silent, 1 = progress bar, 2 = one line.
        steps: the number of batches of an iterable `train_data` to use (default: all of them); needed for an
            endless one, such as a `tf.data.Dataset` with `.repeat()` (`make_tf_dataset(..., repeat=True)`),
            or a `PyDataset` without `num_batches` (both refused without it). An endless Python generator
            cannot be recognised: without `steps`, fitting the detector on one would never end. The batches of a
            repeated dataset cross epoch boundaries, so `steps` of them may count some samples twice and leave
            others out: where you can, give the head the dataset without `.repeat()`, or the arrays.

    Attributes:
        detector_: the fitted detector.
        inference_model_: the decoder-free model (shares the trained model's weights), on one device; the
            `predict*` methods use a copy built in the model's strategy scope, so they shard like the training.
        input_dtype_: the dtype of the inputs the detector was fitted on (None for dict inputs); `predict*`
            refuse integer inputs when it is a float dtype, and float inputs when it is an integer one.
    """

    def __init__(self, train_data, detector="crosr", batch_size=256, verbose=1, steps=None):
        super().__init__()
        if isinstance(detector, str):
            if detector not in DETECTORS:
                raise ValueError(f"unknown detector {detector!r}; expected one of {sorted(DETECTORS)} or an instance.")
        elif isinstance(detector, type):
            raise TypeError(
                f"`detector` must be a name or a detector instance; got the class {detector.__name__}: "
                f"pass an instance, e.g. {detector.__name__}()."
            )
        elif not all(hasattr(detector, method) for method in ("fit", "predict_proba", "decision_function")):
            raise TypeError(
                "`detector` must be a name or a detector with fit / predict_proba / decision_function; "
                f"got {type(detector).__name__}."
            )
        if not is_integer(batch_size, 1):
            raise ValueError(f"`batch_size` must be a positive int; got {batch_size!r}.")
        if steps is not None and not is_integer(steps, 1):
            raise ValueError(f"`steps` must be None or a positive int; got {steps!r}.")
        if steps is not None and _is_arrays(train_data):
            raise ValueError(
                "`steps` counts the batches of an iterable `train_data`; with arrays `(x, y)` every sample is "
                "used: pass `(x[:n], y[:n])` to fit the detector on fewer."
            )
        if steps is None:
            _check_not_endless(train_data)  # before training, not after it
        self.train_data = train_data
        self.detector = detector
        self.batch_size = int(batch_size)
        self.verbose = verbose
        self.steps = None if steps is None else int(steps)

    def on_train_begin(self, logs=None):
        self._new_detector(inference_model(self.model))  # refuses a model without the needed outputs now

    def on_train_end(self, logs=None):
        try:
            self.fit(self.model)
        except DivergedModelError as error:
            raise RuntimeError(f"OpenSetHead could not fit its detector at the end of training: {error}") from error
        except Exception as error:
            raise RuntimeError(
                "OpenSetHead could not fit its detector at the end of training; the network itself finished "
                "training and is usable: refit the head with `head.fit(model)`, e.g. after setting "
                f"`head.detector` to another detector or tail size. The detector's error: {type(error).__name__}: "
                f"{error}"
            ) from error

    def fit(self, model):
        """Extracts the features of `train_data` with `model` and fits the detector. Returns `self`."""
        # Two decoder-free views of the same weights: `feature_model` runs on one device (`predict_on_batch` of a
        # model built in a MirroredStrategy scope would give each replica the whole batch), `sharded_model` is
        # built in the strategy scope for the sharded `predict` of arrays.
        feature_model, sharded_model = inference_model(model), _feature_model(model)
        detector = self._new_detector(feature_model)
        if _is_arrays(self.train_data):
            # Arrays: one sharded `predict` (splits each batch over a strategy's or a JAX mesh's devices).
            x, labels = self.train_data[0], _labels(self.train_data[1])
            if len(x) != len(labels):
                raise ValueError(f"`train_data` x and y differ in length: {len(x)} vs {len(labels)}.")
            features = distributed_features(sharded_model, x, batch_size=self.batch_size, verbose=self.verbose)
            self._check_finite(features)
            detector.fit(self._detector_input(features), labels)
            self._keep(feature_model, sharded_model, detector, np.asarray(x).dtype)
            return self
        logits, latent, labels, dtype = [], [], [], None
        batches, n_batches = self._train_batches()
        progbar = keras.utils.Progbar(n_batches, verbose=self.verbose, unit_name="batch")
        input_rank = len(feature_model.inputs[0].shape)  # (batch, *input_shape)
        for step, batch in enumerate(batches, start=1):
            if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
                raise ValueError("`train_data` must be a tuple (x, y) or yield (x, y) batches with labels.")
            # As NumPy: JAX's and PyTorch's `predict_on_batch` take no TensorFlow tensors (tf.data batches).
            x = keras.tree.map_structure(np.asarray, batch[0])
            if isinstance(x, np.ndarray) and x.ndim != input_rank:
                raise ValueError(
                    f"`train_data` batch {step} has inputs of shape {x.shape}, but the model takes batches of shape "
                    f"{tuple(feature_model.inputs[0].shape)}: is the dataset batched (e.g. `dataset.batch(256)`)?"
                )
            outputs = feature_model.predict_on_batch(x)
            dtype = getattr(x, "dtype", dtype)
            logits.append(outputs["logits"])
            if "latent" in outputs:
                latent.append(outputs["latent"])
            labels.append(_labels(batch[1]))
            progbar.update(step)
        if not labels:
            raise ValueError(
                "`train_data` yielded no batches: it is empty, or an iterator or generator that an earlier fit "
                "used up (pass a tf.data.Dataset, a keras.utils.PyDataset or arrays to fit more than once)."
            )
        features = {"logits": np.concatenate(logits)}
        if latent:
            features["latent"] = np.concatenate(latent)
        self._check_finite(features)
        detector.fit(self._detector_input(features), np.concatenate(labels))
        self._keep(feature_model, sharded_model, detector, dtype)
        return self

    def _new_detector(self, feature_model):
        """A fresh copy of the detector, once the inference model `feature_model` is known to have the outputs it
        needs."""
        detector = DETECTORS[self.detector]() if isinstance(self.detector, str) else copy.deepcopy(self.detector)
        if getattr(detector, "_needs_latent", False) and "latent" not in feature_model.output:
            raise ValueError(
                f"the {type(detector).__name__} detector needs the latent output z, which the model "
                f"{feature_model.name!r} does not have (a variant='supervised' network): use detector='openmax' or "
                "'softmax' on it, or train a DHRNet or LadderNet."
            )
        return detector

    @staticmethod
    def _check_finite(features):
        bad = {name: int(np.sum(~np.isfinite(values))) for name, values in features.items()}
        if any(bad.values()):
            counts = ", ".join(f"{count} in the {name}" for name, count in bad.items() if count)
            raise DivergedModelError(
                f"the model's features hold NaN or inf values ({counts}): its training diverged, so it is not "
                "usable as it is. Train again with a lower learning rate or clipped gradients "
                "(`keras.callbacks.TerminateOnNaN` stops such a run early)."
            )

    def _keep(self, feature_model, sharded_model, detector, dtype):
        self.inference_model_, self._sharded_model, self.detector_ = feature_model, sharded_model, detector
        self.input_dtype_ = None if dtype is None else np.dtype(dtype)
        self._fitted_weights = _weights_digest(feature_model)

    def _train_batches(self):
        """The `(x, y)` batches of an iterable `train_data` (the first `steps`) and their number (None when
        unknown); an endless dataset or PyDataset without `steps` was refused at construction."""
        if self.steps is not None:
            return itertools.islice(iter(self.train_data), self.steps), self.steps
        try:
            n_batches = len(self.train_data)
        except TypeError:  # unknown cardinality
            n_batches = None
        return iter(self.train_data), n_batches

    @staticmethod
    def _detector_input(features):
        return features if "latent" in features else features["logits"]

    def _check_fitted(self):
        if not hasattr(self, "detector_"):
            raise NotFittedError(
                "This OpenSetHead is not fitted yet: pass it to `model.fit(..., callbacks=[head])` "
                "or call `head.fit(model)` first."
            )

    def features(self, x):
        """The detector's input for raw inputs `x` (the model's input, `(n, *input_shape)`).

        Returns:
            a dict `{"logits": (n, N), "latent": (n, L)}` for a model with a latent output (DHRNet, LadderNet),
            whatever the detector, or the `(n, N)` logits of a supervised model.
        """
        self._check_fitted()
        if _weights_digest(self.inference_model_) != self._fitted_weights:
            raise RuntimeError(
                "The model's weights changed after this OpenSetHead was fitted, so its detector no longer matches "
                "the model's features: refit it with `head.fit(model)`. (In `model.fit(callbacks=[...])`, list "
                "the head after `EarlyStopping(restore_best_weights=True)`, which restores weights at the end of "
                "training too.)"
            )
        dtype = getattr(x, "dtype", None)
        if dtype is not None and self.input_dtype_ is not None and _kind(dtype) != _kind(self.input_dtype_):
            raise ValueError(
                f"x has dtype {getattr(dtype, 'name', dtype)}, but this head was fitted on {self.input_dtype_} "
                "inputs: give it inputs prepared as the training data were (e.g. images as float32 in [0, 1], not "
                "uint8 in 0..255); the model would take them, and its features would not be those of the fit."
            )
        return self._detector_input(distributed_features(self._sharded_model, x, batch_size=self.batch_size))

    def predict_proba(self, x):
        """`(n, N + 1)` open-set probabilities of raw inputs `x`, the unknown class last."""
        features = self.features(x)
        return self.detector_.predict_proba(features)

    def predict(self, x, threshold=None):
        """`(n,)` ints in `0..N` (N = unknown) for raw inputs `x`; `threshold` as the detector's `predict`."""
        features = self.features(x)
        return self.detector_.predict(features, threshold=threshold)

    def decision_function(self, x):
        """`(n,)` unknown scores of raw inputs `x` (higher = more unknown)."""
        features = self.features(x)
        return self.detector_.decision_function(features)

    def score(self, x, labels, sample_weight=None):
        """Macro-F1 of `predict(x)` against `labels` `(n,)` in `0..N` (N = unknown), the paper's measure,
        optionally weighted by `sample_weight` `(n,)`."""
        features = self.features(x)
        return self.detector_.score(features, labels, sample_weight=sample_weight)
