"""The DHRNet core on the JAX backend (the GPU machines run Keras on JAX without TensorFlow).

The script runs in a subprocess with ``KERAS_BACKEND=jax`` and TensorFlow made unimportable, as on those machines.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import sys

    class NoTensorFlow:
        def find_spec(self, name, path=None, target=None):
            if name == "tensorflow" or name.startswith("tensorflow."):
                raise ImportError("TensorFlow is blocked in this test")

    sys.meta_path.insert(0, NoTensorFlow())

    import keras
    import numpy as np
    from keras import layers

    from keras_crosr.dhrnet import build_dhrnet, compile_dhrnet, dhrnet_targets, inference_model

    assert keras.backend.backend() == "jax", keras.backend.backend()
    keras.utils.set_random_seed(0)
    stages = [
        keras.Sequential([layers.Conv2D(6, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
        keras.Sequential([layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
    ]
    model = compile_dhrnet(build_dhrnet(stages, num_classes=3, input_shape=(8, 8, 1), latent_dim=4, dropout=0.1))
    x = np.random.default_rng(0).random((8, 8, 8, 1), dtype=np.float32)
    y = np.arange(8) % 3
    before = [w.numpy().copy() for w in model.trainable_weights]
    logs = model.train_on_batch(x, dhrnet_targets(x, y), return_dict=True)
    assert np.isfinite(logs["loss"]), logs
    frozen = [w.path for w, b in zip(model.trainable_weights, before) if np.array_equal(w.numpy(), b)]
    assert not frozen, frozen
    out = model.predict(x, verbose=0)
    assert out["logits"].shape == (8, 3) and out["latent"].shape == (8, 8)
    assert out["reconstruction"].shape == x.shape
    model.save(sys.argv[1])
    restored = keras.saving.load_model(sys.argv[1])
    again = restored.predict(x, verbose=0)
    for key in out:
        np.testing.assert_array_equal(again[key], out[key])
    np.testing.assert_array_equal(inference_model(restored).predict(x, verbose=0)["latent"], out["latent"])

    text = compile_dhrnet(build_dhrnet("text_cnn", num_classes=2, vocab_size=20, max_length=6))
    tokens = np.random.default_rng(1).integers(0, 20, (4, 6)).astype("int32")
    logs = text.train_on_batch(tokens, dhrnet_targets(tokens, np.array([0, 1, 0, 1])), return_dict=True)
    assert np.isfinite(logs["loss"]), logs
    assert text.predict(tokens, verbose=0)["reconstruction"].shape == (4, 6, 20)
    assert "tensorflow" not in sys.modules
    print("JAX OK")
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install jax)")
def test_dhrnet_on_jax_without_tensorflow(tmp_path):
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "model.keras")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "JAX OK" in result.stdout


TF_DATA_SCRIPT = textwrap.dedent(
    """
    import keras
    import numpy as np
    import tensorflow as tf
    from keras import layers

    from keras_crosr import OpenSetHead, build_dhrnet, dhrnet_targets

    assert keras.backend.backend() == "jax", keras.backend.backend()
    keras.utils.set_random_seed(0)
    stages = [
        keras.Sequential([layers.Conv2D(6, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
        keras.Sequential([layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
    ]
    model = build_dhrnet(stages, num_classes=3, input_shape=(8, 8, 1), latent_dim=4)
    x = np.random.default_rng(0).random((90, 8, 8, 1), dtype=np.float32)
    y = np.arange(90) % 3
    arrays = OpenSetHead((x, y), detector="softmax", verbose=0).fit(model)
    batches = tf.data.Dataset.from_tensor_slices((x, dhrnet_targets(x, y))).batch(32)
    dataset = OpenSetHead(batches, detector="softmax", verbose=0).fit(model)  # TensorFlow tensors, batch by batch
    np.testing.assert_allclose(dataset.predict_proba(x), arrays.predict_proba(x), atol=1e-6)
    print("JAX tf.data OK")
    """
)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (pip install jax)")
def test_open_set_head_reads_tf_data_batches_on_jax(tmp_path):
    """On Colab, Keras on JAX beside TensorFlow: an OpenSetHead fed a tf.data.Dataset (TensorFlow tensors)."""
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS="cpu")
    result = subprocess.run(
        [sys.executable, "-c", TF_DATA_SCRIPT], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "JAX tf.data OK" in result.stdout
