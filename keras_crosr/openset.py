"""Open-set detectors with the scikit-learn contract, and saving them without pickle.

All detectors take ``features``: either a dict ``{"logits": (n, N), "latent": (n, L)}`` (the outputs of
``inference_model(model).predict(x)``) or, where only the logits are needed, an `(n, N)` array; labels are
ints in ``0..N-1``. ``predict_proba`` returns `(n, N + 1)` probabilities with the unknown class last,
``predict`` returns ints in ``0..N`` (``N`` = unknown) and ``decision_function`` an unknown score (higher =
more unknown); ``classes_`` (``0..N``) labels ``predict_proba``'s columns, and ``score`` is the paper's measure,
the macro-F1 of ``predict`` against labels in ``0..N``. Every output row depends on its own input row only, so
batching never changes results.

* :class:`SoftmaxThreshold`: the paper's "Softmax" baseline.
* :class:`OpenMax`: Openmax (Eqs. 2-4) on the logits ``y``.
* :class:`CROSR`: the same calibration on ``[y, z]`` (Eq. 6).
* :class:`OneClassCROSR`: Table 6, a scikit-learn one-class learner per class instead of the l2 distance.
"""

import json
import zipfile
from collections.abc import Mapping

import numpy as np
import sklearn.exceptions
from sklearn.base import BaseEstimator

from keras_crosr import metrics
from keras_crosr._validation import is_integer, is_real
from keras_crosr.weibull import WeibullFitError, WeibullModel, fit_high

__all__ = [
    "CROSR",
    "DetectorFileError",
    "NotFittedError",
    "OneClassCROSR",
    "OpenMax",
    "SoftmaxThreshold",
    "load_detector",
    "save_detector",
]

FORMAT_NAME = "keras_crosr.detector"
FORMAT_VERSION = 1
_RANK_BY_COUNTING = 64  # up to this many classes, ranks by pairwise comparisons (O(N^2)), else by sorting
_BLOCK = 4096  # samples per block in predict_proba (bounds memory; every output row is computed on its own)


class NotFittedError(sklearn.exceptions.NotFittedError):
    """A detector was used before ``fit`` (a subclass of ``ValueError`` and ``AttributeError``)."""


class DetectorFileError(ValueError):
    """A saved detector file is damaged, incomplete or does not match what it says it holds."""


# Internally, per-sample quantities are laid out class-major, `(n_classes, n_samples)`: each numpy pass then
# runs over contiguous samples with one value per class, several times faster than along a short last axis.


def _softmax_columns(z):
    """Softmax of each column of `(k, n)`: ``exp(z - max(z)) / sum(exp(z - max(z)))``."""
    e = np.exp(z - np.max(z, axis=0))
    return e / np.sum(e, axis=0)


