"""How much MNIST's macro-F1 at threshold 0.5 (Table 2) depends on what the paper leaves unspecified.

Openmax without rank calibration (the paper's setting for MNIST and CIFAR-10) gives the unknown class the
activation ``sum_i y_i * WeibullCDF_i`` and the known classes ``y_i * (1 - WeibullCDF_i)`` (Eq. 2). Adding one
constant ``c`` to every logit leaves the softmax classifier, the cross-entropy loss and the distances of Eqs. 4
and 6 unchanged, but not these activations: their level is a degree of freedom that training does not fix
(the cross-entropy gradient sums to zero over the classes, so the class-mean of the last layer's weights and
biases keeps its initial value). libMR's ``translate_amount`` is another: the Weibull is fitted to the tail
shifted so that its smallest value becomes ``translate_amount`` (1 in PyPI's libmr 0.1.9; 10000 in other
copies of libMR's sources), which leaves the fit over the tail nearly alone but decides the W-score below it (0
from one unit below the tail with 1; a smooth decay with 10000). This script refits the heads on cached
features and reports, for each shift ``c``, rank-calibration ``alpha`` and ``translate_amount``, the
acceptance rate of the known test digits, the rejection rate of each outlier set and the macro-F1 over 11
classes at threshold 0.5. It measures a sensitivity; it selects nothing (choosing any of them on these test
outliers would be tuning on the test set).

Input: the runner's feature cache of an ``mnist-outliers`` run (``OUTPUT/features/mnist_cnn-TRAINING.npz``).
Where the run's trained networks are beside it (``OUTPUT/networks/mnist_cnn-TRAINING.keras``), it also reports
the class-mean of their last layer's bias and the spread of its kernel's class-mean row, to compare with the
initial values (bias 0; Glorot-uniform kernel: standard deviation ``sqrt(2 / (fan_in + fan_out) / N)``).
Writes ``benchmarks/results/openmax_calibration.{json,md}``.

    python benchmarks/bench_openmax_calibration.py --features runs/mnist-outliers/features --data-dir ../shared/data
"""

import argparse
import json
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_crosr.datasets import load_mnist  # noqa: E402
from keras_crosr.metrics import macro_f1, predict_open_set, unknown_auroc  # noqa: E402
from keras_crosr.openset import CROSR, OpenMax  # noqa: E402

OUTLIER_SETS = ("omniglot", "mnist_noise", "noise")
N_CLASSES = 10


def load_features(path):
    """``{set: {"logits", "latent"?}}`` from a runner cache file."""
    with np.load(path) as arrays:
        features = {}
        for key in arrays.files:
            split, kind = key.split("/")
            features.setdefault(split, {})[kind] = arrays[key]
    missing = {"train", "known", *OUTLIER_SETS} - set(features)
    if missing:
        raise ValueError(f"{path} is not an mnist-outliers feature cache: no {sorted(missing)}")
    return features


def last_layer_class_means(path):
    """Class-means of a saved network's ``logits`` layer: the bias's, and the kernel's row `(fan_in,)` summarised."""
    kernel, bias = keras.saving.load_model(path, compile=False).get_layer("logits").get_weights()
    fan_in, n_classes = kernel.shape
    return {
        "bias_class_mean": float(bias.mean()),
        "kernel_class_mean_std": float(kernel.mean(axis=1).std()),
        "glorot_uniform_class_mean_std": float(np.sqrt(2.0 / (fan_in + n_classes) / n_classes)),
    }


def shifted(features, shift):
    return {**features, "logits": features["logits"] + shift}


def evaluate(head, features, labels, shift):
    """Acceptance / rejection rates, macro-F1 and AUROC of one head fitted on logits shifted by `shift`."""
    head.fit(shifted(features["train"], shift), labels["train"])
    proba_known = head.predict_proba(shifted(features["known"], shift))
    result = {"known_accepted": round(float(np.mean(predict_open_set(proba_known) != N_CLASSES)), 4)}
    for name in OUTLIER_SETS:
        proba_out = head.predict_proba(shifted(features[name], shift))
        proba = np.concatenate([proba_known, proba_out])
        truth = np.concatenate([labels["known"], np.full(len(proba_out), N_CLASSES)])
        result[name] = {
            "rejected": round(float(np.mean(predict_open_set(proba_out) == N_CLASSES)), 4),
            "macro_f1": round(float(macro_f1(truth, predict_open_set(proba), n_classes=N_CLASSES)), 3),
            "auroc": round(float(unknown_auroc(truth, proba[:, -1], n_classes=N_CLASSES)), 4),
        }
    return result


