"""Open-set recognition metrics.

Labels follow the detectors' contract: ints in `0..N`, where `0..N-1` are the known classes and `N` is
"unknown". Probabilities are `(n, N + 1)` arrays with the unknown class **last**, as returned by a detector's
`predict_proba`.

- `macro_f1`: macro-averaged F1 over the N known classes plus unknown (the paper's measure).
- `closed_set_accuracy`: accuracy on the known samples only.
- `unknown_auroc`: area under the ROC curve of unknown detection.
- `oscr`: Open-Set Classification Rate (Dhamija et al., NeurIPS 2018, "Reducing Network Agnostophobia").
- `f1_vs_threshold`: macro-F1 as a function of the rejection threshold (the paper's Fig. 5).
- `rejection_rates`: where the decisions went: the shares of known and of unknown samples rejected, and the
  largest share of the unknowns that one known class receives (macro-F1 mixes the two: see its docstring).
- `open_set_scores`: all of the above in one dict.

The open-set decision rule (`predict_open_set`) predicts the most probable of the N + 1 classes, and
rejects (predicts `N`) when the most probable known class has a probability below the threshold.
"""


import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

from keras_crosr._validation import is_integer, is_real

__all__ = [
    "closed_set_accuracy",
    "f1_vs_threshold",
    "macro_f1",
    "open_set_scores",
    "oscr",
    "oscr_curve",
    "predict_open_set",
    "rejection_rates",
    "unknown_auroc",
]

DEFAULT_THRESHOLD = 0.5
_PROBA_TOL = 1e-6  # float32 rounding of a probability


def _as_labels(labels, name="labels"):
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D `(n,)`; got shape {labels.shape}.")
    if labels.dtype.kind in "fc":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError(f"`{name}` must hold integer class ids; got non-integer values.")
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must hold integer class ids; got dtype {labels.dtype}.")
    return labels.astype(np.int64)


def _check_n_classes(n_classes):
    if not is_integer(n_classes, 1):
        raise ValueError(f"`n_classes` must be a positive integer (N, the known classes); got {n_classes!r}.")


def _check_threshold(threshold):
    """A finite number (below 0 every sample is accepted, above 1 every one rejected, as in `f1_vs_threshold`)."""
    if not is_real(threshold) or not np.isfinite(threshold):
        raise ValueError(f"`threshold` must be a finite number; got {threshold!r}.")


def _check_range(labels, n_classes, name="labels"):
    if labels.size and (labels.min() < 0 or labels.max() > n_classes):
        raise ValueError(
            f"`{name}` must be in 0..{n_classes} ({n_classes} = unknown); "
            f"got values in [{labels.min()}, {labels.max()}]."
        )


def _labels_and_predictions(labels, predictions, n_classes):
    """Checked `(n,)` label and prediction arrays, both in `0..n_classes`."""
    _check_n_classes(n_classes)
    labels = _as_labels(labels)
    predictions = _as_labels(predictions, "predictions")
    if predictions.shape != labels.shape:
        raise ValueError(f"`predictions` has shape {predictions.shape} but `labels` has {labels.shape}.")
    _check_range(labels, n_classes)
    _check_range(predictions, n_classes, "predictions")
    return labels, predictions


def _as_proba(proba, n_samples=None):
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] < 2:
        raise ValueError(
            "`proba` must be 2-D `(n, n_classes + 1)` with the unknown class last; "
            f"got shape {proba.shape}."
        )
    if not np.all(np.isfinite(proba)):
        raise ValueError("`proba` contains NaN or infinite values.")
    if proba.size and (proba.min() < -_PROBA_TOL or proba.max() > 1 + _PROBA_TOL):
        raise ValueError(
            f"`proba` must hold probabilities in [0, 1] (a detector's `predict_proba`, not logits or scores); "
            f"got values in [{proba.min():.4g}, {proba.max():.4g}]."
        )
    if n_samples is not None and proba.shape[0] != n_samples:
        raise ValueError(f"`proba` has {proba.shape[0]} rows but `labels` has {n_samples} entries.")
    return proba


def _labels_and_proba(labels, proba):
    labels = _as_labels(labels)
    if not labels.size:
        raise ValueError("`labels` holds no samples.")
    proba = _as_proba(proba, n_samples=labels.shape[0])
    n_classes = proba.shape[1] - 1
    _check_range(labels, n_classes)
    return labels, proba, n_classes


def _as_scores(scores, n_samples, name):
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (n_samples,):
        raise ValueError(f"`{name}` must have shape ({n_samples},) like `labels`; got {scores.shape}.")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return scores