def _as_matrix(value, name):
    """`value` as a finite float64 `(n, k)` array, or a clear error."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} holds no samples (shape {array.shape})")
    array = array.astype(np.float64)
    bad = ~np.isfinite(array)
    if np.any(bad):
        raise ValueError(f"{name} contains {int(bad.sum())} NaN or inf values (first in row {np.argwhere(bad)[0, 0]})")
    return array


def _split_features(features, need_latent, owner):
    """Validated `(logits, latent)` from a features dict or a logits array; `latent` is None if not needed."""
    if isinstance(features, Mapping):
        if "logits" not in features:
            raise ValueError(f"{owner}: the features dict needs a 'logits' entry, got keys {sorted(features)}")
        logits, latent = features["logits"], features.get("latent")
    else:
        logits, latent = features, None
    if need_latent and latent is None:
        raise ValueError(
            f"{owner} needs the latent representation z: pass features as a dict "
            "{'logits': (n, N), 'latent': (n, L)}, e.g. inference_model(model).predict(x) of a DHRNet or "
            "LadderNet (a supervised model has no latent output; use OpenMax there)"
        )
    logits = _as_matrix(logits, "features['logits']" if isinstance(features, Mapping) else "features")
    if not need_latent:
        return logits, None
    latent = _as_matrix(latent, "features['latent']")
    if latent.shape[0] != logits.shape[0]:
        raise ValueError(f"features['logits'] has {logits.shape[0]} rows but features['latent'] has {latent.shape[0]}")
    return logits, latent


def _validate_labels(labels, n_samples, n_classes):
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D (n_samples,), got shape {labels.shape}")
    if labels.shape[0] != n_samples:
        raise ValueError(f"got {n_samples} feature rows but {labels.shape[0]} labels")
    if labels.dtype.kind not in "iuf":
        raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
    fractional = labels != np.round(labels)  # integers round to themselves
    if np.any(fractional):
        raise ValueError(f"labels must be integer class ids; got {int(fractional.sum())} non-integer values, "
                         f"e.g. {labels[fractional][0]}")
    outside = (labels < 0) | (labels >= n_classes)
    if np.any(outside):
        raise ValueError(
            f"labels must be in 0..{n_classes - 1} (the logits have {n_classes} columns); "
            f"got {int(outside.sum())} outside, e.g. {labels[outside][0]}"
        )
    return labels.astype(np.int64)


def _euclidean_columns(features_t, means):
    """`(N, n)` l2 distances ``sqrt(sum_k (f[i, k] - means[c, k]) ** 2)`` from features `(D, n)`, summed over k
    in order."""
    total = np.zeros((means.shape[0], features_t.shape[1]))
    for k in range(features_t.shape[0]):
        diff = features_t[k] - means[:, k : k + 1]
        total += diff * diff
    return np.sqrt(total)


def _cosine_columns(features_t, means):
    """`(N, n)` cosine distances ``1 - f[i] . means[c] / (|f[i]| |means[c]|)`` from features `(D, n)`, in
    ``[0, 2]``; 1 where either vector is zero (scikit-learn's ``cosine_distances``)."""
    dots = np.zeros((means.shape[0], features_t.shape[1]))
    squares = np.zeros(features_t.shape[1])
    for k in range(features_t.shape[0]):
        dots += features_t[k] * means[:, k : k + 1]
        squares += features_t[k] * features_t[k]
    norms = np.sqrt(squares) * np.linalg.norm(means, axis=1)[:, None]
    similarity = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return np.clip(1.0 - similarity, 0.0, 2.0)


EUCOS_L2_SCALE = 200.0  # OSDN's "eucos": the l2 distance is divided by this before the cosine distance is added


def _eucos_columns(features_t, means):
    """`(N, n)` OSDN's "eucos" distance: the l2 distance / 200 plus the cosine distance."""
    return _euclidean_columns(features_t, means) / EUCOS_L2_SCALE + _cosine_columns(features_t, means)


_DISTANCES = {"euclidean": _euclidean_columns, "eucos": _eucos_columns, "cosine": _cosine_columns}
DISTANCES = tuple(_DISTANCES)  # the names of the distances to the class means that the Weibull heads accept


def _descending_ranks(values_t):
    """`(N, n)` 0-based rank of each entry in its column of `(N, n)` sorted in descending order, ties to the
    lower row index (a stable sort of ``-values``)."""
    n_rows = values_t.shape[0]
    if n_rows > _RANK_BY_COUNTING:
        order = np.argsort(-values_t, axis=0, kind="stable")
        ranks = np.empty_like(order)
        np.put_along_axis(ranks, order, np.arange(n_rows)[:, None], axis=0)
        return ranks
    # rank of row c = #rows with a larger value + #rows above c with the same value (fast for small N)
    ranks = np.zeros(values_t.shape, dtype=np.int64)
    for j in range(n_rows):
        ranks += values_t[j] > values_t
        ranks[j + 1 :] += values_t[j] == values_t[j + 1 :]
    return ranks


class _OpenSetDetector(BaseEstimator):
    """Shared ``predict`` / ``decision_function`` / validation; subclasses define ``predict_proba``."""

    _needs_latent = False

    def _check_is_fitted(self):
        if not hasattr(self, "n_classes_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet: call fit(features, labels) first."
            )

    def _set_widths(self, n_classes, n_features_in):
        """Sets ``n_classes_`` (``N``), ``n_features_in_`` and ``classes_`` (``0..N``: the labels ``predict``
        returns, in the order of ``predict_proba``'s columns, unknown last)."""
        self.n_classes_, self.n_features_in_ = int(n_classes), int(n_features_in)
        self.classes_ = np.arange(self.n_classes_ + 1)

    def _check_threshold(self, threshold):
        if not is_real(threshold) or not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
        return float(threshold)

    def _check_params(self):
        self._check_threshold(self.threshold)

    def _fit_inputs(self, features, labels):
        """Validated `(logits, latent, labels)` for ``fit``; forgets an earlier fit first, so that a fit that
        fails leaves the detector unfitted rather than holding its previous state."""
        for name in [name for name in vars(self) if name.endswith("_") and not name.startswith("_")]:
            delattr(self, name)
        self._check_params()
        logits, latent = _split_features(features, self._needs_latent, type(self).__name__)
        labels = _validate_labels(labels, logits.shape[0], logits.shape[1])
        return logits, latent, labels

    def _inputs(self, features):
        """Validated `(logits, latent)` for prediction, checked against the fitted widths; the hyper-parameters
        are checked again (``alpha`` is used only here, and may have been set after ``fit``)."""
        self._check_is_fitted()
        self._check_params()
        logits, latent = _split_features(features, self._needs_latent, type(self).__name__)
        name = type(self).__name__
        if logits.shape[1] != self.n_classes_:
            raise ValueError(
                f"{name} was fitted on logits of width {self.n_classes_}, got logits of shape {logits.shape}"
            )
        if latent is not None and latent.shape[1] != self.n_features_in_ - self.n_classes_:
            raise ValueError(
                f"{name} was fitted on a latent of width {self.n_features_in_ - self.n_classes_}, "
                f"got latent of shape {latent.shape}"
            )
        return logits, latent

    def predict(self, features, threshold=None):
        """Labels `(n,)` in ``0..N``; ``N`` (unknown) where the largest known probability is below
        ``threshold`` (default: the ``threshold`` hyper-parameter) or below the unknown probability.
        Ties go to the known class with the lowest index."""
        threshold = self.threshold if threshold is None else threshold
        threshold = self._check_threshold(threshold)
        proba = self.predict_proba(features)
        known = proba[:, :-1]
        labels = np.argmax(known, axis=1)
        best = np.max(known, axis=1)
        reject = (best < threshold) | (proba[:, -1] > best)
        return np.where(reject, self.n_classes_, labels)

    def decision_function(self, features):
        """Unknown score `(n,)`: the unknown probability ``predict_proba(features)[:, N]``."""
        return self.predict_proba(features)[:, -1]

    def score(self, features, labels, sample_weight=None):
        """Macro-F1 of ``predict(features)`` against ``labels`` `(n,)` in ``0..N`` (``N`` = unknown): the paper's
        measure, at the ``threshold`` hyper-parameter, over the ``N`` known classes and unknown (the known
        classes only when ``labels`` hold no unknown), optionally weighted by ``sample_weight`` `(n,)`; see
        :func:`keras_crosr.metrics.macro_f1`."""
        self._check_is_fitted()
        return metrics.macro_f1(
            labels, self.predict(features), n_classes=self.n_classes_, sample_weight=sample_weight
        )


class SoftmaxThreshold(_OpenSetDetector):
    """The "Softmax" baseline: closed-set softmax over the logits, rejecting low-confidence samples.

    ``predict_proba`` is ``softmax(y)`` over the ``N`` classes with a zero unknown column; ``predict``
    rejects when ``max softmax < threshold``; ``decision_function`` is ``1 - max softmax``.

    Args:
        threshold: rejection threshold on the largest softmax probability (the paper's 0.5).

    Attributes:
        n_classes_: number of known classes ``N``.
        n_features_in_: width of the logits, ``N``.
        classes_: ``0..N``, the labels of ``predict_proba``'s columns (``N`` = unknown).
    """

    def __init__(self, threshold=0.5):
        self.threshold = threshold

    def fit(self, features, labels):
        """Records ``N`` and validates `features` (logits `(n, N)` or a features dict) and `labels` `(n,)`."""
        logits, _, _ = self._fit_inputs(features, labels)
        self._set_widths(logits.shape[1], logits.shape[1])
        return self

    def predict_proba(self, features):
        """`(n, N + 1)`: ``softmax(logits)`` and a zero unknown column."""
        logits, _ = self._inputs(features)
        return np.concatenate([_softmax_columns(logits.T).T, np.zeros((logits.shape[0], 1))], axis=1)

    def decision_function(self, features):
        """Unknown score `(n,)`: ``1 - max_i softmax_i(logits)``."""
        return 1.0 - np.max(self.predict_proba(features)[:, :-1], axis=1)


class _WeibullCalibrated(_OpenSetDetector):
    """Openmax calibration (Eqs. 2-3) of the logits by per-class Weibull models of an outlier score.

    Subclasses define `_scores`, the per-class outlier scores ``d(x, C_c)`` (features `(D, n)` to scores
    `(N, n)`, from the fitted attributes), and `_fit_class_models`, which fits the per-class models on each
    class's correctly classified samples and returns `(fitted attributes, training scores per class)`; the
    attributes are set only once all fits succeed.
    """

    def __init__(self, tail_size=20, alpha=None, threshold=0.5, translate_amount=1.0):
        self.tail_size = tail_size
        self.alpha = alpha
        self.threshold = threshold
        self.translate_amount = translate_amount

    def _check_params(self):
        super()._check_params()
        if not is_integer(self.tail_size, 2):
            raise ValueError(f"tail_size must be an int >= 2, got {self.tail_size!r}")
        if self.alpha is not None and not is_integer(self.alpha, 1):
            raise ValueError(f"alpha must be None (no rank calibration) or an int >= 1, got {self.alpha!r}")
        if not is_real(self.translate_amount) or not 0 < self.translate_amount < np.inf:
            raise ValueError(
                f"translate_amount must be a finite number > 0 (libMR's shift), got {self.translate_amount!r}"
            )

    def fit(self, features, labels):
        """Fits the per-class models on the correctly classified training samples.

        Args:
            features: logits `(n, N)` or a dict with ``"logits"`` (and ``"latent"`` where needed).
            labels: `(n,)` ints in ``0..N-1``.

        Raises:
            ValueError: bad input, a class with fewer correctly classified samples than ``tail_size``,
                or a failed Weibull fit (e.g. a class whose ``tail_size`` largest scores are all equal).
        """
        logits, latent, labels = self._fit_inputs(features, labels)
        n_classes = logits.shape[1]
        correct = np.argmax(logits, axis=1) == labels
        counts = np.bincount(labels[correct], minlength=n_classes)
        too_few = np.flatnonzero(counts < self.tail_size)
        if too_few.size:
            totals = np.bincount(labels, minlength=n_classes)
            details = ", ".join(f"class {c}: {counts[c]} of {totals[c]}" for c in too_few)
            raise ValueError(
                f"{type(self).__name__} needs at least tail_size={self.tail_size} correctly classified training "
                f"samples per class; too few for {details}. Use more training data, a better classifier or a "
                "smaller tail_size."
            )
        features = self._joined(logits, latent)
        members = [features[correct & (labels == c)] for c in range(n_classes)]
        state, scores = self._fit_class_models(members)
        try:
            weibull = fit_high(scores, self.tail_size, translate_amount=self.translate_amount)
        except WeibullFitError as error:
            raise ValueError(
                f"{type(self).__name__}: the Weibull fit failed for classes {error.failed.tolist()} (model j is "
                f"class j):\n{error}"
            ) from error
        for name, value in state.items():
            setattr(self, name, value)
        self._set_widths(n_classes, features.shape[1])
        self.weibull_ = weibull
        return self

    def _joined(self, logits, latent):
        """The features the class models see: `(n, D)`."""
        return logits if latent is None else np.concatenate([logits, latent], axis=1)

    def _rank_weights(self, logits_t):
        """`(N, n)` rank calibration ``R_alpha`` of logits `(N, n)`; 1 when ``alpha`` is None."""
        if self.alpha is None:
            return np.ones_like(logits_t)
        ranks = _descending_ranks(logits_t)
        return np.maximum(0.0, (self.alpha - ranks) / self.alpha)

    def predict_proba(self, features):
        """`(n, N + 1)` Openmax probabilities, the unknown class last (see the class docstring)."""
        logits, latent = self._inputs(features)
        out = np.empty((logits.shape[0], self.n_classes_ + 1))
        for start in range(0, logits.shape[0], _BLOCK):
            block = slice(start, start + _BLOCK)
            logits_t = np.ascontiguousarray(logits[block].T)
            features_t = logits_t if latent is None else np.concatenate([logits_t, latent[block].T])
            w_cdf = self.weibull_.w_score(self._scores(features_t).T).T
            revised = self._rank_weights(logits_t) * w_cdf  # v = 1 - w of Eq. 2
            calibrated = np.empty((self.n_classes_ + 1, logits_t.shape[1]))
            np.multiply(logits_t, 1.0 - revised, out=calibrated[:-1])
            np.sum(logits_t * revised, axis=0, out=calibrated[-1])
            out[block] = _softmax_columns(calibrated).T
        return out


class _CentroidCalibrated(_WeibullCalibrated):
    """Class means and distances to them (Eq. 4 / Eq. 6: l2)."""

    def __init__(self, tail_size=20, alpha=None, threshold=0.5, distance="euclidean", translate_amount=1.0):
        super().__init__(tail_size=tail_size, alpha=alpha, threshold=threshold, translate_amount=translate_amount)
        self.distance = distance

    def _check_params(self):
        super()._check_params()
        if not isinstance(self.distance, str) or self.distance not in _DISTANCES:
            raise ValueError(f"distance must be one of {list(_DISTANCES)} (Eq. 4: l2), got {self.distance!r}")

    def _fit_class_models(self, members):
        means = np.stack([m.mean(axis=0) for m in members])
        distance = _DISTANCES[self.distance]
        return {"means_": means}, [distance(m.T, means[c : c + 1])[0] for c, m in enumerate(members)]

    def _scores(self, features_t):
        return _DISTANCES[self.distance](features_t, self.means_)


_CALIBRATION_DOC = """
    With ``y`` the logits `(n, N)` and ``f`` the features of the class models (`(n, D)`), for sample ``i``
    and class ``c``, ``predict_proba`` computes, in float64:

    1. ``d[i, c] = sqrt(sum_k (f[i, k] - means_[c, k]) ** 2)`` (l2 distance to the class mean; with
       ``distance="cosine"``, ``1 - f[i] . means_[c] / (|f[i]| |means_[c]|)``, 1 for a zero vector; with
       ``"eucos"``, OSDN's ``l2 / 200 + cosine``).
    2. The W-score of class ``c``'s libMR model (``weibull_``, fitted with ``fit_high`` on the ``tail_size``
       largest training distances of the class): ``t = (d * sign[c] + translate_amount[c]) - small_score[c]``,
       ``W[i, c] = 1 - exp(-(max(t, 0) / scale[c]) ** shape[c])``.
    3. Rank calibration (Eq. 3): ``r[i, c]`` = 0-based position of class ``c`` in ``y[i]`` sorted in
       descending order (ties: lower class index first); ``R[i, c] = max(0, (alpha - r[i, c]) / alpha)``,
       so the top class gets 1, the next ``(alpha - 1) / alpha``, ..., and classes from rank ``alpha`` on get
       0 (OSDN's ``compute_openmax`` weights ``((alpha + 1) - j) / alpha`` for ``j = 1..alpha``);
       ``R = 1`` everywhere when ``alpha`` is None (no rank calibration).
    4. Eq. 2 with ``w = 1 - v``, ``v = R * W``: ``yhat[i, c] = y[i, c] * (1 - v[i, c])`` for ``c < N`` and
       ``yhat[i, N] = sum_c y[i, c] * v[i, c]``; probabilities ``softmax(yhat[i])`` over ``N + 1``
       (computed as ``exp(yhat - max(yhat)) / sum(exp(yhat - max(yhat)))``).

    ``predict`` rejects (label ``N``) when the largest known probability is below ``threshold`` or when
    the unknown probability is larger than it; ``decision_function`` is the unknown probability.
    Only the correctly classified training samples (``argmax(y) == label``) enter ``means_`` and the
    Weibull fits; each class needs at least ``tail_size`` of them.
"""

_PARAMS_DOC = """
    Args:
        tail_size: number of largest training distances per class used for the Weibull fit (paper: 20).
        alpha: rank calibration ``R_alpha`` of Eq. 3 (paper: 10 where used; None = none, as for MNIST and
            CIFAR-10). It may exceed ``N``, as the paper's 10 does on DBpedia's 4 known classes: every class is
            then revised, the last by ``(alpha - N + 1) / alpha``.
        threshold: rejection threshold on the largest known probability (paper: 0.5).
        distance: ``"euclidean"`` (Eq. 4 and Eq. 6, the paper's), ``"cosine"`` or ``"eucos"`` (OSDN's
            ImageNet Openmax, Bendale & Boult 2016: l2 / 200 + cosine).
        translate_amount: libMR's shift of the tail (PyPI libmr's default 1; OSDN's copy uses 10000).

    Attributes:
        n_classes_: number of known classes ``N``.
        n_features_in_: width ``D`` of the features the class means live in.
        classes_: ``0..N``, the labels of ``predict_proba``'s columns (``N`` = unknown).
        means_: `(N, D)` class means.
        weibull_: a :class:`keras_crosr.weibull.WeibullModel` with per-class arrays ``shape``, ``scale``,
            ``translate_amount``, ``small_score``, ``sign`` of length ``N``.
"""


class OpenMax(_CentroidCalibrated):
    __doc__ = (
        """Openmax (Bendale & Boult 2016; CROSR paper Eqs. 2-4) on the logits: ``f = y``, ``D = N``.

    ``features`` may be a logits array `(n, N)` or a dict with ``"logits"`` (``"latent"`` is ignored).
"""
        + _CALIBRATION_DOC
        + _PARAMS_DOC
    )


class CROSR(_CentroidCalibrated):
    __doc__ = (
        """CROSR (Eq. 6): Openmax whose class means and distances live on ``f = concat([y, z])``,
    ``D = N + L``; the rank calibration still ranks the logits ``y``.

    ``features`` must be a dict ``{"logits": (n, N), "latent": (n, L)}``.
"""
        + _CALIBRATION_DOC
        + _PARAMS_DOC
    )

    _needs_latent = True


class OneClassCROSR(_WeibullCalibrated):
    """CROSR with a scikit-learn one-class learner per class instead of the l2 distance (Table 6).

    One ``OneClassSVM(gamma=gamma)`` or ``IsolationForest()`` (otherwise scikit-learn's defaults, as in the
    paper) per class is fitted on that class's correctly classified features ``f`` (``concat([y, z])``, or ``y``
    alone with ``use_latent=False``, the table's "Supervised +" rows). The outlier score replacing ``d(x, C_c)``
    is the negated decision function, ``d[i, c] = -estimators_[c].decision_function(f[i])`` (scikit-learn's is
    positive for inliers, so larger means more outlying, like a distance); class ``c``'s Weibull model is
    fitted on the ``tail_size`` largest such scores of its training samples (libMR's shift makes negative
    scores fine), and steps 2-4 of :class:`CROSR` follow unchanged.

    It cannot be stored with :func:`save_detector`: scikit-learn estimators are only serialisable with
    pickle.

    Args:
        estimator: ``"ocsvm"`` or ``"isoforest"``.
        gamma: the SVM's RBF kernel coefficient: ``"scale"`` (``1 / (D * X.var())`` of the class's features,
            scikit-learn's default since 0.22), ``"auto"`` (``1 / D``: its default before, so the paper's, which
            ignores how large the features are) or a positive number. "scale" ranks better on both fully trained
            networks we measured (``benchmarks/results/README.md``): on MNIST's class split (trial 3, supervised
            logits) AUROC 0.987 against 0.976, though "auto" rejects more at threshold 0.5 (macro-F1 0.930
            against 0.772); on the full-size MNIST outlier benchmark (supervised logits of variance 158) "auto"
            collapses, labelling only 39 % of the known digits correctly (macro-F1 0.443 against 0.691 on
            Omniglot).
        use_latent: use ``concat([y, z])`` (True, needs ``features["latent"]``) or ``y`` alone.
        random_state: seed of ``IsolationForest`` (unused by the SVM).
        tail_size, alpha, threshold, translate_amount: as in :class:`CROSR`.

    Attributes:
        n_classes_, n_features_in_, classes_, weibull_: as in :class:`CROSR`.
        estimators_: the `N` fitted one-class estimators.
    """

    def __init__(
        self,
        estimator="ocsvm",
        gamma="scale",
        tail_size=20,
        alpha=None,
        threshold=0.5,
        translate_amount=1.0,
        use_latent=True,
        random_state=None,
    ):
        super().__init__(tail_size=tail_size, alpha=alpha, threshold=threshold, translate_amount=translate_amount)
        self.estimator = estimator
        self.gamma = gamma
        self.use_latent = use_latent
        self.random_state = random_state

    @property
    def _needs_latent(self):
        return self.use_latent

    def _check_params(self):
        super()._check_params()
        if self.estimator not in ("ocsvm", "isoforest"):
            raise ValueError(f'estimator must be "ocsvm" or "isoforest", got {self.estimator!r}')
        if self.gamma not in ("auto", "scale") and not (is_real(self.gamma) and self.gamma > 0):
            raise ValueError(f'gamma must be "auto", "scale" or a positive number, got {self.gamma!r}')

    def _new_estimator(self):
        if self.estimator == "ocsvm":
            from sklearn.svm import OneClassSVM

            return OneClassSVM(gamma=self.gamma)
        from sklearn.ensemble import IsolationForest

        return IsolationForest(random_state=self.random_state)

    def _fit_class_models(self, members):
        estimators = [self._new_estimator().fit(m) for m in members]
        scores = [-estimator.decision_function(m) for estimator, m in zip(estimators, members, strict=True)]
        return {"estimators_": estimators}, scores

    def _scores(self, features_t):
        return np.stack([-estimator.decision_function(features_t.T) for estimator in self.estimators_])


_SAVEABLE = {cls.__name__: cls for cls in (SoftmaxThreshold, OpenMax, CROSR)}


def _state_arrays(detector):
    """The fitted arrays of a detector, by file key, with their expected shapes."""
    if isinstance(detector, SoftmaxThreshold):
        return {}
    weibull = detector.weibull_
    return {
        "means": detector.means_,
        "weibull_shape": weibull.shape,
        "weibull_scale": weibull.scale,
        "weibull_translate_amount": weibull.translate_amount,
        "weibull_small_score": weibull.small_score,
        "weibull_sign": weibull.sign,
    }


def _expected_shapes(class_name, n_classes, n_features_in):
    if class_name == "SoftmaxThreshold":
        return {}
    shapes = {"means": (n_classes, n_features_in)}
    for name in ("shape", "scale", "translate_amount", "small_score", "sign"):
        shapes[f"weibull_{name}"] = (n_classes,)
    return shapes


def save_detector(detector, path):
    """Saves a fitted detector to `path` as an ``.npz`` archive, without pickle.

    The archive holds the fitted arrays and ``metadata``, a JSON string with ``format``
    (``"keras_crosr.detector"``), ``format_version``, ``class_name``, ``params`` (the hyper-parameters),
    ``n_classes``, ``n_features_in`` and ``arrays`` (name -> shape). The file is written at `path` as given
    (no suffix is added).

    Raises:
        NotFittedError: the detector is not fitted.
        TypeError: the detector cannot be saved (``OneClassCROSR`` needs pickle; other classes are unknown).
    """
    if isinstance(detector, OneClassCROSR):
        raise TypeError(
            "OneClassCROSR cannot be saved with save_detector: its scikit-learn estimators are serialisable only "
            "with pickle. Use joblib.dump / pickle if you trust whoever will load the file."
        )
    if type(detector) not in _SAVEABLE.values():
        raise TypeError(f"save_detector saves {sorted(_SAVEABLE)}, got {type(detector).__name__}")
    detector._check_is_fitted()
    arrays = {name: np.asarray(value, dtype=np.float64) for name, value in _state_arrays(detector).items()}
    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "class_name": type(detector).__name__,
        "params": {k: v.item() if isinstance(v, np.generic) else v for k, v in detector.get_params().items()},
        "n_classes": int(detector.n_classes_),
        "n_features_in": int(detector.n_features_in_),
        "arrays": {name: list(value.shape) for name, value in arrays.items()},
    }
    with open(path, "wb") as file:
        np.savez(file, metadata=np.array(json.dumps(metadata)), **arrays)


