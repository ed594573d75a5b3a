"""A fitted open-set detector as Keras layers, and one deployable model from raw input to N + 1 probabilities.

`OpenSetLayer` holds a fitted `OpenMax` / `CROSR` head as non-trainable weights (class means and Weibull
parameters, like `keras.layers.Normalization` after `adapt`) and computes the detector's `predict_proba` with
`keras.ops` only; `SoftmaxThresholdLayer` does the same for `SoftmaxThreshold`. `build_open_set_model` puts
either layer on top of a DHRNet's decoder-free model: the result saves to `.keras` (and reloads with
`safe_mode=True`) and exports with `model.export(path)`; inference then needs neither numpy, scipy nor libmr.

```python
detector = CROSR().fit(inference_model(model).predict(x_train), y_train)
open_set_model = build_open_set_model(model, detector)
open_set_model.predict(x_test)  # (n, N + 1), unknown last; equals detector.predict_proba
open_set_model.export("crosr_savedmodel")
```
"""

import keras
import numpy as np
from keras import ops

from keras_crosr._validation import is_integer
from keras_crosr.dhrnet import inference_model
from keras_crosr.openset import CROSR, DISTANCES, EUCOS_L2_SCALE, NotFittedError, OpenMax, SoftmaxThreshold

__all__ = ["OpenSetLayer", "SoftmaxThresholdLayer", "build_open_set_model", "open_set_layer"]

_WEIBULL_WEIGHTS = ("shape", "sign", "small_score", "translate_amount", "scale_excess")


def _check_fitted(detector):
    if not hasattr(detector, "n_classes_"):
        raise NotFittedError(f"This {type(detector).__name__} is not fitted yet: call fit(features, labels) first.")


def _split_inputs(inputs, layer_name):
    """`(logits, latent or None)` from a dict `{"logits", "latent"}` or a logits tensor."""
    if isinstance(inputs, dict):
        if "logits" not in inputs:
            raise ValueError(f"{layer_name} expects a dict with a 'logits' entry; got keys {sorted(inputs)}.")
        return inputs["logits"], inputs.get("latent")
    return inputs, None


def _width(shape, name, layer_name):
    if shape is None or len(shape) != 2:
        raise ValueError(f"{layer_name}: `{name}` must have shape (batch, width); got {shape}.")
    return shape[-1]