def _as_weights(sample_weight, n_samples):
    weights = np.asarray(sample_weight)
    if weights.dtype.kind not in "iuf":
        raise ValueError(f"`sample_weight` must hold numbers; got dtype {weights.dtype}.")
    weights = weights.astype(np.float64)
    if weights.shape != (n_samples,):
        raise ValueError(f"`sample_weight` must have shape ({n_samples},) like `labels`; got {weights.shape}.")
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise ValueError("`sample_weight` must hold finite non-negative weights.")
    if not weights.sum() > 0:
        raise ValueError("`sample_weight` must give some sample a positive weight; all weights are 0.")
    return weights


def _known_decision(proba):
    """Returns (best known class, its probability, whether it beats the unknown column), each `(n,)`."""
    known = proba[:, :-1]
    best = np.argmax(known, axis=1)
    best_proba = known[np.arange(len(known)), best]
    return best, best_proba, best_proba >= proba[:, -1]


def predict_open_set(proba, threshold=DEFAULT_THRESHOLD):
    """Open-set predictions from `(n, N + 1)` probabilities.

    Predicts the arg-max over the N + 1 classes (a tie goes to the known class), and `N` (unknown) when
    the best known probability is below `threshold`.

    Returns:
        `(n,)` int64 in `0..N`.
    """
    _check_threshold(threshold)
    proba = _as_proba(proba)
    best, best_proba, beats_unknown = _known_decision(proba)
    accepted = beats_unknown & (best_proba >= threshold)
    return np.where(accepted, best, proba.shape[1] - 1)


def macro_f1(labels, predictions, *, n_classes, sample_weight=None):
    """Macro-averaged F1 over the `n_classes` known classes plus unknown (label `n_classes`).

    Every known class counts in the average, also one absent from both arrays (its F1 is 0). The unknown
    class counts when the evaluation has unknown samples; without any (the closed-set 4/4 setting of the
    paper's Table 4, where it reports 0.988) the average is over the N known classes, and samples rejected
    as unknown still count as misses of their classes.

    Args:
        labels: `(n,)` true labels in `0..N`.
        predictions: `(n,)` predicted labels in `0..N`.
        n_classes: N, the number of known classes.
        sample_weight: optional `(n,)` non-negative weights (scikit-learn's `f1_score` semantics); an unknown
            sample of weight 0 does not make the unknown class count.
    """
    labels, predictions = _labels_and_predictions(labels, predictions, n_classes)
    unknown = labels == n_classes
    if sample_weight is not None:
        sample_weight = _as_weights(sample_weight, labels.shape[0])
        unknown &= sample_weight > 0
    averaged = np.arange(n_classes + 1 if np.any(unknown) else n_classes)
    return float(
        f1_score(labels, predictions, labels=averaged, average="macro", sample_weight=sample_weight, zero_division=0.0)
    )


def rejection_rates(labels, predictions, *, n_classes):
    """Where the open-set decisions went, as a dict of floats.

    Macro-F1 cannot tell rejected unknowns from unknowns that all land in one known class: an unknown accepted
    as class c lowers the F1 of c alone. With 10,000 digits and 10,000 unknowns, rejecting none and giving all
    to one class scores about as high as rejecting 60 % and spreading the rest evenly (0.83 and 0.82 at
    closed-set accuracy 0.992). These rates say which it was.

    Args:
        labels: `(n,)` true labels in `0..N`.
        predictions: `(n,)` predicted labels in `0..N` (e.g. from `predict_open_set`).
        n_classes: N, the number of known classes.

    Returns:
        dict with `known_rejected` (share of the known samples predicted unknown) when there are known
        samples, and `unknown_rejected` (share of the unknown samples predicted unknown) and
        `unknown_in_largest_class` (the largest share of the unknown samples predicted as one known class)
        when there are unknown samples.
    """
    labels, predictions = _labels_and_predictions(labels, predictions, n_classes)
    unknown = labels == n_classes
    rates = {}
    if not unknown.all():
        rates["known_rejected"] = float(np.mean(predictions[~unknown] == n_classes))
    if unknown.any():
        shares = np.bincount(predictions[unknown], minlength=n_classes + 1) / np.sum(unknown)
        rates["unknown_rejected"] = float(shares[n_classes])
        rates["unknown_in_largest_class"] = float(shares[:n_classes].max())
    if not rates:
        raise ValueError("rejection rates need at least one sample; `labels` is empty.")
    return rates


