"""Subprocess of tests/test_distribute.py: trains a small DHRNet on one device and distributed, writes JSON.

Device layouts must be fixed before TensorFlow / JAX initialise, so each layout runs in its own process:

    python tests/_distribute_worker.py mirrored OUT.json     # TF: one device, then MirroredStrategy on 2 CPUs
    python tests/_distribute_worker.py multiworker OUT.json  # TF: one MultiWorkerMirroredStrategy worker (TF_CONFIG)
    python tests/_distribute_worker.py jax OUT.json          # JAX: one device, then DataParallel on 2 CPUs

Every run trains the same model from the same seed on the same global batches, fits a CROSR head through the
``OpenSetHead`` callback and extracts the features again with ``distributed_features`` (sharded).
"""

import contextlib
import json
import os
import sys

MODE, OUT = sys.argv[1], sys.argv[2]
os.environ["KERAS_BACKEND"] = "jax" if MODE == "jax" else "tensorflow"
if MODE == "jax":
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

from keras_crosr import CROSR, OpenSetHead, build_dhrnet, compile_dhrnet  # noqa: E402
from keras_crosr.datasets.embedded import load_sample  # noqa: E402
from keras_crosr.distribute import distributed_dataset, distributed_features  # noqa: E402

N_TRAIN, GLOBAL_BATCH, EPOCHS, SEED = 320, 32, 4, 3


def tiny_stages():
    return [
        keras.Sequential([layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
        keras.Sequential([layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
    ]


def train(x, y, x_test, scope, dropout):
    """Trains from seed 7; returns the losses, the fitted head and the features (callback's and sharded)."""
    keras.utils.set_random_seed(7)
    with scope:
        model = build_dhrnet(tiny_stages(), num_classes=10, input_shape=(28, 28, 1), latent_dim=4, dropout=dropout)
        compile_dhrnet(model, optimizer=keras.optimizers.Adam(3e-3))
    dataset, steps = distributed_dataset(x, y, GLOBAL_BATCH, seed=SEED)
    head = OpenSetHead((x, y), detector=CROSR(tail_size=3), batch_size=50, verbose=0)
    history = model.fit(dataset, epochs=EPOCHS, steps_per_epoch=steps, verbose=0, callbacks=[head])
    sharded = distributed_features(model, x[:301], batch_size=50)  # 301 rows: the last batch is padded
    local = head.inference_model_.predict_on_batch(x[:301])
    return {
        "loss": history.history["loss"],
        "means": head.detector_.means_.tolist(),
        "weibull_scale": np.asarray(head.detector_.weibull_.scale).tolist(),
        "predict": head.predict(x_test).tolist(),
        "sharded_vs_local": max(float(np.abs(sharded[k] - local[k]).max()) for k in ("logits", "latent")),
        "head_replicas": head_replicas(head),
        **kernel_placement(model.trainable_variables[0]),
    }


def head_replicas(head):
    """TensorFlow only: over how many replicas the head's predict* run (0 under JAX)."""
    strategy = getattr(head._sharded_model, "distribute_strategy", None)
    return 0 if strategy is None else strategy.num_replicas_in_sync


def kernel_placement(variable):
    """JAX only: over how many devices a variable lives and whether each holds all of it (empty under TF)."""
    sharding = getattr(variable.value, "sharding", None)
    if MODE != "jax" or sharding is None:
        return {}
    return {"kernel_devices": len(sharding.device_set), "kernel_replicated": bool(sharding.is_fully_replicated)}


def main():
    sample = load_sample()
    x, y = sample["x_train"][:N_TRAIN], sample["y_train"][:N_TRAIN]
    x_test = np.concatenate([sample["x_test"][:50], sample["omniglot"][:50]])
    result = {}
    if MODE == "jax":
        import jax

        result["devices"] = len(jax.devices())
        result["one_device"] = train(x, y, x_test, contextlib.nullcontext(), dropout=0.25)
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        result["distributed"] = train(x, y, x_test, contextlib.nullcontext(), dropout=0.25)
    else:
        import tensorflow as tf

        if MODE == "mirrored":
            cpu = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
            strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
            result["one_device"] = train(x, y, x_test, contextlib.nullcontext(), dropout=0.0)
        else:
            from keras_crosr.distribute import multi_worker_mirrored_strategy

            options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=120)
            strategy = multi_worker_mirrored_strategy(communication_options=options)
        result["replicas"] = strategy.num_replicas_in_sync
        result["distributed"] = train(x, y, x_test, strategy.scope(), dropout=0.0)
    with open(OUT, "w") as file:
        json.dump(result, file)


if __name__ == "__main__":
    main()
