"""Table 2 under both formulas that the literature calls "macro-F1", on an ``mnist-outliers`` run's cached features.

The paper reports "F1-scores of known classes and unknown as a class" and cites a note on the (binary) F-measure
for them; it does not say how the eleven classes' scores are averaged. Two formulas are in use (Opitz & Burst,
"Macro F1 and Macro F1", arXiv:1911.03347): the mean of the per-class F1s ("averaged F1", scikit-learn's
``average="macro"`` and :func:`keras_crosr.metrics.macro_f1`) and the harmonic mean of the macro-averaged
precision and recall ("F1 of averages"). This script refits the configured heads (Softmax, OpenMax and, on a
network with a latent, CROSR: tail size 20, no rank calibration) on the cached features and reports both beside
the paper's Table 2. It also scores the outcomes that the paper's Noise column points to (10,000 digits at
closed-set accuracy 0.992, 10,000 unknowns none of which is rejected, all in one class or spread evenly) under
both formulas. It measures; it selects nothing.

    python benchmarks/bench_f1_definition.py --features runs/mnist-3ep/features --data-dir ../shared/data \\
        --output benchmarks/results/f1_definition_3ep
"""

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "benchmarks")]

import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_fscore_support  # noqa: E402

from keras_crosr.datasets import load_mnist  # noqa: E402
from keras_crosr.experiments.paper import TABLE2_MNIST_F1  # noqa: E402
from keras_crosr.metrics import macro_f1, predict_open_set  # noqa: E402
from keras_crosr.openset import CROSR, OpenMax, SoftmaxThreshold  # noqa: E402

from bench_openmax_calibration import N_CLASSES, OUTLIER_SETS, load_features  # noqa: E402
NETWORKS = ("supervised", "laddernet", "dhrnet")


def f1_of_averages(labels, predictions, *, n_classes):
    """Harmonic mean of the precision and the recall averaged over the `n_classes` known classes and unknown."""
    precision, recall, _, _ = precision_recall_fscore_support(
        labels, predictions, labels=np.arange(n_classes + 1), zero_division=0.0
    )
    precision, recall = precision.mean(), recall.mean()
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


def both_f1s(labels, predictions):
    return {
        "averaged_f1": round(macro_f1(labels, predictions, n_classes=N_CLASSES), 4),
        "f1_of_averages": round(f1_of_averages(labels, predictions, n_classes=N_CLASSES), 4),
    }


def synthetic_outcomes(n_per_class=1000, n_errors=80, n_unknown=10000):
    """Both formulas on the outcomes the paper's Noise column suggests: the digits classified at accuracy
    ``1 - n_errors / (10 * n_per_class)`` (errors moved to the next class), no unknown rejected."""
    labels = np.repeat(np.arange(N_CLASSES), n_per_class)
    predictions = labels.copy()
    wrong = np.linspace(0, labels.size - 1, n_errors).astype(int)
    predictions[wrong] = (labels[wrong] + 1) % N_CLASSES
    truth = np.concatenate([labels, np.full(n_unknown, N_CLASSES)])
    outcomes = {
        "none rejected, all in one class": np.zeros(n_unknown, dtype=int),
        "none rejected, spread evenly": np.arange(n_unknown) % N_CLASSES,
        "all rejected": np.full(n_unknown, N_CLASSES),
    }
    return {name: both_f1s(truth, np.concatenate([predictions, unknown])) for name, unknown in outcomes.items()}


def evaluate(head, features, labels):
    """Both F1 formulas at threshold 0.5 for each outlier set, `head` fitted on the training features."""
    head.fit(features["train"], labels["train"])
    proba_known = head.predict_proba(features["known"])
    scores = {}
    for name in OUTLIER_SETS:
        proba = np.concatenate([proba_known, head.predict_proba(features[name])])
        truth = np.concatenate([labels["known"], np.full(len(features[name]["logits"]), N_CLASSES)])
        scores[name] = both_f1s(truth, predict_open_set(proba))
    return scores


def markdown(record):
    lines = [
        "# MNIST Table 2 under both macro-F1 formulas",
        "",
        f"`python {record['command']}` ({record['seconds']} s). Each cell: averaged F1 (the mean of the 11 "
        "per-class F1s, what every report here uses) / F1 of averages (the harmonic mean of the macro-averaged "
        "precision and recall) / the paper's Table 2. Heads refitted on the cached features with the configured "
        "settings (tail size 20, no rank calibration, threshold 0.5).",
        "",
        "| network | head | " + " | ".join(OUTLIER_SETS) + " |",
        "|---|---|" + "---|" * len(OUTLIER_SETS),
    ]
    for row in record["rows"]:
        paper = TABLE2_MNIST_F1.get((row["network"], row["head"]), {})
        cells = [
            f"{row[name]['averaged_f1']:.3f} / {row[name]['f1_of_averages']:.3f} / "
            + (f"{paper[name]:.3f}" if name in paper else "–")
            for name in OUTLIER_SETS
        ]
        lines.append(f"| {row['network']} | {row['head']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Synthetic outcomes (10,000 digits at closed-set accuracy 0.992, 10,000 unknowns):",
        "",
        "| unknowns | averaged F1 | F1 of averages |",
        "|---|---|---|",
    ]
    for name, scores in record["synthetic"].items():
        lines.append(f"| {name} | {scores['averaged_f1']:.3f} | {scores['f1_of_averages']:.3f} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="the runner's features/ directory")
    parser.add_argument("--data-dir", default=None, help="local data root (default: $KERAS_CROSR_DATA)")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "f1_definition")
    args = parser.parse_args()

    paths = {network: args.features / f"mnist_cnn-{network}.npz" for network in NETWORKS}
    paths = {network: path for network, path in paths.items() if path.is_file()}
    if not paths:
        raise SystemExit(f"no mnist_cnn-{{{','.join(NETWORKS)}}}.npz feature cache in {args.features}")
    start = time.perf_counter()
    labels = {
        "train": load_mnist("train", source="local", data_dir=args.data_dir)[1],
        "known": load_mnist("test", source="local", data_dir=args.data_dir)[1],
    }
    rows = []
    for network, path in paths.items():
        features = load_features(path)
        heads = {"softmax": SoftmaxThreshold(), "openmax": OpenMax()}
        if "latent" in features["train"]:
            heads["crosr"] = CROSR()
        for head_name, head in heads.items():
            rows.append({"network": network, "head": head_name, **evaluate(head, features, labels)})
            print(json.dumps(rows[-1]), flush=True)
    record = {
        "command": " ".join(sys.argv),
        "seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
        "synthetic": synthetic_outcomes(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    args.output.with_suffix(".md").write_text(markdown(record))


if __name__ == "__main__":
    main()