@keras.saving.register_keras_serializable(package="keras_crosr")
class OpenSetLayer(keras.layers.Layer):
    """A fitted Openmax head (`OpenMax` on the logits, or `CROSR` on `concat([logits, latent])`) as a layer.

    The weights are non-trainable and set by `OpenSetLayer.from_detector(detector)`. The computation is the
    detector's `predict_proba` (see `keras_crosr.openset.CROSR`): distances to the class means (the
    detector's `distance`: l2, cosine or OSDN's eucos), libMR W-scores, optional rank calibration `R_alpha`,
    the calibrated activations of Eq. 2 and a softmax over N + 1 classes.

    The layer computes in float32 (its default `dtype`, also under a mixed-precision policy, whose float16 would
    change the probabilities). For float32 accuracy, the W-score `1 - exp(-(t / scale) ** shape)` with
    `t = d * sign + translate_amount - small_score` is evaluated as
    `-expm1(-exp(shape * (log1p(u / T) - log1p(e / T))))` with `u = d * sign - small_score`,
    `T = translate_amount` and `e = scale - T` (the weight `weibull_scale_excess`, computed in float64 by
    `from_detector`): a large `translate_amount` (OSDN uses 10000) then loses no precision.

    Args:
        n_classes: N, the width of the logits.
        n_features: D, the width of the features the class means live in (N for OpenMax, N + L for CROSR).
        use_latent: whether the features are `concat([logits, latent])` (CROSR) or the logits (OpenMax).
        alpha: rank calibration of Eq. 3 (None = none).
        distance: `"euclidean"` (Eq. 4), `"cosine"` or `"eucos"` (l2 / 200 + cosine), as the detector's.

    Input: a dict `{"logits": (batch, N), "latent": (batch, L)}` (the outputs of `inference_model(model)`),
    or the logits `(batch, N)` when `use_latent=False`.
    Output: `(batch, N + 1)` probabilities, the unknown class last.
    """

    def __init__(self, n_classes, n_features, use_latent, alpha=None, distance="euclidean", **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        for value, name in ((n_classes, "n_classes"), (n_features, "n_features")):
            if not is_integer(value, 1):
                raise ValueError(f"`{name}` must be a positive int; got {value!r}.")
        if use_latent and n_features <= n_classes:
            raise ValueError(f"with use_latent=True, n_features ({n_features}) must exceed n_classes ({n_classes}).")
        if not use_latent and n_features != n_classes:
            raise ValueError(f"with use_latent=False, n_features ({n_features}) must equal n_classes ({n_classes}).")
        if alpha is not None and not is_integer(alpha, 1):
            raise ValueError(f"`alpha` must be None or an int >= 1; got {alpha!r}.")
        if not isinstance(distance, str) or distance not in DISTANCES:
            raise ValueError(f"`distance` must be one of {list(DISTANCES)}; got {distance!r}.")
        self.n_classes = int(n_classes)  # Python ints: get_config is JSON
        self.n_features = int(n_features)
        self.use_latent = bool(use_latent)
        self.alpha = None if alpha is None else int(alpha)
        self.distance = distance

    @classmethod
    def from_detector(cls, detector, **kwargs):
        """A built layer holding a fitted `OpenMax` or `CROSR` detector's parameters."""
        if type(detector) not in (OpenMax, CROSR):
            raise TypeError(
                "OpenSetLayer.from_detector takes a fitted OpenMax or CROSR; got "
                f"{type(detector).__name__} (use SoftmaxThresholdLayer for SoftmaxThreshold; OneClassCROSR's "
                "scikit-learn estimators cannot become Keras weights)."
            )
        _check_fitted(detector)
        weibull = detector.weibull_
        if np.any(weibull.translate_amount <= 0):
            raise ValueError(f"OpenSetLayer needs translate_amount > 0; got {weibull.translate_amount}.")
        n_classes, n_features = int(detector.n_classes_), int(detector.n_features_in_)
        alpha = None if detector.alpha is None else int(detector.alpha)
        layer = cls(
            n_classes,
            n_features,
            use_latent=isinstance(detector, CROSR),
            alpha=alpha,
            distance=detector.distance,
            **kwargs,
        )
        if layer.use_latent:
            layer.build({"logits": (None, n_classes), "latent": (None, n_features - n_classes)})
        else:
            layer.build((None, n_classes))
        values = {
            "means": detector.means_,
            "weibull_shape": weibull.shape,
            "weibull_sign": weibull.sign,
            "weibull_small_score": weibull.small_score,
            "weibull_translate_amount": weibull.translate_amount,
            "weibull_scale_excess": weibull.scale - weibull.translate_amount,
        }
        for name, value in values.items():
            getattr(layer, name).assign(np.asarray(value, dtype=np.float64).astype(layer.variable_dtype))
        return layer

    def build(self, input_shape):
        logits_shape, latent_shape = _split_inputs(input_shape, self.name)
        if _width(logits_shape, "logits", self.name) != self.n_classes:
            raise ValueError(f"{self.name}: logits must have width {self.n_classes}; got shape {logits_shape}.")
        if self.use_latent:
            if latent_shape is None:
                raise ValueError(f"{self.name} (CROSR) needs the inputs as a dict with 'logits' and 'latent'.")
            latent_width = self.n_features - self.n_classes
            if _width(latent_shape, "latent", self.name) != latent_width:
                raise ValueError(f"{self.name}: latent must have width {latent_width}; got shape {latent_shape}.")
        self.means = self.add_weight(
            shape=(self.n_classes, self.n_features), initializer="zeros", trainable=False, name="means"
        )
        for name in _WEIBULL_WEIGHTS:
            weight = self.add_weight(
                shape=(self.n_classes,), initializer="ones", trainable=False, name=f"weibull_{name}"
            )
            setattr(self, f"weibull_{name}", weight)

    def call(self, inputs):
        logits, latent = _split_inputs(inputs, self.name)
        logits = ops.cast(logits, self.compute_dtype)
        features = logits
        if self.use_latent:
            features = ops.concatenate([logits, ops.cast(latent, self.compute_dtype)], axis=-1)
        distance = self._distances(features)  # (batch, N)
        translate = self.weibull_translate_amount
        excess = distance * self.weibull_sign - self.weibull_small_score  # t - translate_amount
        # log(t / scale), with t clipped at 0 (libMR's W-score is 0 for a negative t)
        log_ratio = ops.log1p(ops.maximum(excess / translate, -1.0)) - ops.log1p(self.weibull_scale_excess / translate)
        w_score = -ops.expm1(-ops.exp(self.weibull_shape * log_ratio))
        if self.alpha is not None:
            w_score = w_score * self._rank_weights(logits)
        unknown = ops.sum(logits * w_score, axis=-1, keepdims=True)
        return ops.softmax(ops.concatenate([logits * (1.0 - w_score), unknown], axis=-1), axis=-1)

    def _distances(self, features):
        """`(batch, N)` distances of features `(batch, D)` to the class means."""
        if self.distance == "euclidean":
            return self._euclidean(features)
        cosine = self._cosine(features)
        return cosine if self.distance == "cosine" else self._euclidean(features) / EUCOS_L2_SCALE + cosine

    def _euclidean(self, features):
        diff = ops.expand_dims(features, 1) - self.means  # (batch, N, D)
        return ops.sqrt(ops.sum(ops.square(diff), axis=-1))

    def _cosine(self, features):
        """`1 - cos(f, mean)`, clipped to [0, 2]; 1 where either vector is zero (the detector's convention)."""
        dots = ops.sum(ops.expand_dims(features, 1) * self.means, axis=-1)  # (batch, N)
        norms = ops.expand_dims(ops.norm(features, axis=-1), 1) * ops.norm(self.means, axis=-1)
        positive = norms > 0
        similarity = ops.where(positive, dots / ops.where(positive, norms, 1.0), 0.0)
        return ops.clip(1.0 - similarity, 0.0, 2.0)

    def _rank_weights(self, logits):
        """`(batch, N)` `max(0, (alpha - rank) / alpha)`, rank = 0-based position in descending order (stable)."""
        row, other = ops.expand_dims(logits, 2), ops.expand_dims(logits, 1)  # class c, class j
        index = ops.arange(self.n_classes)
        before = ops.expand_dims(index, 0) < ops.expand_dims(index, 1)  # j < c
        ahead = ops.logical_or(other > row, ops.logical_and(other == row, before))
        rank = ops.sum(ops.cast(ahead, logits.dtype), axis=-1)
        return ops.maximum(0.0, (self.alpha - rank) / self.alpha)

    def compute_output_shape(self, input_shape):
        logits_shape, _ = _split_inputs(input_shape, self.name)
        return (logits_shape[0], self.n_classes + 1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "n_classes": self.n_classes,
                "n_features": self.n_features,
                "use_latent": self.use_latent,
                "alpha": self.alpha,
                "distance": self.distance,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="keras_crosr")
class SoftmaxThresholdLayer(keras.layers.Layer):
    """`SoftmaxThreshold.predict_proba` as a layer: `softmax(logits)` and a zero unknown column, in float32.

    Args:
        n_classes: N, the width of the logits.

    Input: a dict with `"logits"` `(batch, N)` (other entries ignored), or the logits.
    Output: `(batch, N + 1)`.
    """

    def __init__(self, n_classes, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not is_integer(n_classes, 1):
            raise ValueError(f"`n_classes` must be a positive int; got {n_classes!r}.")
        self.n_classes = int(n_classes)

    @classmethod
    def from_detector(cls, detector, **kwargs):
        """The layer of a fitted `SoftmaxThreshold`."""
        if not isinstance(detector, SoftmaxThreshold):
            raise TypeError(
                f"SoftmaxThresholdLayer.from_detector takes a SoftmaxThreshold; got {type(detector).__name__}."
            )
        _check_fitted(detector)
        return cls(int(detector.n_classes_), **kwargs)

    def build(self, input_shape):
        logits_shape, _ = _split_inputs(input_shape, self.name)
        if _width(logits_shape, "logits", self.name) != self.n_classes:
            raise ValueError(f"{self.name}: logits must have width {self.n_classes}; got shape {logits_shape}.")

    def call(self, inputs):
        logits, _ = _split_inputs(inputs, self.name)
        proba = ops.softmax(ops.cast(logits, self.compute_dtype), axis=-1)
        return ops.pad(proba, [[0, 0], [0, 1]])

    def compute_output_shape(self, input_shape):
        logits_shape, _ = _split_inputs(input_shape, self.name)
        return (logits_shape[0], self.n_classes + 1)

    def get_config(self):
        config = super().get_config()
        config["n_classes"] = self.n_classes
        return config


def open_set_layer(detector, **kwargs):
    """The layer of a fitted detector: `SoftmaxThresholdLayer` or `OpenSetLayer` (OpenMax / CROSR)."""
    if isinstance(detector, SoftmaxThreshold):
        return SoftmaxThresholdLayer.from_detector(detector, **kwargs)
    return OpenSetLayer.from_detector(detector, **kwargs)


def build_open_set_model(model, detector, name=None):
    """One Keras model from raw input (images or tokens) to the detector's `(batch, N + 1)` probabilities.

    Args:
        model: a DHRNet / LadderNet / supervised model from `build_dhrnet` (its decoder is dropped).
        detector: a detector fitted on `inference_model(model).predict(...)` features: `SoftmaxThreshold`,
            `OpenMax` or `CROSR`.
        name: model name (default `"{model.name}_open_set"`).

    Returns:
        A functional `keras.Model` sharing `model`'s weights, output `(batch, N + 1)` float32 probabilities.
    """
    head = open_set_layer(detector, name="open_set")
    outputs = inference_model(model).output
    if getattr(head, "use_latent", False) and "latent" not in outputs:
        raise ValueError(f"CROSR needs the model's 'latent' output; model {model.name!r} has only {sorted(outputs)}.")
    return keras.Model(model.input, head(outputs), name=name or f"{model.name}_open_set")
