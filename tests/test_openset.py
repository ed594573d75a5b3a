"""Open-set detectors: the equations on hand-checked cases, invariances, errors, saving and loading."""

import json
import math
import zipfile

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import f1_score
from sklearn.svm import OneClassSVM

from keras_crosr import openset
from keras_crosr.openset import (
    CROSR,
    DetectorFileError,
    NotFittedError,
    OneClassCROSR,
    OpenMax,
    SoftmaxThreshold,
    load_detector,
    save_detector,
)
from keras_crosr.weibull import fit_high


def clusters(n_per_class=60, n_classes=3, latent_dim=4, seed=0):
    """Well separated classes: logits peak at the label, latents around a class centre."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    logits = rng.normal(0.0, 0.5, (labels.size, n_classes))
    logits[np.arange(labels.size), labels] += 5.0
    centres = rng.normal(0.0, 3.0, (n_classes, latent_dim))
    latent = centres[labels] + rng.normal(0.0, 0.5, (labels.size, latent_dim))
    return {"logits": logits, "latent": latent}, labels


def far_away(features, scale=40.0):
    """Points far from every class: a huge activation on one class and a latent far from all centres."""
    logits = np.zeros_like(features["logits"][:20])
    logits[np.arange(20), np.arange(20) % logits.shape[1]] = scale * 5
    latent = np.full_like(features["latent"][:20], scale)
    return {"logits": logits, "latent": latent}


def softmax(values):
    exps = [math.exp(v - max(values)) for v in values]
    return [e / sum(exps) for e in exps]


def weibull_cdf(detector, c, d):
    """W-score of class c's model at d, written out from libMR's formula."""
    w = detector.weibull_
    t = d * w.sign[c] + w.translate_amount[c] - w.small_score[c]
    return 0.0 if t < 0 else 1.0 - math.exp(-((t / w.scale[c]) ** w.shape[c]))


def test_openmax_follows_equations_2_to_4_by_hand():
    features, labels = clusters()
    logits = features["logits"].copy()
    # a misclassified sample of class 0 that would move class 0's mean if it were used
    logits[0] = [0.0, 9.0, 0.0]
    detector = OpenMax(tail_size=10).fit(logits, labels)
    correct = np.argmax(logits, axis=1) == labels
    for c in range(3):
        np.testing.assert_allclose(detector.means_[c], logits[correct & (labels == c)].mean(axis=0))
        distances = np.linalg.norm(logits[correct & (labels == c)] - detector.means_[c], axis=1)
        reference = fit_high(distances, 10)
        assert detector.weibull_.scale[c] == reference.scale[0]
        assert detector.weibull_.shape[c] == reference.shape[0]
    x = np.array([[3.0, 1.0, -0.5]])
    d = [math.dist(x[0], detector.means_[c]) for c in range(3)]
    w = [1.0 - weibull_cdf(detector, c, d[c]) for c in range(3)]
    yhat = [x[0, c] * w[c] for c in range(3)] + [sum(x[0, c] * (1.0 - w[c]) for c in range(3))]
    np.testing.assert_allclose(detector.predict_proba(x)[0], softmax(yhat), rtol=1e-12)
    assert detector.n_classes_ == 3 and detector.n_features_in_ == 3 and detector.means_.shape == (3, 3)
    assert detector.weibull_.n_models == 3


@pytest.mark.parametrize("distance", ["cosine", "eucos"])
def test_osdn_distances_are_scipys_and_enter_the_fit_and_equation_2(distance):
    """OSDN's ``compute_distance``: "cosine" is ``scipy.spatial.distance.cosine``, "eucos" adds the l2
    distance / 200; the Weibull models are fitted on it and Eq. 2 uses it."""
    from scipy.spatial import distance as spd

    reference = {
        "cosine": spd.cosine,
        "eucos": lambda u, v: spd.euclidean(u, v) / 200.0 + spd.cosine(u, v),
    }[distance]
    features, labels = clusters()
    detector = CROSR(tail_size=10, distance=distance).fit(features, labels)
    joined = np.concatenate([features["logits"], features["latent"]], axis=1)
    for c in range(3):
        members = joined[labels == c]  # all correctly classified here
        expected = fit_high(np.array([reference(m, detector.means_[c]) for m in members]), 10)
        np.testing.assert_allclose(detector.weibull_.scale[c], expected.scale[0], rtol=1e-9)
        np.testing.assert_allclose(detector.weibull_.shape[c], expected.shape[0], rtol=1e-9)
    x = {"logits": np.array([[4.0, 0.5, 0.0]]), "latent": -features["latent"][:1]}
    f = np.concatenate([x["logits"], x["latent"]], axis=1)[0]
    w = [1.0 - weibull_cdf(detector, c, reference(f, detector.means_[c])) for c in range(3)]
    yhat = [x["logits"][0, c] * w[c] for c in range(3)] + [sum(x["logits"][0, c] * (1 - w[c]) for c in range(3))]
    np.testing.assert_allclose(detector.predict_proba(x)[0], softmax(yhat), rtol=1e-9)
    assert detector.predict(x)[0] == 3  # a latent opposite its class centre is unknown under both


def test_cosine_distance_of_a_zero_vector_is_one_and_scale_free():
    means = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    features_t = np.array([[0.0, 2.0, -3.0], [0.0, 0.0, 0.0]])  # columns (0, 0), (2, 0), (-3, 0)
    expected = np.array([[1.0, 0.0, 2.0], [1.0, 1.0 - 1.0 / math.sqrt(2.0), 1.0 + 1.0 / math.sqrt(2.0)], [1, 1, 1]])
    np.testing.assert_allclose(openset._cosine_columns(features_t, means), expected, atol=1e-15)
    np.testing.assert_allclose(openset._cosine_columns(7.0 * features_t, means), expected, atol=1e-15)


def test_rank_calibration_by_hand():
    features, labels = clusters()
    detector = OpenMax(tail_size=10, alpha=2).fit(features, labels)
    x = np.array([[1.0, 3.0, 2.0]])  # ranks 2, 0, 1 -> R = 0, 1, 1/2
    rank_weights = [0.0, 1.0, 0.5]
    d = [math.dist(x[0], detector.means_[c]) for c in range(3)]
    w = [1.0 - rank_weights[c] * weibull_cdf(detector, c, d[c]) for c in range(3)]
    yhat = [x[0, c] * w[c] for c in range(3)] + [sum(x[0, c] * (1.0 - w[c]) for c in range(3))]
    np.testing.assert_allclose(detector.predict_proba(x)[0], softmax(yhat), rtol=1e-12)
    # alpha >= N with OSDN's weights: top class 1, then (alpha - 1) / alpha, ...; ties to the lower index
    wide = OpenMax(tail_size=10, alpha=4).fit(features, labels)
    for row, rank_weights in (([1.0, 3.0, 2.0], [0.5, 1.0, 0.75]), ([2.0, 1.0, 2.0], [1.0, 0.5, 0.75])):
        d = [math.dist(row, wide.means_[c]) for c in range(3)]
        w = [1.0 - rank_weights[c] * weibull_cdf(wide, c, d[c]) for c in range(3)]
        yhat = [row[c] * w[c] for c in range(3)] + [sum(row[c] * (1.0 - w[c]) for c in range(3))]
        np.testing.assert_allclose(wide.predict_proba(np.array([row]))[0], softmax(yhat), rtol=1e-12)


def test_a_common_logit_shift_moves_openmax_but_not_its_distances_or_softmax():
    """Adding c to every logit leaves softmax, the class means' distances and the Weibull fits unchanged, but
    Eq. 2 weighs the logits themselves: the unknown activation gains c * sum_i CDF_i (what
    benchmarks/bench_openmax_calibration.py measures on MNIST)."""
    features, labels = clusters()
    x = np.array([[0.8, 4.2, 1.2], [0.3, 5.6, 0.4]])  # near class 1: its CDF is strictly inside (0, 1)
    base, moved = OpenMax(tail_size=10).fit(features, labels), OpenMax(tail_size=10).fit(
        {**features, "logits": features["logits"] + 2.0}, labels
    )
    np.testing.assert_allclose(moved.means_, base.means_ + 2.0, rtol=1e-12)
    np.testing.assert_allclose(moved.weibull_.scale, base.weibull_.scale, rtol=1e-9)
    np.testing.assert_allclose(moved.weibull_.shape, base.weibull_.shape, rtol=1e-9)
    softmax_base = SoftmaxThreshold().fit(features, labels)
    np.testing.assert_allclose(softmax_base.predict_proba(x + 2.0), softmax_base.predict_proba(x), rtol=1e-12)
    cdf = np.array([[weibull_cdf(base, c, math.dist(row, base.means_[c])) for c in range(3)] for row in x])
    assert np.all((cdf[:, 1] > 0.01) & (cdf[:, 1] < 0.99))
    log_odds = lambda p: np.log(p[:, -1]) - np.log(p[:, 1])  # noqa: E731
    np.testing.assert_allclose(
        log_odds(moved.predict_proba(x + 2.0)) - log_odds(base.predict_proba(x)),
        2.0 * cdf.sum(axis=1) - 2.0 * (1.0 - cdf[:, 1]),
        rtol=1e-9,
    )


def test_crosr_uses_the_latent_in_the_distance():
    features, labels = clusters()
    detector = CROSR(tail_size=10).fit(features, labels)
    assert detector.means_.shape == (3, 7) and detector.n_features_in_ == 7
    x = {"logits": np.array([[4.0, 0.5, 0.0]]), "latent": features["latent"][:1] + 0.7}
    f = np.concatenate([x["logits"], x["latent"]], axis=1)[0]
    d = [math.dist(f, detector.means_[c]) for c in range(3)]
    w = [1.0 - weibull_cdf(detector, c, d[c]) for c in range(3)]
    yhat = [x["logits"][0, c] * w[c] for c in range(3)] + [sum(x["logits"][0, c] * (1 - w[c]) for c in range(3))]
    np.testing.assert_allclose(detector.predict_proba(x)[0], softmax(yhat), rtol=1e-12)
    # same logits, latent far away: more unknown
    moved = {"logits": x["logits"], "latent": x["latent"] + 5.0}
    assert detector.decision_function(moved)[0] > detector.decision_function(x)[0]


@pytest.mark.parametrize(
    "detector",
    [
        OpenMax(tail_size=10),
        OpenMax(tail_size=10, alpha=2),
        CROSR(tail_size=10),
        OneClassCROSR("ocsvm", tail_size=10),
        OneClassCROSR("isoforest", tail_size=10, random_state=0),
    ],
    ids=lambda d: f"{type(d).__name__}-{d.get_params().get('estimator', d.get_params().get('alpha'))}",
)
def test_far_points_are_unknown_and_training_points_known(detector):
    features, labels = clusters()
    detector.fit(features, labels)
    n = detector.n_classes_
    assert np.all(detector.predict(far_away(features)) == n)
    train_predictions = detector.predict(features)
    assert np.mean(train_predictions == labels) > 0.85
    assert np.all((train_predictions == labels) | (train_predictions == n))
    assert np.mean(detector.decision_function(far_away(features))) > np.mean(detector.decision_function(features))
    proba = detector.predict_proba(features)
    assert proba.shape == (labels.size, n + 1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(detector.classes_, np.arange(n + 1))  # predict_proba's columns, unknown last
    assert set(detector.predict(features)) <= set(detector.classes_)


def test_score_is_the_macro_f1_of_predict_over_known_classes_and_unknown():
    features, labels = clusters()
    detector = CROSR(tail_size=10).fit(features, labels)
    outliers = far_away(features)
    test = {k: np.concatenate([features[k], outliers[k]]) for k in features}
    truth = np.concatenate([labels, np.full(20, 3)])
    predictions = detector.predict(test)
    f1 = np.mean([2 * np.sum((predictions == c) & (truth == c)) / (np.sum(predictions == c) + np.sum(truth == c))
                  for c in range(4)])
    assert detector.score(test, truth) == pytest.approx(f1) and 0.0 < f1 < 1.0
    assert detector.score(outliers, np.full(20, 3)) == 1.0 / 4  # classes absent from both count as 0
    weights = np.random.default_rng(0).uniform(0.5, 2.0, truth.size)
    assert detector.score(test, truth, sample_weight=weights) == pytest.approx(
        f1_score(truth, predictions, labels=range(4), average="macro", sample_weight=weights)
    )
    with pytest.raises(ValueError, match=r"`labels` must be in 0\.\.3 \(3 = unknown\); got values in \[0, 4\]"):
        detector.score(test, np.concatenate([labels, np.full(20, 4)]))


def test_openmax_rejects_when_unknown_is_the_argmax_even_at_threshold_zero():
    features, labels = clusters()
    detector = OpenMax(tail_size=10).fit(features, labels)
    x = far_away(features)
    proba = detector.predict_proba(x)
    assert np.all(proba[:, -1] > proba[:, :-1].max(axis=1))
    assert np.all(detector.predict(x, threshold=0.0) == 3)
    # and the threshold rejects confident-looking but low known probabilities
    train = detector.predict(features, threshold=1.0)
    assert np.all(train == 3)


def test_softmax_threshold():
    features, labels = clusters()
    detector = SoftmaxThreshold().fit(features, labels)
    x = np.array([[2.0, 1.0, 0.0], [0.1, 0.0, 0.05]])
    expected = [softmax([2.0, 1.0, 0.0]), softmax([0.1, 0.0, 0.05])]
    np.testing.assert_allclose(detector.predict_proba(x)[:, :3], expected, rtol=1e-12)
    np.testing.assert_array_equal(detector.predict_proba(x)[:, 3], 0.0)
    np.testing.assert_allclose(detector.decision_function(x), [1 - expected[0][0], 1 - expected[1][0]])
    np.testing.assert_array_equal(detector.predict(x), [0, 3])
    np.testing.assert_array_equal(detector.predict(x, threshold=0.3), [0, 0])
    assert detector.n_classes_ == 3


def test_one_class_scores_replace_the_distance():
    features, labels = clusters()
    detector = OneClassCROSR("ocsvm", tail_size=10).fit(features, labels)
    assert len(detector.estimators_) == 3 and not hasattr(detector, "means_")
    x = {"logits": features["logits"][:3] + 0.3, "latent": features["latent"][:3] - 0.4}
    f = np.concatenate([x["logits"], x["latent"]], axis=1)
    for i in range(3):
        d = [-detector.estimators_[c].decision_function(f[i : i + 1])[0] for c in range(3)]
        w = [1.0 - weibull_cdf(detector, c, d[c]) for c in range(3)]
        y = x["logits"][i]
        yhat = [y[c] * w[c] for c in range(3)] + [sum(y[c] * (1 - w[c]) for c in range(3))]
        np.testing.assert_allclose(detector.predict_proba(x)[i], softmax(yhat), rtol=1e-9)
    # the Weibull of class 0 is fitted on the negated decision scores of its correctly classified samples
    correct = np.argmax(features["logits"], axis=1) == labels
    members = np.concatenate([features["logits"], features["latent"]], axis=1)[correct & (labels == 0)]
    reference = fit_high(-detector.estimators_[0].decision_function(members), 10)
    assert detector.weibull_.scale[0] == reference.scale[0]
    logits_only = OneClassCROSR("isoforest", tail_size=10, use_latent=False, random_state=0)
    logits_only.fit(features["logits"], labels)
    assert logits_only.n_features_in_ == 3
    assert logits_only.predict(features["logits"]).shape == labels.shape


def test_one_class_svm_kernel_width_scales_with_the_class_features_unless_asked_for_the_papers():
    """Default gamma="scale": 1 / (D * var) of the class's features; "auto" (the paper's, 2018) is 1 / D."""
    features, labels = clusters()
    f = np.concatenate([features["logits"], features["latent"]], axis=1)
    members = f[(np.argmax(features["logits"], axis=1) == labels) & (labels == 1)]
    default = OneClassCROSR("ocsvm", tail_size=10).fit(features, labels)
    papers = OneClassCROSR("ocsvm", gamma="auto", tail_size=10).fit(features, labels)
    for detector, width in ((default, 1.0 / (f.shape[1] * members.var())), (papers, 1.0 / f.shape[1])):
        reference = OneClassSVM(gamma=width).fit(members)
        np.testing.assert_allclose(detector.estimators_[1].decision_function(f), reference.decision_function(f),
                                   rtol=1e-9, atol=1e-12)
    assert not np.allclose(papers.predict_proba(features), default.predict_proba(features))
    assert clone(papers).get_params()["gamma"] == "auto"


@pytest.mark.parametrize(
    "detector",
    [SoftmaxThreshold(), OpenMax(tail_size=10, alpha=2), CROSR(tail_size=10), OneClassCROSR(tail_size=10)],
    ids=lambda d: type(d).__name__,
)
def test_batch_order_and_size_do_not_change_outputs(detector, monkeypatch):
    # predict_proba works in blocks of openset._BLOCK rows (4096); shrink it to 64 so that the 1200 rows below
    # span 19 blocks (the last one partial) and the per-block slicing of logits and latent is exercised
    monkeypatch.setattr(openset, "_BLOCK", 64)
    features, labels = clusters(n_per_class=400)  # 1200 rows
    detector.fit(features, labels)
    rng = np.random.default_rng(5)
    x = {k: v + rng.normal(0, 1.5, v.shape) for k, v in features.items()}
    full = detector.predict_proba(x)
    rows = [detector.predict_proba({k: v[i : i + 1] for k, v in x.items()}) for i in range(1200)]
    np.testing.assert_array_equal(np.concatenate(rows), full)
    for size in (7, 64, 100, 1100):
        parts = [detector.predict_proba({k: v[s : s + size] for k, v in x.items()}) for s in range(0, 1200, size)]
        np.testing.assert_array_equal(np.concatenate(parts), full)
    order = rng.permutation(1200)
    np.testing.assert_array_equal(detector.predict_proba({k: v[order] for k, v in x.items()}), full[order])
    np.testing.assert_array_equal(
        detector.decision_function(x)[order], detector.decision_function({k: v[order] for k, v in x.items()})
    )


def test_not_fitted():
    for detector in (SoftmaxThreshold(), OpenMax(), CROSR(), OneClassCROSR()):
        with pytest.raises(NotFittedError, match="not fitted yet") as info:
            detector.predict(np.zeros((2, 3)))
        assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
        with pytest.raises(NotFittedError, match="not fitted yet"):
            detector.score(np.zeros((2, 3)), np.zeros(2, dtype=int))
    with pytest.raises(NotFittedError):
        save_detector(OpenMax(), "unused.npz")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_features_are_rejected(bad):
    features, labels = clusters()
    broken = {"logits": features["logits"].copy(), "latent": features["latent"].copy()}
    broken["latent"][5, 1] = bad
    with pytest.raises(ValueError, match=r"features\['latent'\] contains 1 NaN or inf values \(first in row 5\)"):
        CROSR(tail_size=10).fit(broken, labels)
    detector = OpenMax(tail_size=10).fit(features, labels)
    logits = features["logits"][:3].copy()
    logits[2, 0] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        detector.predict(logits)


def test_wrong_widths_at_predict_time():
    features, labels = clusters()
    openmax = OpenMax(tail_size=10).fit(features, labels)
    with pytest.raises(ValueError, match=r"fitted on logits of width 3, got logits of shape \(4, 5\)"):
        openmax.predict_proba(np.zeros((4, 5)))
    crosr = CROSR(tail_size=10).fit(features, labels)
    with pytest.raises(ValueError, match=r"fitted on a latent of width 4, got latent of shape \(2, 6\)"):
        crosr.predict({"logits": np.zeros((2, 3)), "latent": np.zeros((2, 6))})
    with pytest.raises(ValueError, match="3 rows but features\\['latent'\\] has 2"):
        crosr.predict({"logits": np.zeros((3, 3)), "latent": np.zeros((2, 4))})
    with pytest.raises(ValueError, match="2-D"):
        openmax.predict(np.zeros(3))
    with pytest.raises(TypeError, match="numeric"):
        openmax.predict(np.array([["a", "b", "c"]]))


def test_crosr_needs_the_latent():
    features, labels = clusters()
    with pytest.raises(ValueError, match="CROSR needs the latent representation"):
        CROSR().fit(features["logits"], labels)
    with pytest.raises(ValueError, match="CROSR needs the latent representation"):
        CROSR().fit({"logits": features["logits"]}, labels)
    with pytest.raises(ValueError, match="'logits' entry"):
        OpenMax().fit({"latent": features["latent"]}, labels)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.r_[np.zeros(179, int), 3], r"in 0\.\.2 .* 1 outside, e\.g\. 3"),
        (np.r_[np.zeros(179, int), -1], "outside"),
        (np.zeros(179, int), "180 feature rows but 179 labels"),
        (np.zeros((180, 1), int), "1-D"),
        (np.full(180, 0.5), r"integer class ids; got 180 non-integer values, e\.g\. 0\.5"),
        (np.full(180, "a"), "integer class ids, got dtype <U1"),
    ],
)
def test_bad_labels(labels, message):
    features, _ = clusters()
    with pytest.raises(ValueError, match=message):
        OpenMax(tail_size=10).fit(features, labels)


def test_too_few_correctly_classified_samples_names_the_class_and_counts():
    features, labels = clusters()
    logits = features["logits"].copy()
    logits[labels == 2, 0] += 20.0  # all of class 2 but 5 now look like class 0
    logits[np.flatnonzero(labels == 2)[:5], 0] -= 20.0
    with pytest.raises(ValueError, match=r"tail_size=20 .* class 2: 5 of 60"):
        OpenMax(tail_size=20).fit(logits, labels)


def test_failed_weibull_fit_names_the_class():
    features, labels = clusters()
    logits = features["logits"].copy()
    logits[labels == 1] = [0.0, 5.0, 0.0]  # identical samples: all distances 0, no spread to fit
    with pytest.raises(ValueError, match=r"Weibull fit failed for classes \[1\]"):
        OpenMax(tail_size=10).fit(logits, labels)


@pytest.mark.parametrize(
    "detector, message",
    [
        (OpenMax(tail_size=1), "tail_size"),
        (OpenMax(tail_size=20.0), "tail_size"),
        (OpenMax(alpha=0), "alpha"),
        (OpenMax(threshold=1.5), "threshold"),
        (CROSR(distance="manhattan"), r"distance must be one of \['euclidean', 'eucos', 'cosine'\]"),
        (OpenMax(distance=["cosine"]), "distance must be one of"),
        (OpenMax(translate_amount=np.inf), "translate_amount"),
        (CROSR(translate_amount=0.0), "translate_amount must be a finite number > 0"),
        (OpenMax(threshold=True), "threshold"),
        (OneClassCROSR(estimator="lof"), "ocsvm"),
        (OneClassCROSR(gamma=0), "gamma"),
        (OneClassCROSR(gamma="0.1"), "gamma"),
        (SoftmaxThreshold(threshold=-0.1), "threshold"),
    ],
    ids=lambda x: x if isinstance(x, str) else type(x).__name__,
)
def test_bad_hyper_parameters(detector, message):
    features, labels = clusters()
    with pytest.raises(ValueError, match=message):
        detector.fit(features, labels)


def test_predict_threshold_is_validated():
    features, labels = clusters()
    detector = SoftmaxThreshold().fit(features, labels)
    with pytest.raises(ValueError, match="threshold"):
        detector.predict(features, threshold=2)


@pytest.mark.parametrize("name, value", [("alpha", 0), ("alpha", 2.5), ("tail_size", 1), ("threshold", 1.5)])
def test_hyper_parameters_set_after_fit_are_checked_at_predict_time(name, value):
    features, labels = clusters()
    detector = CROSR(tail_size=10, alpha=2).fit(features, labels)
    detector.set_params(**{name: value})  # alpha is used only at predict time: 0 would give NaN probabilities
    for method in (detector.predict_proba, detector.predict, detector.decision_function):
        with pytest.raises(ValueError, match=name):
            method(features)


def test_a_failed_refit_leaves_the_detector_unfitted():
    features, labels = clusters()
    detector = OpenMax(tail_size=10).fit(features, labels)
    with pytest.raises(ValueError, match="tail_size=100"):
        detector.set_params(tail_size=100).fit(features, labels)  # 60 samples per class
    assert not [name for name in vars(detector) if name.endswith("_")]
    with pytest.raises(NotFittedError):
        detector.predict(features)
    two = labels < 2
    refitted = detector.set_params(tail_size=10).fit(features["logits"][two][:, :2], labels[two])
    assert (refitted.n_classes_, refitted.means_.shape) == (2, (2, 2))


@pytest.mark.parametrize("estimator", [SoftmaxThreshold, OpenMax, CROSR, OneClassCROSR], ids=lambda e: e.__name__)
def test_scikit_learn_estimator_checks(estimator):
    from sklearn.utils.estimator_checks import (
        check_get_params_invariance,
        check_no_attributes_set_in_init,
        check_set_params,
    )

    for check in (check_no_attributes_set_in_init, check_get_params_invariance, check_set_params):
        check(estimator.__name__, estimator())
    detector = estimator() if estimator is SoftmaxThreshold else estimator(tail_size=10)
    params = detector.get_params()
    features, labels = clusters()
    detector.fit(features if detector._needs_latent else features["logits"], labels)
    assert detector.get_params() == params  # fit leaves the hyper-parameters as they were


def test_sklearn_params_and_clone():
    detector = CROSR(tail_size=30, alpha=10, threshold=0.4)
    assert detector.get_params() == {
        "tail_size": 30,
        "alpha": 10,
        "threshold": 0.4,
        "distance": "euclidean",
        "translate_amount": 1.0,
    }
    copy = clone(detector)
    assert copy.get_params() == detector.get_params() and not hasattr(copy, "n_classes_")
    assert OpenMax().get_params()["tail_size"] == 20 and OpenMax().alpha is None and OpenMax().threshold == 0.5


@pytest.mark.parametrize(
    "detector",
    [SoftmaxThreshold(threshold=0.3), OpenMax(tail_size=10, alpha=2), CROSR(tail_size=12, distance="eucos")],
    ids=lambda d: type(d).__name__,
)
def test_save_load_round_trip(tmp_path, detector):
    features, labels = clusters()
    detector.fit(features, labels)
    path = tmp_path / "head"  # no suffix added
    save_detector(detector, path)
    assert path.is_file()
    loaded = load_detector(path)
    assert type(loaded) is type(detector) and loaded.get_params() == detector.get_params()
    x = {k: v + 0.5 for k, v in features.items()}
    np.testing.assert_array_equal(loaded.predict_proba(x), detector.predict_proba(x))
    np.testing.assert_array_equal(loaded.predict(x), detector.predict(x))
    np.testing.assert_array_equal(loaded.classes_, detector.classes_)
    with np.load(path, allow_pickle=False) as archive:
        metadata = json.loads(str(archive["metadata"]))
    assert metadata["format_version"] == 1 and metadata["class_name"] == type(detector).__name__


def test_one_class_detector_is_not_saveable(tmp_path):
    features, labels = clusters()
    detector = OneClassCROSR("isoforest", tail_size=10, random_state=0).fit(features, labels)
    with pytest.raises(TypeError, match="pickle"):
        save_detector(detector, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="saves"):
        save_detector(object(), tmp_path / "x.npz")


@pytest.fixture
def saved(tmp_path):
    features, labels = clusters()
    path = tmp_path / "openmax.npz"
    save_detector(OpenMax(tail_size=10).fit(features, labels), path)
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    return path, arrays


def rewrite(path, entries, **metadata_changes):
    metadata = json.loads(str(entries["metadata"]))
    metadata.update(metadata_changes)
    entries = dict(entries, metadata=np.array(json.dumps(metadata)))
    with open(path, "wb") as file:
        np.savez(file, **entries)


def test_load_damaged_files(saved, tmp_path):
    path, _ = saved
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DetectorFileError, match="not a readable detector file|damaged"):
        load_detector(truncated)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(DetectorFileError, match="not a readable detector file"):
        load_detector(garbage)
    flipped = bytearray(data)
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("means.npy")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    flipped[middle] ^= 0xFF
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(bytes(flipped))
    with pytest.raises(DetectorFileError, match="damaged"):
        load_detector(corrupt)
    with pytest.raises(FileNotFoundError):
        load_detector(tmp_path / "missing.npz")
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(DetectorFileError, match="not an .npz archive"):
        load_detector(single)
    import keras

    model_file = tmp_path / "m.keras"
    keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]).save(model_file)
    with pytest.raises(DetectorFileError, match="m.keras: a Keras model file, not a detector file: load it with keras"):
        load_detector(model_file)


def test_load_mismatched_files(saved):
    path, arrays = saved
    rewrite(path, arrays, format_version=2)
    with pytest.raises(DetectorFileError, match="format version 2, but this keras_crosr reads version 1"):
        load_detector(path)
    rewrite(path, arrays, format="something.else")
    with pytest.raises(DetectorFileError, match="not a keras_crosr.detector file"):
        load_detector(path)
    rewrite(path, arrays, class_name="Pickled")
    with pytest.raises(DetectorFileError, match="unknown detector class 'Pickled'"):
        load_detector(path)
    rewrite(path, arrays, params={"tail_size": 1})
    with pytest.raises(DetectorFileError, match="bad hyper-parameters"):
        load_detector(path)
    rewrite(path, arrays, n_classes=4)
    with pytest.raises(DetectorFileError, match=r"'means' has shape \(3, 3\)"):
        load_detector(path)
    rewrite(path, arrays, n_classes=0)
    with pytest.raises(DetectorFileError, match="bad n_classes / n_features_in 0 / 3"):
        load_detector(path)
    metadata = json.loads(str(arrays["metadata"]))
    del metadata["params"]
    with open(path, "wb") as file:
        np.savez(file, **dict(arrays, metadata=np.array(json.dumps(metadata))))
    with pytest.raises(DetectorFileError, match="the metadata has no 'params' entry"):
        load_detector(path)
    rewrite(path, {k: v for k, v in arrays.items() if k != "weibull_scale"})
    with pytest.raises(DetectorFileError, match="missing the 'weibull_scale' array"):
        load_detector(path)
    rewrite(path, dict(arrays, means=arrays["means"][:2]))
    with pytest.raises(DetectorFileError, match="'means' has shape"):
        load_detector(path)
    rewrite(path, dict(arrays, weibull_scale=-arrays["weibull_scale"]))
    with pytest.raises(DetectorFileError, match="invalid Weibull parameters"):
        load_detector(path)
    rewrite(path, dict(arrays, means=np.full_like(arrays["means"], np.nan)))
    with pytest.raises(DetectorFileError, match="finite"):
        load_detector(path)
    for key in ("params", "arrays"):
        rewrite(path, arrays, **{key: [1, 2]})
        with pytest.raises(DetectorFileError, match=f"'{key}' entry must be an object"):
            load_detector(path)
    with open(path, "wb") as file:
        np.savez(file, **dict(arrays, metadata=np.array("[1, 2]")))
    with pytest.raises(DetectorFileError, match="metadata is a list"):
        load_detector(path)
    with open(path, "wb") as file:
        np.savez(file, **{k: v for k, v in arrays.items() if k != "metadata"})
    with pytest.raises(DetectorFileError, match="missing the 'metadata' entry"):
        load_detector(path)
    with open(path, "wb") as file:
        np.savez(file, **dict(arrays, metadata=np.array("{not json")))
    with pytest.raises(DetectorFileError, match="not valid JSON"):
        load_detector(path)


@pytest.mark.parametrize("n_classes", [5, 80])  # both ways of ranking: pairwise counting and sorting
def test_descending_ranks_are_a_stable_sort(n_classes):
    from keras_crosr.openset import _descending_ranks

    rng = np.random.default_rng(n_classes)
    values = rng.integers(0, 4, size=(n_classes, 300)).astype(np.float64)  # many ties
    order = np.argsort(-values, axis=0, kind="stable")
    expected = np.empty_like(order)
    np.put_along_axis(expected, order, np.arange(n_classes)[:, None], axis=0)
    np.testing.assert_array_equal(_descending_ranks(values), expected)