def closed_set_accuracy(labels, predictions, *, n_classes):
    """Accuracy on the known samples (labels `< n_classes`) only.

    Args:
        labels: `(n,)` true labels in `0..N`.
        predictions: `(n,)` predicted labels, or `(n, k)` scores with `k >= N` whose first N columns are the
            known classes (logits, softmax or `predict_proba` output): the arg-max over those columns is used,
            so a known sample is never counted wrong for being rejected.
        n_classes: N, the number of known classes.
    """
    _check_n_classes(n_classes)
    labels = _as_labels(labels)
    _check_range(labels, n_classes)
    predictions = np.asarray(predictions)
    if predictions.ndim == 2:
        if predictions.shape[1] < n_classes:
            raise ValueError(
                f"score `predictions` need at least n_classes={n_classes} columns; got {predictions.shape[1]}."
            )
        if not np.all(np.isfinite(predictions[:, :n_classes])):
            raise ValueError("score `predictions` contain NaN or infinite values.")
        predictions = np.argmax(predictions[:, :n_classes], axis=1)
    predictions = _as_labels(predictions, "predictions")
    if predictions.shape != labels.shape:
        raise ValueError(f"`predictions` has {predictions.shape[0]} rows but `labels` has {labels.shape[0]}.")
    _check_range(predictions, n_classes, "predictions")
    known = labels < n_classes
    if not known.any():
        raise ValueError("closed-set accuracy needs at least one known sample; all labels are unknown.")
    return float(np.mean(predictions[known] == labels[known]))


def unknown_auroc(labels, unknown_scores, *, n_classes):
    """Area under the ROC curve of unknown detection.

    Args:
        labels: `(n,)` true labels in `0..N`; label `N` is the positive (unknown) class.
        unknown_scores: `(n,)` scores, higher = more unknown (a detector's `decision_function`).
        n_classes: N, the number of known classes.
    """
    _check_n_classes(n_classes)
    labels = _as_labels(labels)
    _check_range(labels, n_classes)
    unknown_scores = _as_scores(unknown_scores, labels.shape[0], "unknown_scores")
    is_unknown = labels == n_classes
    if is_unknown.all() or not is_unknown.any():
        raise ValueError("AUROC needs both known and unknown samples in `labels`.")
    return float(roc_auc_score(is_unknown, unknown_scores))


def oscr_curve(labels, proba):
    """The OSCR curve: correct classification rate vs. false positive rate of unknowns.

    A threshold θ on the best known probability p(x) accepts x when p(x) >= θ. For every θ,
    CCR(θ) = |{known x: accepted, arg-max of the known columns == label}| / |known| and
    FPR(θ) = |{unknown x: accepted}| / |unknown|. The curve runs from (0, 0) (θ above every score) to
    (1, closed-set accuracy) (θ at the lowest score), with one point per distinct score; tied known and
    unknown scores are joined by a straight segment, as in a ROC curve.

    Args:
        labels: `(n,)` true labels in `0..N`, with both known and unknown samples.
        proba: `(n, N + 1)` probabilities, unknown last (only the known columns are used).

    Returns:
        `(fpr, ccr)`, two `(m,)` float64 arrays, non-decreasing.
    """
    labels, proba, n_classes = _labels_and_proba(labels, proba)
    is_unknown = labels == n_classes
    n_unknown = int(is_unknown.sum())
    n_known = labels.shape[0] - n_unknown
    if n_known == 0 or n_unknown == 0:
        raise ValueError("OSCR needs both known and unknown samples in `labels`.")
    best, best_proba, _ = _known_decision(proba)
    correct = ~is_unknown & (best == labels)
    order = np.argsort(-best_proba, kind="stable")
    scores = best_proba[order]
    # The last sample of each run of equal scores: accepting down to that score accepts the whole run.
    run_ends = np.r_[np.flatnonzero(np.diff(scores)), scores.shape[0] - 1]
    ccr = np.cumsum(correct[order])[run_ends] / n_known
    fpr = np.cumsum(is_unknown[order])[run_ends] / n_unknown
    return np.r_[0.0, fpr], np.r_[0.0, ccr]


def oscr(labels, proba):
    """Open-Set Classification Rate: the area under `oscr_curve` (trapezoidal rule), in `[0, 1]`.

    It is bounded by the closed-set accuracy, reached when every unknown scores below every correctly
    classified known sample.

    Args:
        labels: `(n,)` true labels in `0..N`, with both known and unknown samples.
        proba: `(n, N + 1)` probabilities, unknown last (only the known columns are used).
    """
    fpr, ccr = oscr_curve(labels, proba)
    return float(np.sum(np.diff(fpr) * (ccr[1:] + ccr[:-1]) / 2.0))


