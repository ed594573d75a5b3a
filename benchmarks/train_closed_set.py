"""Closed-set accuracy of the MNIST plain CNN (paper Table 1): supervised-only, LadderNet and DHRNet.

Trains on the full MNIST training set (60,000 images) with SGD + momentum and a step learning-rate schedule (the
paper: "SGD solver with learning-rate scheduling", both loss weights 1.0), then reports the test accuracy of the
logits on the 10,000 test images. NumPy arrays go straight into ``model.fit`` (no ``tf.data``), so the script runs
on the JAX backend without TensorFlow installed.

    python benchmarks/train_closed_set.py --data ../shared/data/mnist.npz --variants dhrnet supervised
    KERAS_BACKEND=jax python benchmarks/train_closed_set.py --data mnist.npz --variants dhrnet laddernet supervised
    python benchmarks/train_closed_set.py --epochs 1 --limit 2000 --output-dir /tmp/check   # quick check

Results are merged by variant into ``<output-dir>/closed_set_mnist.{json,md}`` (default ``benchmarks/results``).
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_crosr.dhrnet import VARIANTS, build_dhrnet, compile_dhrnet, dhrnet_targets, inference_model  # noqa: E402

PAPER_TABLE1 = {"supervised": 0.991, "laddernet": 0.993, "dhrnet": 0.992}


def default_data_path():
    root = os.environ.get("KERAS_CROSR_DATA") or str(REPO_ROOT.parent / "shared" / "data")
    return str(Path(root) / "mnist.npz")


def load_mnist(path, limit=None):
    """MNIST from an ``.npz`` with ``x_train (n, 28, 28[, 1]) uint8``, ``y_train``, ``x_test``, ``y_test``."""
    if not Path(path).is_file():
        raise SystemExit(f"MNIST archive not found: {path} (pass --data PATH or set KERAS_CROSR_DATA)")
    with np.load(path) as data:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(data.files)
        if missing:
            raise SystemExit(f"{path} lacks the arrays {sorted(missing)}")
        arrays = [data[key] for key in ("x_train", "y_train", "x_test", "y_test")]
    x_train, y_train, x_test, y_test = arrays
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    images = [x.reshape(x.shape[:3] + (1,)).astype("float32") / 255.0 for x in (x_train, x_test)]
    return images[0], y_train.astype("int64"), images[1], y_test.astype("int64")


def accuracy(model, x, y, batch_size):
    logits = inference_model(model).predict(x, batch_size=batch_size, verbose=0)["logits"]
    return float(np.mean(np.argmax(logits, axis=-1) == y))


class TestAccuracy(keras.callbacks.Callback):
    """Records the closed-set test accuracy after every epoch (no dropout, decoder not run)."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        self.history.append(accuracy(self.model, self.x, self.y, self.batch_size))
        print(f"  epoch {epoch + 1}: test accuracy {self.history[-1]:.4f}", flush=True)


def train_one(variant, data, args):
    x_train, y_train, x_test, y_test = data
    keras.utils.set_random_seed(args.seed)
    model = build_dhrnet("mnist_cnn", num_classes=10, variant=variant, dropout=args.dropout)
    steps_per_epoch = int(np.ceil(len(x_train) / args.batch_size))
    boundaries = [int(steps_per_epoch * args.epochs * f) for f in (0.5, 0.75)]
    schedule = keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, [args.lr, args.lr * 0.1, args.lr * 0.01]
    )
    optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=0.9, weight_decay=args.weight_decay or None)
    compile_dhrnet(model, optimizer=optimizer)
    callback = TestAccuracy(x_test, y_test, args.eval_batch_size)
    started = time.time()
    history = model.fit(
        x_train,
        dhrnet_targets(x_train, y_train, model=model),
        batch_size=args.batch_size,
        epochs=args.epochs,
        shuffle=True,
        callbacks=[callback],
        verbose=2,
    )
    wall = time.time() - started
    test_accuracy = accuracy(model, x_test, y_test, args.eval_batch_size)
    return {
        "variant": variant,
        "test_accuracy": test_accuracy,
        "paper_table1": PAPER_TABLE1[variant],
        "epochs": args.epochs,
        "train_images": int(len(x_train)),
        "wall_time_s": round(wall, 1),
        "s_per_epoch": round(wall / args.epochs, 2),
        "test_accuracy_per_epoch": callback.history,
        "final_train_loss": float(history.history["loss"][-1]),
        "params": model.count_params(),
    }


def write_results(runs, args, argv):
    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "closed_set_mnist.json"
    previous = json.loads(path.read_text()) if path.is_file() else {"runs": {}}
    context = {
        "command": "python benchmarks/train_closed_set.py " + " ".join(argv),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "platform": platform.platform(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("variants", "output_dir")},
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for run in runs:
        previous["runs"][run["variant"]] = dict(run, **context)
    path.write_text(json.dumps(previous, indent=2) + "\n")
    lines = [
        "# Closed-set accuracy, MNIST plain CNN (paper Table 1)",
        "",
        "| variant | test accuracy | paper | epochs | train images | wall time (s) | backend | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        if variant in previous["runs"]:
            r = previous["runs"][variant]
            lines.append(
                f"| {variant} | {r['test_accuracy']:.4f} | {r['paper_table1']} | {r['epochs']} | {r['train_images']} | "
                f"{r['wall_time_s']} | {r['backend']} | `{r['command'].strip()}` |"
            )
    (out_dir / "closed_set_mnist.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=default_data_path(), help="mnist.npz (default: $KERAS_CROSR_DATA/mnist.npz)")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["dhrnet", "supervised"])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-batch-size", type=int, default=1000)
    parser.add_argument("--lr", type=float, default=0.02, help="initial learning rate, x0.1 at 50%% and 75%%")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.25)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N training images (checks)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mixed-precision", action="store_true", help="mixed_float16 policy (GPUs)")
    parser.add_argument("--output-dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    data = load_mnist(args.data, args.limit)
    print(f"backend {keras.backend.backend()}, {len(data[0])} train / {len(data[2])} test images", flush=True)
    runs = []
    for variant in args.variants:
        print(f"== {variant}", flush=True)
        runs.append(train_one(variant, data, args))
        print(f"== {variant}: test accuracy {runs[-1]['test_accuracy']:.4f} in {runs[-1]['wall_time_s']} s", flush=True)
        write_results(runs[-1:], args, argv)  # after each variant, so that finished runs are kept
    return runs


if __name__ == "__main__":
    main()
