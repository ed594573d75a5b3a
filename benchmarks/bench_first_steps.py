"""The first SGD steps of a full-size DHRNet: where the unclipped decoder diverges, and what clipping does.

Trains a network of the runner's recipe (SGD, momentum 0.9, batch 128, dropout 0.2, loss weights 1.0) for a
few steps on the whole training set, at each learning rate with the gradients unclipped and clipped to each
global norm, and records every step's losses (``train_on_batch``: the loss of that step's batch, before the
update). A run stops at its first NaN or inf loss. ``--schedule constant`` holds the learning rate from the
first step (the hardest case); ``runner`` uses the runner's warm-up and cosine schedule over ``--epochs``.
The same seed draws the same initial weights and batches in every run. Writes
``benchmarks/results/first_steps_BACKBONE_VARIANT.{json,md}``.

    KERAS_BACKEND=jax python benchmarks/bench_first_steps.py --data-dir ../shared/data   # 5-8 s a step, 2 CPU cores
"""

import argparse
import itertools
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_crosr.datasets import load_cifar10, load_mnist  # noqa: E402
from keras_crosr.dhrnet import build_dhrnet, compile_dhrnet, dhrnet_targets  # noqa: E402
from keras_crosr.experiments import Training, warmup_cosine  # noqa: E402

LOADERS = {"cifar10": load_cifar10, "mnist": load_mnist}
RECIPE = Training(epochs=1)  # the runner's defaults: momentum, dropout, loss weights
MARKED_STEPS = (1, 5, 10, 20)


def run(x, y, learning_rate, clipnorm, args):
    """One network's per-step losses (``loss``, ``logits_loss``, ``reconstruction_loss``: lists, ``None`` for a
    NaN or inf), up to ``args.steps`` steps or the first non-finite loss (its step: ``diverged_at_step``)."""
    keras.utils.set_random_seed(args.seed)
    model = build_dhrnet(args.backbone, num_classes=int(y.max()) + 1, input_shape=x.shape[1:],
                         variant=args.variant, dropout=RECIPE.dropout)
    steps_per_epoch = math.ceil(len(x) / args.batch_size)
    schedule = learning_rate
    if args.schedule == "runner":
        schedule = warmup_cosine(learning_rate, steps_per_epoch, args.epochs)
    compile_dhrnet(model, keras.optimizers.SGD(schedule, momentum=RECIPE.momentum, global_clipnorm=clipnorm),
                   classification_weight=RECIPE.classification_weight,
                   reconstruction_weight=RECIPE.reconstruction_weight)
    order = np.random.default_rng(args.seed).permutation(len(x))
    losses = {"loss": [], "logits_loss": [], "reconstruction_loss": []}
    start = time.perf_counter()
    for step in range(args.steps):
        batch = order[step * args.batch_size: (step + 1) * args.batch_size]
        logs = model.train_on_batch(x[batch], dhrnet_targets(x[batch], y[batch], model=model), return_dict=True)
        for key, values in losses.items():
            value = float(logs[key])
            values.append(value if math.isfinite(value) else None)
        if losses["loss"][-1] is None:
            break
    steps = len(losses["loss"])
    return {"learning_rate": learning_rate, "clipnorm": clipnorm,
            "diverged_at_step": steps if losses["loss"][-1] is None else None, **losses,
            "seconds_per_step": round((time.perf_counter() - start) / steps, 2)}


def _loss(values, step):
    if step > len(values):
        return "–"
    return "NaN/inf" if values[step - 1] is None else f"{values[step - 1]:.3f}"


def markdown(record):
    settings = record["settings"]
    lines = [
        f"## The first SGD steps of the {settings['backbone']} {settings['variant']} on {settings['dataset']} "
        f"({settings['train_samples']} images)",
        "",
        f"`{record['command']}`",
        "",
        f"Keras {record['keras']} on {record['backend']}; seed {settings['seed']}, batch {settings['batch_size']}, "
        f"{settings['steps']} steps at most, learning rate "
        + ("constant from the first step." if settings["schedule"] == "constant" else
           f"of the runner's warm-up and cosine schedule over {settings['epochs']} epochs."),
        "Each step's loss is that of its batch before the update (classification + reconstruction).",
        "",
        "| learning rate | clipnorm | first non-finite step | " + " | ".join(f"loss, step {s}" for s in MARKED_STEPS)
        + " | last step: classification / reconstruction | s per step |",
        "|---|---|---|" + "---|" * len(MARKED_STEPS) + "---|---|",
    ]
    for r in record["runs"]:
        last = len(r["loss"])
        parts = f"{_loss(r['logits_loss'], last)} / {_loss(r['reconstruction_loss'], last)}"
        lines.append(
            f"| {r['learning_rate']} | {'none' if r['clipnorm'] is None else r['clipnorm']} | "
            f"{r['diverged_at_step'] or 'none'} | " + " | ".join(_loss(r["loss"], s) for s in MARKED_STEPS)
            + f" | {last}: {parts} | {r['seconds_per_step']} |"
        )
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="cifar_cnn")
    parser.add_argument("--dataset", choices=sorted(LOADERS), default="cifar10")
    parser.add_argument("--variant", choices=("dhrnet", "laddernet"), default="dhrnet")
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[0.05, 0.02])
    parser.add_argument("--clipnorms", nargs="+", default=["none", "5"], help="global norms; 'none': unclipped")
    parser.add_argument("--schedule", choices=("constant", "runner"), default="constant")
    parser.add_argument("--epochs", type=int, default=60, help="the runner schedule's length (--schedule runner)")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None, help="local data root (default: $KERAS_CROSR_DATA)")
    parser.add_argument("--output", default=None, help="path stem (default: results/first_steps_BACKBONE_VARIANT)")
    args = parser.parse_args()
    try:
        clipnorms = [None if c == "none" else float(c) for c in args.clipnorms]
    except ValueError:
        parser.error(f"--clipnorms takes numbers or 'none'; got {args.clipnorms}")
    if args.steps < 1 or args.batch_size < 1:
        parser.error("--steps and --batch-size must be at least 1")

    x, y = LOADERS[args.dataset]("train", source="local" if args.data_dir else "auto", data_dir=args.data_dir)
    if args.steps * args.batch_size > len(x):
        parser.error(f"{args.steps} steps of {args.batch_size} need more than the {len(x)} training images")
    runs = []
    for learning_rate, clipnorm in itertools.product(args.learning_rates, clipnorms):
        runs.append(run(x, y, learning_rate, clipnorm, args))
        print(f"lr {learning_rate} clipnorm {clipnorm}: {len(runs[-1]['loss'])} steps, "
              f"diverged at step {runs[-1]['diverged_at_step']}", flush=True)
    record = {
        "command": "python benchmarks/bench_first_steps.py " + " ".join(sys.argv[1:]),
        "keras": keras.__version__, "backend": keras.backend.backend(),
        "settings": {"backbone": args.backbone, "dataset": args.dataset, "variant": args.variant,
                     "train_samples": int(len(x)), "schedule": args.schedule, "epochs": args.epochs,
                     "steps": args.steps, "batch_size": args.batch_size, "seed": args.seed},
        "runs": runs,
    }
    output = Path(args.output or REPO_ROOT / "benchmarks" / "results" / f"first_steps_{args.backbone}_{args.variant}")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    output.with_suffix(".md").write_text(markdown(record))
    print(markdown(record))


if __name__ == "__main__":
    main()
