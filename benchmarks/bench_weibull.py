"""Speed of keras_crosr's vectorised Weibull fitting / scoring against the OSDN way with libmr.

Measured in one run, on the same data:

* fitting: 10 classes x 5,000 training distances, tail size 20. Ours: one ``fit_high`` call. OSDN
  (``evt_fitting.weibull_tailfitting``): per class, ``sorted(distances)[-tailsize:]`` and ``libmr.MR().fit_high``.
* W-scores of 10,000 samples x 10 classes. Ours: one ``WeibullModel.w_score`` call. OSDN: a per-sample,
  per-class loop over ``mr.w_score(distance)``.
* OpenMax scoring of 10,000 samples (logits of 10 classes, alpha = 10). Ours: ``OpenMax.predict_proba``.
  OSDN (``compute_openmax.recalibrate_scores``): per sample, rank weights, then per class the Euclidean
  distance to the class mean (``scipy.spatial.distance.euclidean``), ``mr.w_score``, the revised activation,
  and the OpenMax probabilities. Both give the same probabilities (checked).

Run: ``python benchmarks/bench_weibull.py``; writes ``weibull_speed.{json,md}`` into
``--output-dir`` (default ``benchmarks/results``).
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.spatial.distance as spd

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results"
sys.path.insert(0, str(REPO_ROOT))

from keras_crosr.openset import OpenMax  # noqa: E402
from keras_crosr.weibull import fit_high, import_libmr  # noqa: E402


def best_time(function, repeats):
    """Smallest wall time of `repeats` calls, and the last result."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def osdn_fit(libmr, distances, tail_size):
    models = []
    for class_distances in distances:
        mr = libmr.MR()
        tail = sorted(class_distances)[-tail_size:]
        mr.fit_high(tail, len(tail))
        models.append(mr)
    return models


def osdn_w_scores(models, distances):
    out = np.empty(distances.shape)
    for i in range(distances.shape[0]):
        for c, mr in enumerate(models):
            out[i, c] = mr.w_score(distances[i, c])
    return out


def osdn_openmax(models, means, logits, alpha):
    """OSDN's recalibrate_scores + computeOpenMaxProbability for one channel, sample by sample."""
    n_classes = logits.shape[1]
    out = np.empty((logits.shape[0], n_classes + 1))
    alpha_weights = [((alpha + 1) - i) / float(alpha) for i in range(1, alpha + 1)]
    for i, scores in enumerate(logits):
        ranked_list = np.argsort(-scores, kind="stable")
        ranked_alpha = np.zeros(n_classes)
        for j in range(len(alpha_weights)):
            ranked_alpha[ranked_list[j]] = alpha_weights[j]
        fc8, unknown = [], []
        for c in range(n_classes):
            distance = spd.euclidean(means[c], scores)
            wscore = models[c].w_score(distance)
            modified = scores[c] * (1 - wscore * ranked_alpha[c])
            fc8.append(modified)
            unknown.append(scores[c] - modified)
        denominator = np.sum(np.exp(fc8)) + np.exp(np.sum(unknown))
        out[i, :n_classes] = np.exp(fc8) / denominator
        out[i, n_classes] = np.exp(np.sum(unknown)) / denominator
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--train-per-class", type=int, default=5000)
    parser.add_argument("--test", type=int, default=10000)
    parser.add_argument("--tail-size", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5, help="repeats of the fast (ours) measurements")
    parser.add_argument("--output-dir", type=Path, default=RESULTS,
                        help="directory for weibull_speed.{json,md} (default: benchmarks/results)")
    args = parser.parse_args()
    libmr = import_libmr()
    rng = np.random.default_rng(0)
    n, per_class, tail_size = args.classes, args.train_per_class, args.tail_size

    # Training logits: class c peaks at column c; the test set mixes known-like and far-away samples.
    labels = np.repeat(np.arange(n), per_class)
    logits = rng.normal(0.0, 1.0, (labels.size, n))
    logits[np.arange(labels.size), labels] += 6.0
    test = rng.normal(0.0, 1.0, (args.test, n)) * rng.choice([1.0, 4.0], size=(args.test, 1))
    test[np.arange(args.test), rng.integers(0, n, args.test)] += 6.0
    detector = OpenMax(tail_size=tail_size, alpha=n, translate_amount=1.0).fit(logits, labels)
    correct = np.argmax(logits, axis=1) == labels
    distances = [np.linalg.norm(logits[correct & (labels == c)] - detector.means_[c], axis=1) for c in range(n)]
    test_distances = np.linalg.norm(test[:, None, :] - detector.means_[None], axis=-1)

    ours_fit_s, weibull = best_time(lambda: fit_high(distances, tail_size), args.repeats)
    osdn_fit_s, models = best_time(lambda: osdn_fit(libmr, distances, tail_size), args.repeats)
    ours_w_s, ours_w = best_time(lambda: weibull.w_score(test_distances), args.repeats)
    osdn_w_s, osdn_w = best_time(lambda: osdn_w_scores(models, test_distances), 1)
    ours_om_s, ours_om = best_time(lambda: detector.predict_proba(test), args.repeats)
    osdn_om_s, osdn_om = best_time(lambda: osdn_openmax(models, detector.means_, test, alpha=n), 1)

    result = {
        "setup": {
            "classes": n,
            "train_samples_per_class": per_class,
            "test_samples": args.test,
            "tail_size": tail_size,
            "alpha": n,
            "repeats_ours": args.repeats,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "processor": platform.processor(),
        },
        "fit": {"ours_s": ours_fit_s, "osdn_libmr_s": osdn_fit_s, "speedup": osdn_fit_s / ours_fit_s},
        "w_score": {
            "ours_s": ours_w_s,
            "osdn_libmr_s": osdn_w_s,
            "speedup": osdn_w_s / ours_w_s,
            "max_abs_difference": float(np.max(np.abs(ours_w - osdn_w))),
        },
        "openmax_scoring": {
            "ours_s": ours_om_s,
            "osdn_libmr_s": osdn_om_s,
            "speedup": osdn_om_s / ours_om_s,
            "max_abs_difference": float(np.max(np.abs(ours_om - osdn_om))),
        },
    }
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "weibull_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        (f"Weibull fit, {n} classes x {per_class} samples", "fit"),
        (f"W-scores, {args.test} samples x {n} classes", "w_score"),
        (f"OpenMax scoring (distance + W-score + Eq. 2), {args.test} samples", "openmax_scoring"),
    ]
    lines = [
        "# Weibull speed: keras_crosr (vectorised numpy) vs the OSDN way (per-sample, per-class libmr loop)",
        "",
        f"`python benchmarks/bench_weibull.py` (one run; ours: best of {args.repeats}, OSDN: best of 1 for "
        f"scoring, {args.repeats} for fitting).",
        "",
        "| task | ours (ms) | OSDN + libmr (ms) | speed-up | max abs difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, key in rows:
        entry = result[key]
        difference = entry.get("max_abs_difference")
        lines.append(
            f"| {label} | {entry['ours_s'] * 1e3:.2f} | {entry['osdn_libmr_s'] * 1e3:.2f} | "
            f"{entry['speedup']:.0f}x | {'-' if difference is None else f'{difference:.1e}'} |"
        )
    (args.output_dir / "weibull_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