def markdown(args, record):
    lines = [
        "# Openmax / CROSR at threshold 0.5: sensitivity to a softmax-invariant logit shift, to rank calibration "
        "and to libMR's translate amount",
        "",
        f"`python {record['command']}` ({record['seconds']} s). Heads refitted (tail size {args.tail_size}) on the "
        "cached features; `c` is added to every logit (closed-set predictions, softmax and distances unchanged); "
        "`alpha` = none is the paper's setting for MNIST; `t` is libMR's translate amount (PyPI libmr's 1, the "
        "default here; 10000 in other copies of libMR). Nothing here is selected: the rows measure how far F1 at "
        "threshold 0.5 moves.",
        "",
    ]
    for network, stats in record["logit_means"].items():
        means = ", ".join(f"{name} {value:+.2f}" for name, value in stats.items())
        lines.append(f"Mean logit of `{network}` per set (the level `c` moves): {means}.")
    for network, stats in record["last_layer"].items():
        lines.append(
            f"Last layer of the saved `{network}`: bias class-mean {stats['bias_class_mean']:.1e} (initially 0), "
            f"kernel class-mean standard deviation {stats['kernel_class_mean_std']:.4f} (Glorot-uniform initially: "
            f"{stats['glorot_uniform_class_mean_std']:.4f})."
        )
    lines += [
        "",
        "| network | head | c | alpha | t | known accepted | "
        + " | ".join(f"{o} rejected / F1 / AUROC" for o in OUTLIER_SETS) + " |",
        "|---|---|---|---|---|---|" + "---|" * len(OUTLIER_SETS),
    ]
    for row in record["rows"]:
        cells = [f"{row[o]['rejected']:.3f} / {row[o]['macro_f1']:.3f} / {row[o]['auroc']:.4f}" for o in OUTLIER_SETS]
        alpha = "none" if row["alpha"] is None else str(row["alpha"])
        lines.append(
            f"| {row['network']} | {row['head']} | {row['shift']:+g} | {alpha} | {row['translate_amount']:g} | "
            f"{row['known_accepted']:.4f} | "
            + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="the runner's features/ directory")
    parser.add_argument("--data-dir", default=None, help="local data root (default: $KERAS_CROSR_DATA)")
    parser.add_argument("--networks", nargs="+", default=["dhrnet", "supervised"])
    parser.add_argument("--shifts", type=float, nargs="+", default=[-2.0, -1.0, 0.0, 1.0, 2.0])
    parser.add_argument("--alphas", type=int, nargs="*", default=[1, 2, 5, 10])
    parser.add_argument("--translate-amounts", type=float, nargs="*", default=[10000.0],
                        help="libMR translate amounts to try besides 1 (at c = 0, alpha none)")
    parser.add_argument("--tail-size", type=int, default=20)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "benchmarks" / "results" / "openmax_calibration")
    args = parser.parse_args()

    start = time.perf_counter()
    labels = {
        "train": load_mnist("train", source="local", data_dir=args.data_dir)[1],
        "known": load_mnist("test", source="local", data_dir=args.data_dir)[1],
    }
    rows, logit_means, last_layer = [], {}, {}
    for network in args.networks:
        features = load_features(args.features / f"mnist_cnn-{network}.npz")
        logit_means[network] = {name: float(np.mean(f["logits"])) for name, f in features.items()}
        saved = args.features.parent / "networks" / f"mnist_cnn-{network}.keras"
        if saved.is_file():
            last_layer[network] = last_layer_class_means(saved)
        heads = {"openmax": OpenMax}
        if "latent" in features["train"]:
            heads["crosr"] = CROSR
        settings = [(shift, None, 1.0) for shift in args.shifts] + [(0.0, alpha, 1.0) for alpha in args.alphas]
        settings += [(0.0, None, translate) for translate in args.translate_amounts if translate != 1.0]
        for head_name, head in heads.items():
            for shift, alpha, translate in settings:
                detector = head(tail_size=args.tail_size, alpha=alpha, translate_amount=translate)
                result = evaluate(detector, features, labels, shift)
                rows.append({"network": network, "head": head_name, "shift": shift, "alpha": alpha,
                             "translate_amount": translate, **result})
                print(json.dumps(rows[-1]), flush=True)
    record = {
        "command": " ".join(sys.argv),
        "seconds": round(time.perf_counter() - start, 1),
        "logit_means": logit_means,
        "last_layer": last_layer,
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    args.output.with_suffix(".md").write_text(markdown(args, record))


if __name__ == "__main__":
    main()
