"""What the one-class SVM's kernel width does to Table 6's OCSVM heads, on an experiment run's cached features.

The paper fits its OCSVM heads "with the default hyperparameters in scikit-learn" (2018): ``gamma="auto"``
(``1 / D``). scikit-learn 0.22 changed that default to ``"scale"`` (``1 / (D * X.var())``), which follows the
scale of the features (logits of tens: a much wider kernel); ``OneClassCROSR`` uses ``"scale"``. This script
fits ``OneClassCROSR("ocsvm")`` with each ``gamma`` (and OpenMax beside them) on the runner's cached features and
reports the open-set scores of the known test digits against each set of unknowns. It measures; it selects nothing.

Input, either (full budget: every training and test image; the kind is read from the file's sets):
- ``OUTPUT/features/mnist-tTRIAL-mnist_cnn-VARIANT.npz`` of ``python -m keras_crosr run class-split --only mnist``
  (with ``--trial``; unknowns: the held-out digits). Writes ``ocsvm_gamma.{json,md}``.
- ``OUTPUT/features/mnist_cnn-VARIANT.npz`` of ``python -m keras_crosr run mnist-outliers`` (unknowns: Omniglot,
  MNIST-Noise, Noise). Writes ``ocsvm_gamma_mnist_outliers_VARIANT.{json,md}``.
into ``--output-dir``. The ``supervised`` features are logits ``y``; the others ``[y, z]`` (Table 6's rows).

    python benchmarks/bench_ocsvm_gamma.py \\
        --features runs/class-split-10ep/features/mnist-t3-mnist_cnn-supervised.npz --trial 3 --data-dir ../shared/data
    python benchmarks/bench_ocsvm_gamma.py \\
        --features runs/mnist-outliers-cpu/features/mnist_cnn-supervised.npz --data-dir ../shared/data
"""

import argparse
import json
import re
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from keras_crosr import datasets, metrics, protocols  # noqa: E402
from keras_crosr.dhrnet import VARIANTS  # noqa: E402
from keras_crosr.openset import OneClassCROSR, OpenMax  # noqa: E402

OUTLIER_SETS = {"omniglot": "Omniglot", "mnist_noise": "MNIST-Noise", "noise": "Noise"}


def load_sets(path):
    """``{set name: {"logits": (n, N)[, "latent": (n, L)]}}`` of a runner's features file."""
    with np.load(path) as cached:
        names = sorted({key.split("/")[0] for key in cached.files})
        return {name: {key: cached[f"{name}/{key}"] for key in ("logits", "latent") if f"{name}/{key}" in cached}
                for name in names}


def benchmark_data(sets, variant, args):
    """``(y_train, y_known, {unknowns label: features}, stem, what)`` for the kind of run ``sets`` come from."""
    if "unknown" in sets:
        if args.trial is None:
            raise SystemExit("these are class-split features: give the --trial they belong to")
        split = protocols.make_class_separation("mnist", args.trial, data_dir=args.data_dir)
        y_train, y_known = split.y_train, split.y_test_known
        unknowns = {"held-out digits": sets["unknown"]}
        stem, what = "ocsvm_gamma", f"MNIST's class split, trial {args.trial}"
    elif set(OUTLIER_SETS) <= set(sets):
        y_train = datasets.load_mnist("train", data_dir=args.data_dir)[1]
        y_known = datasets.load_mnist("test", data_dir=args.data_dir)[1]
        unknowns = {label: sets[name] for name, label in OUTLIER_SETS.items()}
        stem, what = f"ocsvm_gamma_mnist_outliers_{variant}", f"MNIST's outlier benchmark, {variant} network"
    else:
        raise SystemExit(f"{args.features} holds the sets {sorted(sets)}: neither a class-split nor an "
                         "mnist-outliers features file")
    if len(sets["train"]["logits"]) != len(y_train) or len(sets["known"]["logits"]) != len(y_known):
        raise SystemExit("the features are not those of the full data (a --quick run?): sizes differ from the labels")
    return y_train, y_known, unknowns, stem, what


def feature_variant(path):
    """The network variant of a runner's ``...BACKBONE-VARIANT.npz`` features file."""
    match = re.search(rf"-({'|'.join(VARIANTS)})\.npz$", path.name)
    if match is None:
        endings = ", ".join(f"-{variant}.npz" for variant in VARIANTS)
        raise SystemExit(f"{path.name}: not a features file of the runner (its names end in one of {endings})")
    return match.group(1)


def score(detector, known, unknown, y_known):
    """Open-set scores of a fitted detector on the known then the unknown test features."""
    labels = np.concatenate([y_known, np.full(len(unknown["logits"]), detector.n_classes_)])
    proba = np.concatenate([detector.predict_proba(known), detector.predict_proba(unknown)])
    unknown_scores = np.concatenate([detector.decision_function(known), detector.decision_function(unknown)])
    return {k: round(v, 4) for k, v in metrics.open_set_scores(labels, proba, unknown_scores=unknown_scores).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="a run's features/*.npz")
    parser.add_argument("--trial", type=int, default=None, help="class-split features: their trial (0-4)")
    parser.add_argument("--data-dir", default=None, help="local data root (default: $KERAS_CROSR_DATA)")
    parser.add_argument("--tail-size", type=int, default=20)
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    variant = feature_variant(args.features)
    sets = load_sets(args.features)
    y_train, y_known, unknowns, stem, what = benchmark_data(sets, variant, args)
    use_latent = variant != "supervised"
    detectors = {f"OCSVM, gamma={gamma!r}": OneClassCROSR("ocsvm", gamma=gamma, tail_size=args.tail_size,
                                                         use_latent=use_latent) for gamma in ("scale", "auto")}
    detectors["OpenMax"] = OpenMax(tail_size=args.tail_size)
    rows, seconds = [], {}
    for name, detector in detectors.items():
        start = time.perf_counter()
        detector.fit(sets["train"], y_train)
        for unknowns_name, unknown in unknowns.items():
            rows.append({"detector": name, "unknowns": unknowns_name,
                         **score(detector, sets["known"], unknown, y_known)})
            print(rows[-1], flush=True)
        seconds[name] = round(time.perf_counter() - start, 1)

    record = {"features": str(args.features), "trial": args.trial, "use_latent": use_latent,
              "tail_size": args.tail_size, "rows": rows, "fit_and_score_seconds": seconds}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    command = f"python benchmarks/bench_ocsvm_gamma.py --features {args.features}"
    if args.trial is not None:
        command += f" --trial {args.trial}"
    if args.data_dir:
        command += f" --data-dir {args.data_dir}"
    lines = [
        f"## One-class SVM kernel width on {what} (Table 6's OCSVM head)", "",
        f"`{command}` (features {'[logits, latent]' if use_latent else 'logits'}, tail size {args.tail_size}; "
        f"{len(y_known)} known test digits, {len(y_train)} training digits).", "",
        "| detector | unknowns | macro-F1 at 0.5 | AUROC | closed-set accuracy | OSCR |", "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['detector']} | {r['unknowns']} ({len(unknowns[r['unknowns']]['logits'])}) | "
              f"{r['macro_f1']:.3f} | {r['auroc']:.3f} | {r['closed_set_accuracy']:.3f} | {r['oscr']:.3f} |"
              for r in rows]
    lines += ["", "Seconds to fit and score: " + ", ".join(f"{name} {s:.1f}" for name, s in seconds.items()) + "."]
    (args.output_dir / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output_dir / stem}.md")


if __name__ == "__main__":
    main()
