import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from keras_crosr import metrics
from keras_crosr.openset import OpenMax

# Two known classes + unknown (label 2). Best known probability per row: .9 .8 .6 | .7 .5
HAND_PROBA = np.array(
    [
        [0.90, 0.05, 0.05],  # label 0, correct
        [0.80, 0.10, 0.10],  # label 1, wrong
        [0.60, 0.30, 0.10],  # label 0, correct
        [0.20, 0.70, 0.10],  # unknown
        [0.50, 0.30, 0.20],  # unknown
    ]
)
HAND_LABELS = np.array([0, 1, 0, 2, 2])


def random_case(rng, n=300, n_classes=4, unknown_fraction=0.3):
    logits = rng.normal(size=(n, n_classes + 1)) * 2.0
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, n_classes, size=n)
    labels[rng.random(n) < unknown_fraction] = n_classes
    return proba, labels


def test_macro_f1_hand_case():
    # class 0: 2*1/(1+2) = 2/3; class 1: 2*1/(2+1) = 2/3; unknown: 2*1/(1+1) = 1
    assert metrics.macro_f1([0, 0, 1, 2], [0, 1, 1, 2], n_classes=2) == pytest.approx(7 / 9)


def test_macro_f1_counts_absent_classes_as_zero():
    # known classes 1 and 2 appear nowhere and still count (F1 = 0) in the mean over 4 classes
    assert metrics.macro_f1([0, 0, 3], [0, 3, 3], n_classes=3) == pytest.approx((2 / 3 + 2 / 3) / 4)


def test_macro_f1_without_unknown_samples_averages_the_known_classes():
    # Closed-set evaluation (Table 4's 4/4): a rejected known sample is a miss, the unknown column is not averaged.
    labels, predictions = [0, 0, 1, 1], [0, 2, 1, 1]
    assert metrics.macro_f1(labels, predictions, n_classes=2) == pytest.approx((2 / 3 + 1.0) / 2)
    proba = np.array([[0.9, 0.1, 0.0], [0.4, 0.3, 0.3], [0.1, 0.9, 0.0], [0.2, 0.8, 0.0]])
    curve = metrics.f1_vs_threshold(proba, labels, [0.5, 0.0])
    np.testing.assert_allclose(curve, [(2 / 3 + 1.0) / 2, 1.0])


def test_macro_f1_matches_sklearn():
    rng = np.random.default_rng(0)
    labels, predictions = rng.integers(0, 6, size=(2, 500))
    expected = f1_score(labels, predictions, labels=range(6), average="macro")
    assert metrics.macro_f1(labels, predictions, n_classes=5) == pytest.approx(expected)


def test_macro_f1_sample_weight_counts_a_sample_that_many_times():
    labels, predictions = np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0])
    weights = np.array([2, 1, 3, 1, 0.5])
    repeated = np.repeat(np.arange(5), [4, 2, 6, 2, 1])  # weights x 2, as whole repetitions
    expected = metrics.macro_f1(labels[repeated], predictions[repeated], n_classes=2)
    assert metrics.macro_f1(labels, predictions, n_classes=2, sample_weight=weights) == pytest.approx(expected)
    assert expected != pytest.approx(metrics.macro_f1(labels, predictions, n_classes=2))


def test_macro_f1_unknowns_of_weight_zero_leave_the_unknown_class_out():
    labels, predictions = [0, 1, 2], [0, 1, 0]
    # the unknown sample weighs nothing: a closed-set evaluation of classes 0 (F1 2/3) and 1 (F1 1)
    weighted = metrics.macro_f1(labels, predictions, n_classes=2, sample_weight=[1, 1, 0])
    assert weighted == pytest.approx((1.0 + 1.0) / 2)
    assert metrics.macro_f1(labels, predictions, n_classes=2) == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)


@pytest.mark.parametrize(
    "weights, message",
    [
        ([1, 1], r"shape \(3,\)"),
        ([1, -1, 1], "non-negative"),
        ([1, np.nan, 1], "finite"),
        ([0, 0, 0], "all weights are 0"),
        (["a", "b", "c"], "numbers"),
    ],
)
def test_macro_f1_refuses_bad_sample_weight(weights, message):
    with pytest.raises(ValueError, match=message):
        metrics.macro_f1([0, 1, 2], [0, 1, 2], n_classes=2, sample_weight=weights)