def f1_vs_threshold(proba, labels, thresholds):
    """Macro-F1 (as `macro_f1`) of `predict_open_set(proba, t)` for every threshold `t`.

    Vectorised: one sort of the thresholds and histograms over (class, threshold), with no loop over
    thresholds or samples; equal to calling `macro_f1` once per threshold.

    Args:
        proba: `(n, N + 1)` probabilities, unknown last.
        labels: `(n,)` true labels in `0..N`.
        thresholds: `(t,)` rejection thresholds, in any order.

    Returns:
        `(t,)` float64 macro-F1 values, in the order of `thresholds`.
    """
    labels, proba, n_classes = _labels_and_proba(labels, proba)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.ndim != 1 or thresholds.size == 0:
        raise ValueError(f"`thresholds` must be a non-empty 1-D array; got shape {thresholds.shape}.")
    if not np.all(np.isfinite(thresholds)):
        raise ValueError("`thresholds` contains NaN or infinite values.")
    n_thresholds = thresholds.shape[0]
    order = np.argsort(thresholds, kind="stable")
    best, best_proba, beats_unknown = _known_decision(proba)
    # A sample is accepted for the sorted thresholds [0, n_accepted): those <= its best known probability.
    n_accepted = np.where(beats_unknown, np.searchsorted(thresholds[order], best_proba, side="right"), 0)

    def accepted_counts(classes, weights):
        """`(N + 1, t)`: per class, how many weighted samples are accepted at each sorted threshold."""
        width = n_thresholds + 1
        hist = np.bincount(classes * width + n_accepted, weights, minlength=(n_classes + 1) * width)
        return hist.reshape(n_classes + 1, width)[:, ::-1].cumsum(axis=1)[:, ::-1][:, 1:]

    is_unknown = labels == n_classes
    predicted = accepted_counts(best, np.ones_like(best_proba))  # row N stays 0
    hits = accepted_counts(best, (best == labels).astype(np.float64))
    accepted_unknown = accepted_counts(labels, is_unknown.astype(np.float64))[n_classes]
    predicted[n_classes] = labels.shape[0] - predicted[:n_classes].sum(axis=0)
    hits[n_classes] = is_unknown.sum() - accepted_unknown
    support = np.bincount(labels, minlength=n_classes + 1)[:, None]
    denominator = predicted + support
    f1 = np.divide(2.0 * hits, denominator, out=np.zeros_like(hits), where=denominator > 0)
    result = np.empty(n_thresholds)
    averaged = f1 if is_unknown.any() else f1[:n_classes]  # the unknown class counts when present (macro_f1)
    result[order] = averaged.mean(axis=0)
    return result


def open_set_scores(labels, proba, *, threshold=DEFAULT_THRESHOLD, unknown_scores=None):
    """All open-set metrics for one set of `(n, N + 1)` probabilities, as a dict of floats.

    Args:
        labels: `(n,)` true labels in `0..N`.
        proba: `(n, N + 1)` probabilities, unknown last.
        threshold: rejection threshold for the macro-F1 (the paper's 0.5).
        unknown_scores: `(n,)` unknown scores for the AUROC (a detector's `decision_function`); defaults
            to minus the best known probability. AUROC and OSCR are omitted when only one of known /
            unknown samples is present.

    Returns:
        dict with `macro_f1`, the `rejection_rates` at the threshold, `closed_set_accuracy` (when known
        samples exist), and `auroc`, `oscr` (when both known and unknown samples exist).
    """
    _check_threshold(threshold)
    labels, proba, n_classes = _labels_and_proba(labels, proba)
    predictions = predict_open_set(proba, threshold)
    scores = {"macro_f1": macro_f1(labels, predictions, n_classes=n_classes),
              **rejection_rates(labels, predictions, n_classes=n_classes)}
    is_unknown = labels == n_classes
    if not is_unknown.all():
        scores["closed_set_accuracy"] = closed_set_accuracy(labels, proba, n_classes=n_classes)
    if is_unknown.any() and not is_unknown.all():
        if unknown_scores is None:
            unknown_scores = -_known_decision(proba)[1]
        scores["auroc"] = unknown_auroc(labels, unknown_scores, n_classes=n_classes)
        scores["oscr"] = oscr(labels, proba)
    return scores
