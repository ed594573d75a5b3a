"""What the one-class SVM's kernel width does to Table 6's OCSVM heads, on a class-split run's cached features.

The paper fits its OCSVM heads "with the default hyperparameters in scikit-learn" (2018): ``gamma="auto"``
(``1 / D``). scikit-learn 0.22 changed that default to ``"scale"`` (``1 / (D * X.var())``), which depends on the
scale of the features (logits of tens: a much wider kernel). This script fits ``OneClassCROSR("ocsvm")`` with each
``gamma`` (and OpenMax beside them) on the runner's cached features of one MNIST class-split trial and reports the
open-set scores of its known and unknown test digits. It measures; it selects nothing.

Input: ``OUTPUT/features/mnist-tTRIAL-mnist_cnn-VARIANT.npz`` of ``python -m keras_crosr run class-split --only
mnist`` (full budget: every training and test image). Writes ``ocsvm_gamma.{json,md}`` into ``--output-dir``.

    python benchmarks/bench_ocsvm_gamma.py \\
        --features runs/class-split-10ep/features/mnist-t3-mnist_cnn-supervised.npz --trial 3 --data-dir ../shared/data
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

from keras_crosr import metrics, protocols  # noqa: E402
from keras_crosr.openset import OneClassCROSR, OpenMax  # noqa: E402


def score(detector, known, unknown, labels):
    """Open-set scores of a fitted detector on the known then the unknown test features."""
    proba = np.concatenate([detector.predict_proba(known), detector.predict_proba(unknown)])
    unknown_scores = np.concatenate([detector.decision_function(known), detector.decision_function(unknown)])
    return {k: round(v, 4) for k, v in metrics.open_set_scores(labels, proba, unknown_scores=unknown_scores).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, required=True, help="a class-split run's features/*.npz")
    parser.add_argument("--trial", type=int, required=True, help="the trial the features belong to (0-4)")
    parser.add_argument("--data-dir", default=None, help="local data root (default: $KERAS_CROSR_DATA)")
    parser.add_argument("--tail-size", type=int, default=20)
    parser.add_argument("--output-dir", type=Path, default=REPO_ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    split = protocols.make_class_separation("mnist", args.trial, data_dir=args.data_dir)
    use_latent = not re.search(r"-supervised\.npz$", args.features.name)
    with np.load(args.features) as cached:
        sets = {name: {key: cached[f"{name}/{key}"] for key in ("logits", "latent") if f"{name}/{key}" in cached}
                for name in ("train", "known", "unknown")}
    if len(sets["train"]["logits"]) != len(split.y_train) or len(sets["known"]["logits"]) != len(split.y_test_known):
        raise SystemExit("the features are not those of the full trial (a --quick run?): sizes differ from the split")
    labels = np.concatenate([split.y_test_known, np.full(len(sets["unknown"]["logits"]), split.num_known)])
    rows = []
    detectors = {f"OCSVM, gamma={gamma!r}": OneClassCROSR("ocsvm", gamma=gamma, tail_size=args.tail_size,
                                                         use_latent=use_latent) for gamma in ("auto", "scale")}
    detectors["OpenMax"] = OpenMax(tail_size=args.tail_size)
    for name, detector in detectors.items():
        start = time.perf_counter()
        detector.fit(sets["train"], split.y_train)
        rows.append({"detector": name, **score(detector, sets["known"], sets["unknown"], labels),
                     "seconds": round(time.perf_counter() - start, 1)})
        print(rows[-1], flush=True)

    record = {"features": str(args.features), "trial": args.trial, "use_latent": use_latent,
              "tail_size": args.tail_size, "rows": rows}
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "ocsvm_gamma.json").write_text(json.dumps(record, indent=1) + "\n")
    command = f"python benchmarks/bench_ocsvm_gamma.py --features {args.features} --trial {args.trial}"
    if args.data_dir:
        command += f" --data-dir {args.data_dir}"
    lines = [
        "## One-class SVM kernel width on MNIST's class split (Table 6's OCSVM head)", "",
        f"`{command}` (features {'[logits, latent]' if use_latent else 'logits'}, tail size {args.tail_size}; "
        f"6 known digits against {len(sets['unknown']['logits'])} unknown test digits).", "",
        "| detector | macro-F1 at 0.5 | AUROC | closed-set accuracy | OSCR |", "|---|---|---|---|---|",
    ]
    lines += [f"| {r['detector']} | {r['macro_f1']:.3f} | {r['auroc']:.3f} | {r['closed_set_accuracy']:.3f} | "
              f"{r['oscr']:.3f} |" for r in rows]
    (args.output_dir / "ocsvm_gamma.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output_dir / 'ocsvm_gamma.md'}")


if __name__ == "__main__":
    main()