def test_closed_set_accuracy_ignores_unknowns_and_rejection():
    # predictions as labels: known samples 0, 1, 0 -> 0, 2 (rejected), 0 -> 2/3
    assert metrics.closed_set_accuracy([0, 1, 0, 2], [0, 2, 0, 1], n_classes=2) == pytest.approx(2 / 3)
    # scores: arg-max over the known columns only -> .9 -> 0 right, .8 -> 0 wrong, .6 -> 0 right
    assert metrics.closed_set_accuracy(HAND_LABELS, HAND_PROBA, n_classes=2) == pytest.approx(2 / 3)


def test_closed_set_accuracy_matches_sklearn():
    proba, labels = random_case(np.random.default_rng(1))
    known = labels < 4
    expected = accuracy_score(labels[known], proba[known, :4].argmax(axis=1))
    assert metrics.closed_set_accuracy(labels, proba, n_classes=4) == pytest.approx(expected)


def test_unknown_auroc_matches_sklearn_and_hand_case():
    proba, labels = random_case(np.random.default_rng(2))
    scores = proba[:, -1]
    expected = roc_auc_score(labels == 4, scores)
    assert metrics.unknown_auroc(labels, scores, n_classes=4) == pytest.approx(expected)
    # unknown scores .3 and .1 against known .2 and .0: 3 of the 4 pairs ordered right
    assert metrics.unknown_auroc([2, 2, 0, 1], [0.3, 0.1, 0.2, 0.0], n_classes=2) == pytest.approx(0.75)


def test_predict_open_set_hand_case():
    proba = np.array([[0.6, 0.3, 0.1], [0.45, 0.1, 0.45], [0.3, 0.3, 0.4], [0.4, 0.2, 0.4]])
    np.testing.assert_array_equal(metrics.predict_open_set(proba, 0.5), [0, 2, 2, 2])
    # threshold 0: only an unknown column strictly above every known one rejects
    np.testing.assert_array_equal(metrics.predict_open_set(proba, 0.0), [0, 0, 2, 0])


def test_decision_rule_and_threshold_curve_match_the_detectors_predict():
    rng = np.random.default_rng(6)
    labels = rng.integers(0, 3, 400)
    logits = 2.0 * np.eye(3)[labels] + rng.normal(size=(400, 3))
    detector = OpenMax(tail_size=10).fit(logits, labels)
    test_logits = np.concatenate([logits[:100], 4.0 * rng.normal(size=(100, 3))])
    test_labels = np.r_[labels[:100], np.full(100, 3)]
    proba = detector.predict_proba(test_logits)
    thresholds = np.linspace(0, 1, 11)
    expected = []
    for t in thresholds:
        predictions = detector.predict(test_logits, threshold=t)
        np.testing.assert_array_equal(metrics.predict_open_set(proba, t), predictions)
        expected.append(metrics.macro_f1(test_labels, predictions, n_classes=3))
    np.testing.assert_allclose(metrics.f1_vs_threshold(proba, test_labels, thresholds), expected)


