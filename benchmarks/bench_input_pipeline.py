"""Is the input pipeline the bottleneck? Decoded CIFAR-10 images/s against DHRNet training images/s, in one run.

Measured on the same machine, in one process (TensorFlow backend):

* numpy / Pillow loader: ``load_cifar10("train", indices=...)``, one thread, JPEG -> float32 array.
* ``tf.data`` pipeline, first epoch: ``cifar10_tf_dataset(..., shuffle=True, cache=False)``: parallel
  ``tf.io.decode_jpeg`` (``num_parallel_calls=AUTOTUNE``), batching, float32 scaling, prefetching; every image decoded.
* ``tf.data`` pipeline, cached epoch: the same with ``cache=True``, second pass (decoded images read from memory).
* training steps of the ``cifar_cnn`` DHRNet (the paper's CIFAR-10 plain CNN, 32x32x3, batch 128) on one batch held
  in memory: the speed the model could train at if input were free.
* ``model.fit`` fed by the uncached pipeline: the speed it does train at with parallel decoding.

The pipeline is not the bottleneck when its images/s exceed the training images/s (ratio > 1) and ``fit`` on the
pipeline runs at about the in-memory speed.

Run: ``python benchmarks/bench_input_pipeline.py [--images 10000 --steps 30 --data-dir ../shared/data]``; writes
``input_pipeline.{json,md}`` into ``--output-dir`` (default ``benchmarks/results``).
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_crosr import build_dhrnet, compile_dhrnet, dhrnet_targets  # noqa: E402
from keras_crosr.datasets import load_cifar10  # noqa: E402
from keras_crosr.datasets.jpeg_pipeline import cifar10_tf_dataset  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def timed(function):
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def drain(dataset):
    """Iterates a dataset to the end; returns the number of images."""
    return sum(int(x.shape[0]) for x, _ in dataset)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10000, help="CIFAR-10 training images to decode")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps (after 5 warm-up steps)")
    parser.add_argument("--data-dir", default=os.environ.get("KERAS_CROSR_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--output-dir", type=Path, default=RESULTS,
                        help="directory for input_pipeline.{json,md} (default: benchmarks/results)")
    args = parser.parse_args()
    import tensorflow as tf

    indices = np.linspace(0, 49999, args.images).astype(np.int64)
    options = dict(indices=indices, batch_size=args.batch_size, data_dir=args.data_dir)

    pillow_s, (x, y) = timed(lambda: load_cifar10("train", indices=indices, data_dir=args.data_dir))
    uncached = cifar10_tf_dataset("train", shuffle=True, seed=0, cache=False, **options)
    tf_data_s, decoded = timed(lambda: drain(uncached))
    cached = cifar10_tf_dataset("train", shuffle=True, seed=0, cache=True, **options)
    drain(cached)  # fills the cache
    cached_s, _ = timed(lambda: drain(cached))

    keras.utils.set_random_seed(0)
    model = compile_dhrnet(build_dhrnet("cifar_cnn", num_classes=10))
    batch = args.batch_size
    in_memory = tf.data.Dataset.from_tensors((x[:batch], dhrnet_targets(x[:batch], y[:batch]))).repeat()
    model.fit(in_memory, epochs=1, steps_per_epoch=5, verbose=0)  # trace and warm up
    train_s, _ = timed(lambda: model.fit(in_memory, epochs=1, steps_per_epoch=args.steps, verbose=0))
    fed = cifar10_tf_dataset("train", shuffle=True, seed=0, cache=False, repeat=True, targets="dhrnet", **options)
    model.fit(fed, epochs=1, steps_per_epoch=5, verbose=0)
    fed_s, _ = timed(lambda: model.fit(fed, epochs=1, steps_per_epoch=args.steps, verbose=0))

    rates = {
        "pillow_loader": len(x) / pillow_s,
        "tf_data_decode": decoded / tf_data_s,
        "tf_data_cached": decoded / cached_s,
        "train_step_in_memory": args.steps * batch / train_s,
        "fit_on_tf_data": args.steps * batch / fed_s,
    }
    result = {
        "setup": {
            "images": int(decoded),
            "batch_size": batch,
            "timed_steps": args.steps,
            "model": "build_dhrnet('cifar_cnn', num_classes=10), SGD, float32",
            "backend": keras.backend.backend(),
            "tensorflow": tf.__version__,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "machine": platform.machine(),
        },
        "images_per_s": rates,
        "ratios": {
            "tf_data_vs_pillow": rates["tf_data_decode"] / rates["pillow_loader"],
            "tf_data_decode_vs_training": rates["tf_data_decode"] / rates["train_step_in_memory"],
            "fit_on_tf_data_vs_in_memory": rates["fit_on_tf_data"] / rates["train_step_in_memory"],
        },
    }
    result["pipeline_is_bottleneck"] = bool(result["ratios"]["tf_data_decode_vs_training"] < 1.0)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "input_pipeline.json").write_text(json.dumps(result, indent=2) + "\n")
    labels = {
        "pillow_loader": "numpy / Pillow loader (`load_cifar10`), decode to float32",
        "tf_data_decode": "tf.data, parallel `tf.io.decode_jpeg`, first (uncached) epoch",
        "tf_data_cached": "tf.data, cached epoch",
        "train_step_in_memory": "training steps, `cifar_cnn` DHRNet, batch in memory",
        "fit_on_tf_data": "`model.fit` fed by the uncached tf.data pipeline",
    }
    ratios = result["ratios"]
    lines = [
        "# Input pipeline vs training throughput (CIFAR-10 JPEG archive, `cifar_cnn` DHRNet)",
        "",
        f"`python benchmarks/bench_input_pipeline.py --images {args.images} --steps {args.steps}` (one run, "
        f"{os.cpu_count()} CPU cores, TensorFlow {tf.__version__}, batch {batch}).",
        "",
        "| what | images/s |",
        "|---|---:|",
        *[f"| {labels[key]} | {rate:,.0f} |" for key, rate in rates.items()],
        "",
        f"- tf.data decoding vs the Pillow loader: {ratios['tf_data_vs_pillow']:.1f}x.",
        f"- tf.data decoding vs training: {ratios['tf_data_decode_vs_training']:.1f}x "
        f"({'the pipeline IS' if result['pipeline_is_bottleneck'] else 'the pipeline is not'} the bottleneck).",
        f"- `fit` on the pipeline vs on an in-memory batch: {ratios['fit_on_tf_data_vs_in_memory']:.2f}x.",
        "",
    ]
    (args.output_dir / "input_pipeline.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