def load_detector(path):
    """Loads a detector written by :func:`save_detector` (never unpickles anything).

    Raises:
        FileNotFoundError: no file at `path`.
        DetectorFileError: the file is damaged, not a detector file, written by another format version,
            missing an entry, or holds arrays whose shapes or values do not match its metadata.
    """
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DetectorFileError(f"{path}: not a readable detector file (damaged or not an .npz): {error}") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DetectorFileError(f"{path}: not a detector file (a single .npy array, not an .npz archive)")
    try:
        with archive:
            return _detector_from_archive(archive, path)
    except DetectorFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DetectorFileError(f"{path}: damaged detector file: {error}") from error


def _detector_from_archive(archive, path):
    if "metadata" not in archive.files:
        if {"config.json", "metadata.json"} <= set(archive.files):  # the zip of `model.save("m.keras")`
            raise DetectorFileError(
                f"{path}: a Keras model file, not a detector file: load it with keras.saving.load_model, and a "
                "detector with load_detector from the file that save_detector wrote"
            )
        raise DetectorFileError(f"{path}: missing the 'metadata' entry; entries: {sorted(archive.files)}")
    try:
        metadata = json.loads(str(archive["metadata"][()]))
    except (ValueError, TypeError) as error:
        raise DetectorFileError(f"{path}: the 'metadata' entry is not valid JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise DetectorFileError(f"{path}: not a {FORMAT_NAME} file (metadata is a {type(metadata).__name__})")
    if metadata.get("format") != FORMAT_NAME:
        raise DetectorFileError(f"{path}: not a {FORMAT_NAME} file (metadata format {metadata.get('format')!r})")
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        raise DetectorFileError(
            f"{path}: format version {version!r}, but this keras_crosr reads version {FORMAT_VERSION}"
        )
    for key in ("class_name", "params", "n_classes", "n_features_in", "arrays"):
        if key not in metadata:
            raise DetectorFileError(f"{path}: the metadata has no {key!r} entry")
    for key in ("params", "arrays"):
        if not isinstance(metadata[key], dict):
            raise DetectorFileError(f"{path}: the metadata's {key!r} entry must be an object, got {metadata[key]!r}")
    class_name = metadata["class_name"]
    if class_name not in _SAVEABLE:
        raise DetectorFileError(f"{path}: unknown detector class {class_name!r}; expected one of {sorted(_SAVEABLE)}")
    n_classes, n_features_in = metadata["n_classes"], metadata["n_features_in"]
    if not all(isinstance(n, int) and n >= 1 for n in (n_classes, n_features_in)):
        raise DetectorFileError(f"{path}: bad n_classes / n_features_in {n_classes!r} / {n_features_in!r}")
    try:
        detector = _SAVEABLE[class_name](**metadata["params"])
        detector._check_params()
    except (TypeError, ValueError) as error:
        raise DetectorFileError(f"{path}: bad hyper-parameters for {class_name}: {error}") from error
    arrays = {}
    for name, shape in _expected_shapes(class_name, n_classes, n_features_in).items():
        if name not in archive.files:
            raise DetectorFileError(f"{path}: missing the {name!r} array; entries: {sorted(archive.files)}")
        array = archive[name]
        if list(array.shape) != list(metadata["arrays"].get(name, [])) or array.shape != shape:
            raise DetectorFileError(
                f"{path}: array {name!r} has shape {array.shape}; metadata says "
                f"{metadata['arrays'].get(name)} and {class_name} with {n_classes} classes, {n_features_in} "
                f"features needs {shape}"
            )
        if array.dtype.kind != "f" or not np.all(np.isfinite(array)):
            raise DetectorFileError(f"{path}: array {name!r} must hold finite floats (dtype {array.dtype})")
        arrays[name] = array.astype(np.float64)
    detector._set_widths(n_classes, n_features_in)
    if arrays:
        detector.means_ = arrays["means"]
        try:
            detector.weibull_ = WeibullModel(
                arrays["weibull_shape"],
                arrays["weibull_scale"],
                arrays["weibull_translate_amount"],
                arrays["weibull_small_score"],
                arrays["weibull_sign"],
            )
        except ValueError as error:
            raise DetectorFileError(f"{path}: invalid Weibull parameters: {error}") from error
    return detector
