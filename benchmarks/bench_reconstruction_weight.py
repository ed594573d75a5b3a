"""The reconstruction-loss weight of a DHRNet on MNIST: closed-set validation accuracy and what CROSR gains.

The paper (section 5, "Training DHRNet"): "the weight of reconstruction error should be as large as possible
while keeping the closed-set validation accuracy"; it used 1.0 and did not tune it. Our reconstruction loss is
the per-pixel mean squared error, so 1.0 makes it small beside the cross entropy (a weight of 784 is the
per-image sum of squares). ``--distance euclidean`` trains with the paper's words read literally instead: the
Euclidean distance ``||x - x~||_2`` of each image, neither squared nor averaged. For each weight (and optimizer),
this trains the MNIST plain-CNN DHRNet on a subset of the training digits and reports:

- the closed-set accuracy on 5,000 held-out training digits (the paper's selection criterion);
- the scale of the logits and of the latent (mean absolute value on the training subset): CROSR's distance
  (Eq. 6) sees ``[y, z]``, so a latent much smaller than the logits weighs little in it;
- macro-F1 (threshold 0.5) and AUROC of OpenMax and CROSR against Omniglot and MNIST-Noise, and the Softmax
  baseline's macro-F1 (which no shift of the logits moves), for information only: these are test outlier sets,
  and the paper's rule does not look at them. Weight 0 trains the same network on the classification loss alone.

A run whose loss becomes NaN stops at once (``TerminateOnNaN``) and is reported as diverged; a head that cannot
be fitted (a classifier left near chance has too few correctly classified digits for a Weibull tail) is reported
as not fitted, with the head's message.
Writes ``benchmarks/results/reconstruction_weight_OPTIMIZER.{json,md}``.

    python benchmarks/bench_reconstruction_weight.py --weights 1 10 --optimizer sgd    # ~4 min per weight, 2 CPU cores
    python benchmarks/bench_reconstruction_weight.py --weights 0 1 100 --optimizer adam
    python benchmarks/bench_reconstruction_weight.py --weights 784 --optimizer sgd --clipnorm 5
    python benchmarks/bench_reconstruction_weight.py --weights 1 --optimizer adam --distance euclidean
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_crosr.datasets import load_mnist, load_mnist_noise, load_omniglot  # noqa: E402
from keras_crosr.dhrnet import (  # noqa: E402
    ImageReconstructionError,
    build_dhrnet,
    compile_dhrnet,
    dhrnet_targets,
    inference_model,
)
from keras_crosr.experiments import warmup_cosine  # noqa: E402
from keras_crosr.metrics import macro_f1, predict_open_set, rejection_rates, unknown_auroc  # noqa: E402
from keras_crosr.openset import CROSR, OpenMax, SoftmaxThreshold  # noqa: E402

VALIDATION = 5000
OUTLIER_SETS = {"omniglot": load_omniglot, "mnist_noise": load_mnist_noise}
OUTLIER_LABELS = {"omniglot": "Omniglot", "mnist_noise": "MNIST-Noise"}
HEADS = {"softmax": "Softmax", "openmax": "OpenMax", "crosr": "CROSR"}


class ImageEuclideanDistance(ImageReconstructionError):
    """``||x - x~||_2`` of each image, `(batch,)`: the square root of the sum of squares over its pixels (plus
    1e-12, so that a perfect reconstruction has a finite gradient)."""

    def call(self, y_true, y_pred):
        squared = keras.ops.square(y_pred - keras.ops.cast(y_true, y_pred.dtype))
        return keras.ops.sqrt(keras.ops.sum(squared, axis=tuple(range(1, len(squared.shape)))) + 1e-12)


def optimizer(name, steps_per_epoch, epochs, learning_rate, clipnorm=None):
    """SGD with momentum 0.9 and the runner's warm-up + cosine schedule, or Adam with cosine decay.

    ``clipnorm``: clip the gradients to this global norm (``compile_dhrnet``'s default optimizer clips to 5).
    """
    if name == "sgd":
        schedule = warmup_cosine(learning_rate, steps_per_epoch, epochs)
        return keras.optimizers.SGD(schedule, momentum=0.9, global_clipnorm=clipnorm)
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps_per_epoch * epochs)
    return keras.optimizers.Adam(schedule, global_clipnorm=clipnorm)


def run(weight, args, data):
    x, y, x_val, y_val, x_test, y_test, outliers = data
    keras.utils.set_random_seed(args.seed)
    model = build_dhrnet("mnist_cnn", num_classes=10)
    steps_per_epoch = int(np.ceil(len(x) / args.batch_size))
    solver = optimizer(args.optimizer, steps_per_epoch, args.epochs, args.learning_rate, args.clipnorm)
    if args.distance == "euclidean":
        model.compile(
            solver,
            loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  "reconstruction": ImageEuclideanDistance()},
            loss_weights={"logits": 1.0, "reconstruction": weight},
        )
    else:
        compile_dhrnet(model, solver, reconstruction_weight=weight)
    start = time.perf_counter()
    history = model.fit(
        x, dhrnet_targets(x, y, model=model), batch_size=args.batch_size, epochs=args.epochs, verbose=2,
        callbacks=[keras.callbacks.TerminateOnNaN()],
    )
    result = {"weight": weight, "train_s": round(time.perf_counter() - start, 1)}
    losses = history.history["loss"]
    if not np.all(np.isfinite(losses)):
        return {**result, "diverged": True, "epochs_run": len(losses)}
    extractor = inference_model(model)

    def features(images):
        """``{"logits", "latent"}`` of the decoder-free model."""
        return {k: np.asarray(v) for k, v in extractor.predict(images, batch_size=256, verbose=0).items()}

    train = features(x)
    result.update(
        diverged=False,
        final_losses={k: round(float(v[-1]), 4) for k, v in history.history.items()},
        validation_accuracy=round(float(np.mean(features(x_val)["logits"].argmax(1) == y_val)), 4),
        logits_mean_abs=round(float(np.abs(train["logits"]).mean()), 3),
        latent_mean_abs=round(float(np.abs(train["latent"]).mean()), 3),
    )
    known = features(x_test)
    scored = {name: {key: np.concatenate([known[key], value]) for key, value in features(x_out).items()}
              for name, x_out in outliers.items()}  # the known test digits, then the set's outliers
    for head, detector in zip(HEADS, (SoftmaxThreshold(), OpenMax(), CROSR())):
        try:
            detector.fit(train, y)
        except ValueError as error:  # e.g. a classifier left at chance: too few correct digits for a Weibull tail
            result[f"{head}/not_fitted"] = str(error)
            continue
        for name, x_out in outliers.items():
            labels = np.concatenate([y_test, np.full(len(x_out), 10)])
            predictions = predict_open_set(detector.predict_proba(scored[name]), 0.5)
            rates = rejection_rates(labels, predictions, n_classes=10)
            result[f"{head}/{name}"] = {
                "macro_f1": round(float(macro_f1(labels, predictions, n_classes=10)), 3),
                "auroc": round(float(unknown_auroc(labels, detector.decision_function(scored[name]), n_classes=10)), 3),
                "outliers_rejected": round(rates["unknown_rejected"], 3),
                "outliers_in_largest_class": round(rates["unknown_in_largest_class"], 3),
            }
    return result


def markdown(args, results):
    lines = [
        "# Reconstruction-loss weight of the MNIST DHRNet",
        "",
        f"`python benchmarks/bench_reconstruction_weight.py --weights {' '.join(f'{w:g}' for w in args.weights)} "
        f"--optimizer {args.optimizer} --learning-rate {args.learning_rate:g}"
        f"{f' --clipnorm {args.clipnorm:g}' if args.clipnorm else ''}"
        f"{f' --distance {args.distance}' if args.distance != 'mean_squared' else ''} --train {args.train} "
        f"--epochs {args.epochs}` (Keras {keras.__version__}, {keras.backend.backend()}). {args.train} training "
        f"digits, {VALIDATION} held-out training digits for validation, {args.test} test digits and {args.test} "
        "outliers per set. F1 / AUROC are for information: the paper's rule selects the weight by validation "
        "accuracy alone.",
        "",
        "| weight | validation accuracy | mean abs logits / latent | Softmax F1 Omniglot / MNIST-Noise | "
        "OpenMax F1 Omniglot / MNIST-Noise | CROSR F1 Omniglot / MNIST-Noise | CROSR AUROC Omniglot / MNIST-Noise "
        "| train s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["diverged"]:
            diverged = f"diverged (NaN loss in epoch {r['epochs_run']})"
            lines.append(f"| {r['weight']:g} | {diverged} | | | | | | {r['train_s']} |")
            continue
        def column(head, key):
            if f"{head}/not_fitted" in r:
                return "not fitted"
            return " / ".join(f"{r[f'{head}/{o}'][key]:.3f}" for o in OUTLIER_SETS)

        f1 = " | ".join(column(head, "macro_f1") for head in HEADS)
        lines.append(
            f"| {r['weight']:g} | {r['validation_accuracy']:.4f} | {r['logits_mean_abs']:.2f} / "
            f"{r['latent_mean_abs']:.2f} | {f1} | {column('crosr', 'auroc')} | {r['train_s']} |"
        )
    where = [r for r in results if any("outliers_rejected" in v for v in r.values() if isinstance(v, dict))]
    if where:
        columns = [(head, o) for head in HEADS for o in OUTLIER_SETS]
        lines += [
            "",
            "Where the outliers go at threshold 0.5: the share rejected, and the share given to the one known class "
            "that receives the most (outliers that fall into one known class lower the F1 of that class alone, so "
            "macro-F1 is higher the more they concentrate, rejected or not).",
            "",
            "| weight | " + " | ".join(f"{HEADS[h]} {OUTLIER_LABELS[o]}: rejected / largest class" for h, o in columns)
            + " |",
            "|---|" + "---|" * len(columns),
        ]
        for r in where:
            cells = [
                f"{r[f'{h}/{o}']['outliers_rejected']:.3f} / {r[f'{h}/{o}']['outliers_in_largest_class']:.3f}"
                if f"{h}/{o}" in r else "not fitted" for h, o in columns
            ]
            lines.append(f"| {r['weight']:g} | " + " | ".join(cells) + " |")
    unfitted = [f"- weight {r['weight']:g}, {k.split('/')[0]}: {v}"
                for r in results for k, v in r.items() if k.endswith("/not_fitted")]
    if unfitted:
        lines += ["", "Heads not fitted:", "", *unfitted]
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd")
    parser.add_argument("--learning-rate", type=float, default=None, help="default: 0.05 (SGD), 0.001 (Adam)")
    parser.add_argument("--clipnorm", type=float, default=None, help="clip gradients to this global norm")
    parser.add_argument("--distance", choices=("mean_squared", "euclidean"), default="mean_squared",
                        help="reconstruction loss of each image: the per-pixel mean of squares (the package's), or "
                             "the Euclidean distance ||x - x~||_2")
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--test", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="local data root (default: $KERAS_CROSR_DATA)")
    parser.add_argument("--output", default=None, help="path stem (default: results/reconstruction_weight_OPTIMIZER)")
    args = parser.parse_args()
    if args.learning_rate is None:
        args.learning_rate = 0.05 if args.optimizer == "sgd" else 1e-3
    if args.train + VALIDATION > 60000:
        parser.error(f"--train must leave {VALIDATION} of the 60,000 training digits for validation")

    x, y = load_mnist("train", data_dir=args.data_dir)
    order = np.random.default_rng(args.seed).permutation(len(x))
    train, val = order[: args.train], order[-VALIDATION:]
    x_test, y_test = load_mnist("test", data_dir=args.data_dir)
    outliers = {name: load(data_dir=args.data_dir)[: args.test] for name, load in OUTLIER_SETS.items()}
    data = (x[train], y[train], x[val], y[val], x_test[: args.test], y_test[: args.test], outliers)

    results = []
    for weight in args.weights:
        print(f"--- reconstruction weight {weight:g} ({args.optimizer}, learning rate {args.learning_rate:g})",
              flush=True)
        results.append(run(weight, args, data))
        print(json.dumps(results[-1]), flush=True)
    output = Path(args.output or REPO_ROOT / "benchmarks" / "results" / f"reconstruction_weight_{args.optimizer}")
    output.parent.mkdir(parents=True, exist_ok=True)
    record = {"args": vars(args), "keras": keras.__version__, "backend": keras.backend.backend(), "results": results}
    output.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    output.with_suffix(".md").write_text(markdown(args, results))
    print(markdown(args, results))


if __name__ == "__main__":
    main()
