"""Distributed training (MirroredStrategy, MultiWorkerMirroredStrategy, JAX DataParallel), the JPEG tf.data
pipelines and mixed precision.

The device layouts (two logical CPUs, two loopback workers, two JAX host devices) must be set before TensorFlow or
JAX initialise, so they run in subprocesses (tests/_distribute_worker.py), all started at once by one fixture.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_crosr import CROSR, OpenSetHead, build_dhrnet, build_open_set_model, compile_dhrnet, dhrnet_targets
from keras_crosr.datasets import load_cifar10, load_tinyimagenet
from keras_crosr.datasets._source import DatasetNotFoundError
from keras_crosr.datasets.embedded import load_sample
from keras_crosr.datasets.jpeg_pipeline import cifar10_tf_dataset, jpeg_archive_dataset, tinyimagenet_tf_dataset
from keras_crosr.distribute import distributed_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER = REPO_ROOT / "tests" / "_distribute_worker.py"
TIMEOUT_S = 300


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Starts the mirrored, the two multi-worker and the JAX subprocesses together; returns their JSON results."""
    folder = tmp_path_factory.mktemp("distribute")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    jobs = {"mirrored": env}
    if importlib.util.find_spec("jax") is not None:
        jobs["jax"] = env
    for index in range(2):
        task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        jobs[f"worker{index}"] = dict(env, TF_CONFIG=json.dumps(task))
    processes = {}
    for name, job_env in jobs.items():
        mode = "multiworker" if name.startswith("worker") else name
        command = [sys.executable, str(WORKER), mode, str(folder / f"{name}.json")]
        processes[name] = subprocess.Popen(
            command, env=job_env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    results = {}
    deadline = time.monotonic() + TIMEOUT_S  # they run together: one deadline for all
    try:
        for name, process in processes.items():
            try:
                output, _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
                results[name] = RuntimeError(
                    f"{name} did not finish within {TIMEOUT_S} s (all subprocesses run together; a loaded machine "
                    f"or a hung multi-worker handshake); killed. Its last output:\n{output[-4000:]}"
                )
                continue
            if process.returncode:
                results[name] = RuntimeError(f"{name} exited with {process.returncode}:\n{output[-4000:]}")
            else:
                results[name] = json.loads((folder / f"{name}.json").read_text())
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    return results


def _result(runs, name):
    if isinstance(runs[name], Exception):
        raise runs[name]
    return runs[name]


def _assert_same_run(run, reference):
    np.testing.assert_allclose(run["loss"], reference["loss"], rtol=2e-5)
    np.testing.assert_allclose(run["means"], reference["means"], atol=1e-4)
    np.testing.assert_allclose(run["weibull_scale"], reference["weibull_scale"], rtol=1e-3)
    assert np.mean(np.equal(run["predict"], reference["predict"])) >= 0.98


def test_mirrored_strategy_on_two_devices_matches_one_device(runs):
    result = _result(runs, "mirrored")
    assert result["replicas"] == 2
    one, two = result["one_device"], result["distributed"]
    assert one["loss"][-1] < 0.8 * one["loss"][0]  # it trains
    _assert_same_run(two, one)
    assert two["sharded_vs_local"] < 1e-5  # distributed_features == the head's single-device features
    assert (one["head_replicas"], two["head_replicas"]) == (1, 2)  # the head's predict* shard like the training


def test_two_multi_worker_processes_train_and_fit_the_head_like_one_device(runs):
    reference = _result(runs, "mirrored")["one_device"]
    workers = [_result(runs, f"worker{i}") for i in range(2)]
    for worker in workers:
        assert worker["replicas"] == 2
        _assert_same_run(worker["distributed"], reference)
        assert worker["distributed"]["sharded_vs_local"] < 1e-5
    assert workers[0]["distributed"]["predict"] == workers[1]["distributed"]["predict"]


def test_jax_data_parallel_on_two_devices_matches_one_device(runs):
    pytest.importorskip("jax")
    result = _result(runs, "jax")
    assert result["devices"] == 2
    one, two = result["one_device"], result["distributed"]
    assert one["kernel_devices"] == 1
    assert two["kernel_devices"] == 2 and two["kernel_replicated"]  # variables replicated over the 2-device mesh
    _assert_same_run(two, one)  # with dropout 0.25: the masks are the same global ones
    assert two["sharded_vs_local"] < 1e-5


# distributed_dataset ------------------------------------------------------------------------------------------


def _batches(dataset, count):
    return [(x.numpy(), t["logits"].numpy()) for x, t in dataset.take(count)]


def test_distributed_dataset_orders_epochs_by_seed_and_epoch_only():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    y = np.arange(10)
    dataset, steps = distributed_dataset(x, y, 4, seed=5)
    assert steps == 2  # 10 // 4: the remainder of each epoch is dropped
    first = _batches(dataset, 3 * steps)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, _batches(dataset, 3 * steps)))  # new iterator
    epochs = [np.concatenate([b[1] for b in first[e * steps : (e + 1) * steps]]) for e in range(3)]
    for epoch in epochs:
        assert len(set(epoch.tolist())) == 8  # no repeats within an epoch
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch
    x_batch, labels = first[0]
    np.testing.assert_array_equal(x_batch[:, 0, 0, 0], labels)  # rows stay paired
    other = np.concatenate([b[1] for b in _batches(distributed_dataset(x, y, 4, seed=6)[0], steps)])
    assert not np.array_equal(other, epochs[0])
    ordered = np.concatenate([b[1] for b in _batches(distributed_dataset(x, y, 4)[0], 2 * steps)])
    np.testing.assert_array_equal(ordered, [0, 1, 2, 3, 4, 5, 6, 7] * 2)
    x_batch, targets = next(iter(dataset))
    assert set(targets) == {"logits", "reconstruction"}
    np.testing.assert_array_equal(targets["reconstruction"], x_batch)


