"""Speed of DHRNet against the supervised-only network on the same backbone, measured in one run.

- training throughput: DHRNet (joint loss, decoder) vs supervised-only (classification loss); goal <= 1.5x slower;
- inference: the decoder-free DHRNet (``inference_model``: logits + latent) vs supervised-only, at batch 1 and at
  batch 256; goal <= 1.15x slower.

Both models are timed in alternating rounds (A, B, A, B, ...) and the median round is kept, so that load from other
processes on the machine falls on both alike. Writes ``benchmarks/results/dhrnet_speed.{json,md}``.

    python benchmarks/bench_dhrnet_speed.py                 # MNIST plain CNN, ~2 minutes on 2 CPU cores
    KERAS_BACKEND=jax python benchmarks/bench_dhrnet_speed.py --train-steps 50 --infer-steps 200
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


def timed_rounds(steps_by_name, rounds):
    """Runs each ``name -> (step, n)`` callable ``n`` times per round, rounds interleaved; median s/step."""
    times = {name: [] for name in steps_by_name}
    for _ in range(rounds):
        for name, (step, n) in steps_by_name.items():
            start = time.perf_counter()
            for _ in range(n):
                step()
            times[name].append((time.perf_counter() - start) / n)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default="mnist_cnn", help="image backbone name (default: mnist_cnn)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--train-batch", type=int, default=128)
    parser.add_argument("--train-steps", type=int, default=8, help="train steps per round and model")
    parser.add_argument("--infer-steps", type=int, default=40, help="batch-1 predict calls per round and model")
    parser.add_argument("--rounds", type=int, default=5)
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
        "dhrnet": (lambda: dhrnet.train_on_batch(x, dhrnet_y), args.train_steps),
        "supervised": (lambda: supervised.train_on_batch(x, supervised_y), args.train_steps),
    }
    infer1 = {
        "dhrnet": (lambda: decoder_free.predict_on_batch(x1), args.infer_steps),
        "supervised": (lambda: supervised.predict_on_batch(x1), args.infer_steps),
    }
    infer256 = {
        "dhrnet": (lambda: decoder_free.predict_on_batch(x256), max(2, args.infer_steps // 10)),
        "supervised": (lambda: supervised.predict_on_batch(x256), max(2, args.infer_steps // 10)),
    }
    for steps in (train, infer1, infer256):  # compile and warm up
        timed_rounds(steps, rounds=1)

    started = time.time()
    train_s = timed_rounds(train, args.rounds)
    infer1_s = timed_rounds(infer1, args.rounds)
    infer256_s = timed_rounds(infer256, args.rounds)
    ratios = {
        "train": train_s["dhrnet"] / train_s["supervised"],
        "inference_batch1": infer1_s["dhrnet"] / infer1_s["supervised"],
        "inference_batch256": infer256_s["dhrnet"] / infer256_s["supervised"],
    }
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
        f"backbone `{args.backbone}`; median of {args.rounds} interleaved rounds.",
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
        f"Parameters: DHRNet {result['params']['dhrnet']:,} (decoder-free {result['params']['dhrnet_inference']:,}), "
        f"supervised {result['params']['supervised']:,}.",
        "",
    ]
    (out_dir / "dhrnet_speed.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return result


if __name__ == "__main__":
    main()