def test_oscr_hand_case():
    # (FPR, CCR) after each score .9 .8 .7 .6 .5: (0,1/3) (0,1/3) (1/2,1/3) (1/2,2/3) (1,2/3)
    fpr, ccr = metrics.oscr_curve(HAND_LABELS, HAND_PROBA)
    np.testing.assert_allclose(fpr, [0, 0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(ccr, [0, 1 / 3, 1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert metrics.oscr(HAND_LABELS, HAND_PROBA) == pytest.approx(0.5 * 1 / 3 + 0.5 * 2 / 3)


def test_oscr_ties_are_a_diagonal_and_perfect_separation_gives_accuracy():
    tied = np.array([[0.7, 0.3, 0.0], [0.7, 0.3, 0.0]])
    assert metrics.oscr([0, 2], tied) == pytest.approx(0.5)
    separated = HAND_PROBA.copy()
    separated[3:, :2] = [[0.1, 0.0], [0.0, 0.05]]  # unknowns below every known sample
    assert metrics.oscr(HAND_LABELS, separated) == pytest.approx(2 / 3)


def test_oscr_matches_brute_force_definition():
    proba, labels = random_case(np.random.default_rng(3), n=200)
    proba = np.round(proba, 2)  # many ties
    score, best = proba[:, :4].max(axis=1), proba[:, :4].argmax(axis=1)
    known = labels < 4
    points = [(0.0, 0.0)]
    for theta in sorted(set(score), reverse=True):
        accepted = score >= theta
        false_positive_rate = (accepted & ~known).sum() / (~known).sum()
        correct_rate = (accepted & known & (best == labels)).sum() / known.sum()
        points.append((false_positive_rate, correct_rate))
    fpr, ccr = np.array(points).T
    expected = np.sum(np.diff(fpr) * (ccr[1:] + ccr[:-1]) / 2)  # the trapezoid rule (np.trapezoid needs numpy 2)
    assert metrics.oscr(labels, proba) == pytest.approx(expected)
    assert metrics.oscr(labels, proba) <= metrics.closed_set_accuracy(labels, proba, n_classes=4)


@pytest.mark.parametrize("seed", [4, 5])
def test_f1_vs_threshold_equals_per_threshold_macro_f1(seed):
    rng = np.random.default_rng(seed)
    proba, labels = random_case(rng)
    proba = np.round(proba, 2)
    # unsorted, repeated, and exactly on probability values; beyond both ends
    thresholds = np.r_[rng.permutation(np.linspace(0, 1, 21)), 0.5, proba[0, :4].max(), -1.0, 2.0]
    expected = [
        metrics.macro_f1(labels, metrics.predict_open_set(proba, t), n_classes=4) for t in thresholds
    ]
    np.testing.assert_allclose(metrics.f1_vs_threshold(proba, labels, thresholds), expected, atol=1e-12)


def test_open_set_scores_dict():
    scores = metrics.open_set_scores(HAND_LABELS, HAND_PROBA)
    # threshold .5 (.5 itself accepted): predictions 0, 0, 0, 1, 0 for labels 0, 1, 0, 2, 2
    # class 0: 2 right of 4 predicted, 2 of 2 found: 2 * (1/2 * 1) / (1/2 + 1) = 2/3; class 1: its sample is
    # predicted 0, its one prediction is an unknown: 0; unknown: never predicted: 0 -> (2/3 + 0 + 0) / 3 = 2/9
    assert scores["macro_f1"] == pytest.approx(2 / 9)
    assert scores["closed_set_accuracy"] == pytest.approx(2 / 3)
    assert scores["oscr"] == pytest.approx(0.5)
    # default unknown score = minus the best known probability: 5 of the 6 pairs ordered right
    assert scores["auroc"] == pytest.approx(5 / 6)
    # no known sample rejected, no unknown either: the two unknowns went to classes 1 and 0
    assert (scores["known_rejected"], scores["unknown_rejected"], scores["unknown_in_largest_class"]) == (0, 0, 0.5)
    assert set(metrics.open_set_scores([0, 1], HAND_PROBA[:2])) == {"macro_f1", "closed_set_accuracy", "known_rejected"}


def test_rejection_rates_tell_apart_what_macro_f1_does_not():
    """Ten known classes of 100, 1,000 unknowns: all unknowns in one class vs 60 % rejected and the rest spread
    score nearly the same macro-F1, and the rates tell them apart."""
    known = np.repeat(np.arange(10), 100)
    labels = np.concatenate([known, np.full(1000, 10)])
    in_one_class = np.concatenate([known, np.full(1000, 3)])
    rejected_and_spread = np.concatenate([known, np.full(600, 10), np.tile(np.arange(10), 40)])
    f1 = [metrics.macro_f1(labels, p, n_classes=10) for p in (in_one_class, rejected_and_spread)]
    assert f1 == pytest.approx([0.833, 0.826], abs=1e-3)
    assert metrics.rejection_rates(labels, in_one_class, n_classes=10) == {
        "known_rejected": 0.0, "unknown_rejected": 0.0, "unknown_in_largest_class": 1.0}
    assert metrics.rejection_rates(labels, rejected_and_spread, n_classes=10) == pytest.approx(
        {"known_rejected": 0.0, "unknown_rejected": 0.6, "unknown_in_largest_class": 0.04})
    assert metrics.rejection_rates([0, 1, 1], [2, 1, 2], n_classes=2) == pytest.approx({"known_rejected": 2 / 3})
    assert metrics.rejection_rates([2, 2], [2, 0], n_classes=2) == {"unknown_rejected": 0.5,
                                                                    "unknown_in_largest_class": 0.5}


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.macro_f1([0, 1], [0], n_classes=2), "shape"),
        (lambda: metrics.rejection_rates([0, 1], [0], n_classes=2), "shape"),
        (lambda: metrics.rejection_rates([0, 1], [0, 3], n_classes=2), r"0\.\.2"),
        (lambda: metrics.rejection_rates([], [], n_classes=2), "empty"),
        (lambda: metrics.macro_f1([0, 3], [0, 1], n_classes=2), r"0\.\.2"),
        (lambda: metrics.macro_f1([0, -1], [0, 1], n_classes=2), r"0\.\.2"),
        (lambda: metrics.macro_f1([0.5, 1], [0, 1], n_classes=2), "integer"),
        (lambda: metrics.macro_f1([[0, 1]], [[0, 1]], n_classes=2), "1-D"),
        (lambda: metrics.oscr(HAND_LABELS[:4], HAND_PROBA), "rows"),
        (lambda: metrics.oscr(HAND_LABELS, HAND_PROBA[:, 0]), "2-D"),
        (lambda: metrics.oscr([0, 1, 0], HAND_PROBA[:3]), "both known and unknown"),
        (lambda: metrics.oscr(HAND_LABELS, np.where(HAND_PROBA > 0.8, np.nan, HAND_PROBA)), "NaN"),
        (lambda: metrics.unknown_auroc([0, 1], [0.1, 0.2], n_classes=2), "both known and unknown"),
        (lambda: metrics.unknown_auroc([0, 2], [0.1], n_classes=2), "shape"),
        (lambda: metrics.closed_set_accuracy([2, 2], [0, 1], n_classes=2), "known sample"),
        (lambda: metrics.closed_set_accuracy([0, 1], np.zeros((2, 1)), n_classes=2), "columns"),
        (lambda: metrics.closed_set_accuracy([0, 1], [[np.nan, 0.0], [0.0, 1.0]], n_classes=2), "NaN"),
        (lambda: metrics.f1_vs_threshold(HAND_PROBA, HAND_LABELS, [[0.5]]), "thresholds"),
        (lambda: metrics.f1_vs_threshold(HAND_PROBA, HAND_LABELS, [np.nan]), "NaN"),
        (lambda: metrics.f1_vs_threshold(HAND_PROBA[:0], HAND_LABELS[:0], [0.5]), "no samples"),
        (lambda: metrics.closed_set_accuracy([0, 1], [0, 7], n_classes=2), r"`predictions` must be in 0\.\.2"),
        (lambda: metrics.macro_f1([0], [0], n_classes=0), "`n_classes` must be a positive integer"),
        (lambda: metrics.unknown_auroc([0, 2], [0.1, 0.2], n_classes=2.0), "`n_classes` must be a positive integer"),
        (lambda: metrics.predict_open_set(HAND_PROBA, threshold=np.nan), "`threshold` must be a finite number"),
        (lambda: metrics.predict_open_set(HAND_PROBA, threshold="0.5"), "`threshold` must be a finite number"),
        (lambda: metrics.open_set_scores(HAND_LABELS, HAND_PROBA, threshold=np.full(5, 0.5)), "threshold"),
        (lambda: metrics.open_set_scores(HAND_LABELS, 5 * HAND_PROBA - 1), r"probabilities in \[0, 1\].*logits"),
        (lambda: metrics.predict_open_set(HAND_PROBA - 0.5), r"got values in \[-0\.45, 0\.4\]"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()