def test_distributed_dataset_validates_its_inputs():
    x, y = np.zeros((8, 2, 2, 1), np.float32), np.zeros(8, np.int64)
    with pytest.raises(ValueError, match="global_batch_size"):
        distributed_dataset(x, y, 0)
    with pytest.raises(ValueError, match="exceeds the 8 samples"):
        distributed_dataset(x, y, 9)
    with pytest.raises(ValueError, match="one row per label"):
        distributed_dataset(x[:7], y, 4)
    with pytest.raises(ValueError, match="integer labels"):
        distributed_dataset(x, y.astype(np.float32), 4)
    with pytest.raises(ValueError, match="seed"):
        distributed_dataset(x, y, 4, seed=-1)


# JPEG pipelines ----------------------------------------------------------------------------------------------


def _collect(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def test_cifar10_pipeline_equals_the_pillow_loader(data_dir):
    indices = np.arange(3, 50000, 211)
    x, y = _collect(cifar10_tf_dataset("train", indices=indices, batch_size=64, data_dir=data_dir))
    x_ref, y_ref = load_cifar10("train", indices=indices, data_dir=data_dir)
    assert x.dtype == np.float32 and x.shape == x_ref.shape == (len(indices), 32, 32, 3)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(x, x_ref, atol=1.5 / 255)  # decoders may differ by 1 on a few values
    assert np.mean(np.abs(x - x_ref) > 0.5 / 255) < 0.01


def test_tinyimagenet_pipeline_keeps_classes_label_order_and_grayscale(data_dir):
    kwargs = dict(classes=[3, 150], label_order="sorted", data_dir=data_dir)
    x, y = _collect(tinyimagenet_tf_dataset("val", batch_size=32, **kwargs))
    x_ref, y_ref = load_tinyimagenet("val", **kwargs)
    assert x.shape == x_ref.shape == (100, 64, 64, 3)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(x, x_ref, atol=1.5 / 255)


def test_pipeline_shuffles_by_seed_every_epoch_with_or_without_cache(data_dir, tmp_path):
    indices = np.arange(0, 50000, 500)  # 100 images, 10 per class

    def fingerprints(dataset, count):
        return np.concatenate([x.numpy().sum(axis=(1, 2, 3)) for x, _ in dataset.take(count)])

    def two_epochs(**cache):
        dataset = cifar10_tf_dataset(
            "train", indices=indices, batch_size=20, shuffle=True, seed=1, repeat=True, data_dir=data_dir, **cache
        )
        return fingerprints(dataset, 10).reshape(2, 100)

    in_memory = two_epochs(cache=True)
    np.testing.assert_array_equal(in_memory, two_epochs(cache=True))  # reproducible
    assert not np.array_equal(in_memory[0], in_memory[1])  # reshuffled every epoch
    ordered = fingerprints(cifar10_tf_dataset("train", indices=indices, batch_size=20, data_dir=data_dir), 5)
    assert not np.array_equal(in_memory[0], ordered)
    for epoch in in_memory:
        np.testing.assert_array_equal(np.sort(epoch), np.sort(ordered))  # each epoch is a permutation
    for cache in (False, str(tmp_path / "cifar.cache")):
        np.testing.assert_array_equal(two_epochs(cache=cache), in_memory)  # the order depends on the seed only


def test_pipeline_targets_and_errors(data_dir, tmp_path):
    x, targets = next(iter(cifar10_tf_dataset("test", indices=[0, 1, 2], targets="dhrnet", data_dir=data_dir)))
    assert set(targets) == {"logits", "reconstruction"}
    np.testing.assert_array_equal(targets["reconstruction"], x)
    only_x = next(iter(cifar10_tf_dataset("test", indices=[0], targets=None, data_dir=data_dir)))
    assert only_x.shape == (1, 32, 32, 3)
    with pytest.raises(ValueError, match="needs a seed"):
        cifar10_tf_dataset("test", shuffle=True, data_dir=data_dir)
    with pytest.raises(ValueError, match="targets"):
        cifar10_tf_dataset("test", targets="y", data_dir=data_dir)
    with pytest.raises(ValueError, match="split"):
        cifar10_tf_dataset("val", data_dir=data_dir)
    with pytest.raises(DatasetNotFoundError):
        cifar10_tf_dataset("test", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"out of range \[0, 10\)"):
        cifar10_tf_dataset("test", classes=[10], data_dir=data_dir)
    wrong_size = jpeg_archive_dataset(data_dir / "cifar10_jpeg.npz", "test", size=28, num_classes=10, indices=[0])
    with pytest.raises(tf.errors.InvalidArgumentError):
        next(iter(wrong_size))


# mixed precision ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_keeps_latent_reconstruction_loss_and_head_in_float32(policy):
    sample = load_sample()
    keep = np.flatnonzero(sample["y_train"] < 3)[:240]
    x, y = sample["x_train"][keep], sample["y_train"][keep]
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        conv = keras.layers.Conv2D(8, 3, padding="same", activation="relu")
        stages = [keras.Sequential([conv, keras.layers.MaxPooling2D()])]
        model = compile_dhrnet(
            build_dhrnet(stages, num_classes=3, input_shape=(28, 28, 1), latent_dim=4, dropout=0.0),
            optimizer=keras.optimizers.Adam(3e-3),
        )
        compute = policy.split("_")[1]
        assert model.get_layer("lateral1").compute_dtype == compute  # the network really runs in low precision
        assert model.get_layer("lateral1").variable_dtype == "float32"
        if policy == "mixed_float16":
            assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        head = OpenSetHead((x, y), detector=CROSR(tail_size=5), batch_size=64, verbose=0)
        history = model.fit(x, dhrnet_targets(x, y), batch_size=32, epochs=3, verbose=0, callbacks=[head])
        deployed = build_open_set_model(model, head.detector_)  # built under the policy: its head stays float32
        assert deployed.get_layer("open_set").compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert np.isfinite(history.history["loss"]).all() and history.history["loss"][-1] < history.history["loss"][0]
    for output in ("logits", "latent", "reconstruction"):
        assert model.output[output].dtype == "float32"
    outputs = model.predict(x[:8], verbose=0)
    assert {k: v.dtype for k, v in outputs.items()} == dict.fromkeys(outputs, np.float32)
    y_pred = {k: keras.ops.convert_to_tensor(v) for k, v in outputs.items()}
    loss = keras.losses.MeanSquaredError()(x[:8], y_pred["reconstruction"])
    assert keras.backend.standardize_dtype(loss.dtype) == "float32"
    features = head.features(x)
    assert {v.dtype for v in features.values()} == {np.dtype(np.float32)}
    # the low-precision network learnt the 3 classes: held-out closed-set accuracy (measured 0.97, chance 0.33)
    test = np.flatnonzero(sample["y_test"] < 3)
    logits = model.predict(sample["x_test"][test], verbose=0)["logits"]
    assert np.mean(np.argmax(logits, axis=1) == sample["y_test"][test]) > 0.85
    # the numpy head on the low-precision features == the deployed model's float32 layer (measured diff < 4e-7)
    x_check = np.concatenate([sample["x_test"][test][:40], sample["omniglot"][:40]])
    np.testing.assert_allclose(deployed.predict(x_check, verbose=0), head.predict_proba(x_check), atol=1e-5)
