"""Speed of DHRNet against the supervised-only network on the same backbone, measured in one run.

- training throughput: DHRNet (joint loss, decoder) vs supervised-only (classification loss); goal <= 1.5x slower;
- inference: the decoder-free DHRNet (``inference_model``: logits + latent) vs supervised-only, at batch 1 and at
  batch 256; goal <= 1.15x slower.

The two models are timed call by call in alternation (A, B, A, B, ...) and the median call time is kept (the
minimum is reported too), so that load from other processes on the machine falls on both alike. Writes
``benchmarks/results/dhrnet_speed.{json,md}``.

    python benchmarks/bench_dhrnet_speed.py                 # MNIST plain CNN, a few minutes on 2 CPU cores
    KERAS_BACKEND=jax python benchmarks/bench_dhrnet_speed.py --train-steps 100 --infer256-steps 100
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_crosr.dhrnet import build_dhrnet, compile_dhrnet, dhrnet_targets, inference_model  # noqa: E402

TRAIN_GOAL = 1.5
INFERENCE_GOAL = 1.15


def device_description():
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return ", ".join(sorted({str(d.device_kind) for d in jax.devices()}))
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"{len(gpus)} GPU(s)" if gpus else f"CPU ({os.cpu_count()} cores visible)"
    return backend


def alternating(calls, repeats):
    """Times each ``name -> call`` once per repeat, in alternation; returns ``{name: (median_s, min_s)}``."""
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(values), min(values)) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="mnist_cnn", help="image backbone name (default: mnist_cnn)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--train-steps", type=int, default=15, help="timed train steps per model")
    parser.add_argument("--infer-steps", type=int, default=200, help="timed batch-1 predict calls per model")
    parser.add_argument("--infer256-steps", type=int, default=15, help="timed batch-256 predict calls per model")
    parser.add_argument("--output-dir", default=str(REPO_ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)

    keras.utils.set_random_seed(0)
    dhrnet = compile_dhrnet(build_dhrnet(args.backbone, num_classes=args.num_classes))
    supervised = compile_dhrnet(build_dhrnet(args.backbone, num_classes=args.num_classes, variant="supervised"))
    decoder_free = inference_model(dhrnet)
    shape = tuple(dhrnet.inputs[0].shape[1:])
    rng = np.random.default_rng(0)
    x = rng.random((args.train_batch,) + shape, dtype=np.float32)
    y = rng.integers(0, args.num_classes, args.train_batch)
    dhrnet_y, supervised_y = dhrnet_targets(x, y, model=dhrnet), dhrnet_targets(x, y, model=supervised)
    x1 = x[:1]
    x256 = rng.random((256,) + shape, dtype=np.float32)

    train = {
        "dhrnet": lambda: dhrnet.train_on_batch(x, dhrnet_y),
        "supervised": lambda: supervised.train_on_batch(x, supervised_y),
    }
    infer1 = {
        "dhrnet": lambda: decoder_free.predict_on_batch(x1),
        "supervised": lambda: supervised.predict_on_batch(x1),
    }
    infer256 = {
        "dhrnet": lambda: decoder_free.predict_on_batch(x256),
        "supervised": lambda: supervised.predict_on_batch(x256),
    }
    for calls in (train, infer1, infer256):  # compile and warm up
        alternating(calls, repeats=2)

    started = time.time()
    timings = {
        "train": alternating(train, args.train_steps),
        "inference_batch1": alternating(infer1, args.infer_steps),
        "inference_batch256": alternating(infer256, args.infer256_steps),
    }
    train_s, infer1_s, infer256_s = ({k: v[0] for k, v in timings[m].items()} for m in timings)
    ratios = {m: t["dhrnet"][0] / t["supervised"][0] for m, t in timings.items()}
    ratios_of_minimum = {m: t["dhrnet"][1] / t["supervised"][1] for m, t in timings.items()}
    result = {
        "benchmark": "dhrnet_speed",
        "command": "python benchmarks/bench_dhrnet_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "device": device_description(),
        "platform": platform.platform(),
        "backbone": args.backbone,
        "settings": vars(args),
        "params": {
            "dhrnet": dhrnet.count_params(),
            "supervised": supervised.count_params(),
            "dhrnet_inference": decoder_free.count_params(),
        },
        "train_images_per_s": {k: args.train_batch / v for k, v in train_s.items()},
        "inference_ms_batch1": {k: 1e3 * v for k, v in infer1_s.items()},
        "inference_ms_batch256": {k: 1e3 * v for k, v in infer256_s.items()},
        "ratios_dhrnet_over_supervised": ratios,
        "ratios_of_minimum_times": ratios_of_minimum,
        "goals": {"train": TRAIN_GOAL, "inference_batch1": INFERENCE_GOAL, "inference_batch256": INFERENCE_GOAL},
        "meets_goals": {k: ratios[k] <= g for k, g in (("train", TRAIN_GOAL), ("inference_batch1", INFERENCE_GOAL),
                                                         ("inference_batch256", INFERENCE_GOAL))},
        "timed_seconds": time.time() - started,
    }

    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "dhrnet_speed.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# DHRNet speed vs supervised-only",
        "",
        f"`{result['command'].strip()}` — backend {result['backend']}, Keras {result['keras']}, {result['device']}, "
        f"backbone `{args.backbone}`; median call times, the two models timed call by call in alternation "
        f"({args.train_steps} train steps, {args.infer_steps} / {args.infer256_steps} predict calls each).",
        "",
        "| measure | DHRNet | supervised | ratio (DHRNet / supervised) | goal |",
        "|---|---|---|---|---|",
        f"| training, images/s (batch {args.train_batch}; ratio = time per step) | "
        f"{result['train_images_per_s']['dhrnet']:.1f} | {result['train_images_per_s']['supervised']:.1f} | "
        f"{ratios['train']:.3f} | <= {TRAIN_GOAL} |",
        f"| inference, ms per batch of 1 (decoder-free) | {result['inference_ms_batch1']['dhrnet']:.2f} | "
        f"{result['inference_ms_batch1']['supervised']:.2f} | {ratios['inference_batch1']:.3f} | <= {INFERENCE_GOAL} |",
        f"| inference, ms per batch of 256 (decoder-free) | {result['inference_ms_batch256']['dhrnet']:.1f} | "
        f"{result['inference_ms_batch256']['supervised']:.1f} | {ratios['inference_batch256']:.3f} | "
        f"<= {INFERENCE_GOAL} |",
        "",
        "Ratios of the minimum call times: "
        + ", ".join(f"{k} {v:.3f}" for k, v in ratios_of_minimum.items())
        + ".",
        "",
        f"Parameters: DHRNet {result['params']['dhrnet']:,} (decoder-free {result['params']['dhrnet_inference']:,}), "
        f"supervised {result['params']['supervised']:,}.",
        "",
    ]
    (out_dir / "dhrnet_speed.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
