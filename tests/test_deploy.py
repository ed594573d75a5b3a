import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import layers
from keras.src import testing

from keras_crosr import CROSR, NotFittedError, OneClassCROSR, OpenMax, SoftmaxThreshold
from keras_crosr import build_dhrnet, compile_dhrnet, dhrnet_targets, inference_model
from keras_crosr.datasets.embedded import load_sample
from keras_crosr.deploy import OpenSetLayer, SoftmaxThresholdLayer, build_open_set_model, open_set_layer

N, L = 6, 24


def synthetic_features(rng, centres, n):
    labels = rng.integers(0, N, n)
    logits = centres[labels] + rng.normal(size=(n, N)) + 4 * np.eye(N)[labels]
    latent = rng.normal(size=(n, L)) + 0.5 * labels[:, None]
    return {"logits": logits.astype("float32"), "latent": latent.astype("float32")}, labels


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(0)
    centres = 3 * rng.normal(size=(N, N))
    train, labels = synthetic_features(rng, centres, 1200)
    known, _ = synthetic_features(rng, centres, 300)
    far = {"logits": rng.normal(size=(300, N)) * 5, "latent": rng.normal(size=(300, L)) * 3}
    test = {k: np.concatenate([known[k], far[k]]).astype("float32") for k in known}
    return train, labels, test


def layer_input(detector, features):
    return features if isinstance(detector, CROSR) else features["logits"]


@pytest.mark.parametrize(
    "detector",
    [
        CROSR(),
        CROSR(alpha=3),
        OpenMax(),
        OpenMax(alpha=2, tail_size=10),
        CROSR(translate_amount=10000),  # Weibull shapes ~1e4: the float32 path must not lose precision
        OpenMax(alpha=3, translate_amount=10000),
        CROSR(distance="eucos"),
        OpenMax(distance="cosine", alpha=3),
    ],
    ids=[
        "crosr",
        "crosr-alpha3",
        "openmax",
        "openmax-alpha2",
        "crosr-translate1e4",
        "openmax-alpha3-translate1e4",
        "crosr-eucos",
        "openmax-cosine-alpha3",
    ],
)
def test_layer_equals_numpy_detector(synthetic, detector):
    train, labels, test = synthetic
    detector.fit(train, labels)
    expected = detector.predict_proba(layer_input(detector, test))
    # the cases cover both regimes: known rows mostly accepted, far rows often rejected
    assert np.mean(expected[:300, -1] > 0.5) < 0.25 and np.mean(expected[300:, -1] > 0.5) > 0.4
    layer = OpenSetLayer.from_detector(detector)
    assert not layer.trainable_weights and len(layer.non_trainable_weights) == 6
    output = keras.ops.convert_to_numpy(layer(layer_input(detector, test)))
    assert output.shape == (600, N + 1) and output.dtype == np.float32
    np.testing.assert_allclose(output, expected, atol=1e-5, rtol=0)
    # batch invariance: each row depends on its own input only, up to float32 rounding (a few ulps near 1:
    # vectorised CPU kernels may round a batch of 7 differently from one of 600)
    pieces = [
        keras.ops.convert_to_numpy(layer(layer_input(detector, {k: v[s : s + 7] for k, v in test.items()})))
        for s in range(0, 600, 7)
    ]
    np.testing.assert_allclose(np.concatenate(pieces), output, atol=5e-7, rtol=0)


def test_rank_calibration_breaks_ties_like_the_detector(synthetic):
    train, labels, test = synthetic
    detector = OpenMax(alpha=4).fit(train, labels)
    tied = np.round(test["logits"] / 2.0) * 2.0  # many equal logits within a row
    assert np.mean([len(np.unique(row)) < N for row in tied]) > 0.5
    output = keras.ops.convert_to_numpy(OpenSetLayer.from_detector(detector)(tied))
    np.testing.assert_allclose(output, detector.predict_proba(tied), atol=1e-5, rtol=0)


def test_layer_weights_hold_the_fitted_parameters(synthetic):
    train, labels, _ = synthetic
    detector = CROSR(translate_amount=10000).fit(train, labels)
    layer = OpenSetLayer.from_detector(detector)
    weights = {w.path.split("/")[-1]: keras.ops.convert_to_numpy(w) for w in layer.weights}
    np.testing.assert_allclose(weights["means"], detector.means_, rtol=1e-6)
    np.testing.assert_allclose(weights["weibull_shape"], detector.weibull_.shape, rtol=1e-6)
    np.testing.assert_allclose(weights["weibull_small_score"], detector.weibull_.small_score, rtol=1e-6)
    np.testing.assert_allclose(
        weights["weibull_translate_amount"] + weights["weibull_scale_excess"], detector.weibull_.scale, rtol=1e-6
    )
    config = layer.get_config()
    assert {k: config[k] for k in ("n_classes", "n_features", "use_latent", "alpha")} == {
        "n_classes": N, "n_features": N + L, "use_latent": True, "alpha": None
    }


def test_softmax_threshold_layer(synthetic):
    train, labels, test = synthetic
    detector = SoftmaxThreshold().fit(train, labels)
    layer = open_set_layer(detector)
    assert isinstance(layer, SoftmaxThresholdLayer)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(layer(test)), detector.predict_proba(test), atol=1e-6, rtol=0
    )


def test_layer_errors(synthetic):
    train, labels, test = synthetic
    with pytest.raises(NotFittedError, match="not fitted"):
        OpenSetLayer.from_detector(CROSR())
    with pytest.raises(NotFittedError, match="not fitted"):
        SoftmaxThresholdLayer.from_detector(SoftmaxThreshold())
    with pytest.raises(TypeError, match="OneClassCROSR"):
        OpenSetLayer.from_detector(OneClassCROSR())
    with pytest.raises(TypeError, match="SoftmaxThresholdLayer"):
        OpenSetLayer.from_detector(SoftmaxThreshold().fit(train, labels))
    layer = OpenSetLayer.from_detector(CROSR().fit(train, labels))
    with pytest.raises(ValueError, match="latent must have width 24"):
        OpenSetLayer.from_config(layer.get_config())({"logits": test["logits"], "latent": test["latent"][:, :5]})
    with pytest.raises(ValueError, match="needs the inputs as a dict"):
        OpenSetLayer.from_config(layer.get_config())(test["logits"])
    with pytest.raises(ValueError, match=r"logits must have width 5; got shape \(600, 6\)"):
        OpenSetLayer(5, 5, use_latent=False)(test["logits"])
    with pytest.raises(ValueError, match="n_features"):
        OpenSetLayer(6, 10, use_latent=False)
    with pytest.raises(ValueError, match=r"`distance` must be one of \['euclidean', 'eucos', 'cosine'\]; got 'l1'"):
        OpenSetLayer(6, 6, use_latent=False, distance="l1")
    with pytest.raises(ValueError, match="alpha"):
        OpenSetLayer(6, 6, use_latent=False, alpha=0)


@pytest.fixture(scope="module")
def real():
    """A small DHRNet trained on the embedded MNIST sample, with a CROSR head on its training features."""
    sample = load_sample()
    x, y = sample["x_train"][:1500], sample["y_train"][:1500]
    keras.utils.set_random_seed(0)
    stages = [
        keras.Sequential([layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
        keras.Sequential([layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
    ]
    model = compile_dhrnet(
        build_dhrnet(stages, num_classes=10, input_shape=(28, 28, 1), latent_dim=4),
        optimizer=keras.optimizers.Adam(3e-3),
    )
    model.fit(x, dhrnet_targets(x, y), epochs=3, batch_size=64, verbose=0)
    features = inference_model(model)
    detector = CROSR(alpha=3).fit(features.predict(x, verbose=0), y)
    noise = np.random.default_rng(1).random((50, 28, 28, 1)).astype("float32")
    x_test = np.concatenate([sample["x_test"][:150], sample["omniglot"][:150], noise])
    return model, detector, x_test, detector.predict_proba(features.predict(x_test, verbose=0))


def test_open_set_model_equals_the_detector_on_real_images(real):
    model, detector, x_test, expected = real
    open_set = build_open_set_model(model, detector)
    assert "reconstruction" not in [layer.name for layer in open_set.layers]
    np.testing.assert_allclose(open_set.predict(x_test, verbose=0), expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(open_set.predict(x_test, batch_size=7, verbose=0), expected, atol=1e-5, rtol=0)


def test_keras_round_trip_with_safe_mode(real, tmp_path):
    model, detector, x_test, _ = real
    open_set = build_open_set_model(model, detector)
    open_set.save(tmp_path / "open_set.keras")
    reloaded = keras.saving.load_model(tmp_path / "open_set.keras", safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(x_test, verbose=0), open_set.predict(x_test, verbose=0))


def test_export_runs_without_numpy_scipy_or_libmr_code(real, tmp_path):
    model, detector, x_test, expected = real
    build_open_set_model(model, detector).export(tmp_path / "saved", verbose=False)
    np.save(tmp_path / "x.npy", x_test)
    # A fresh interpreter that cannot import scipy, sklearn, libmr, keras or keras_crosr serves the artifact.
    script = textwrap.dedent(
        f"""
        import sys
        for name in ("scipy", "sklearn", "libmr", "keras", "keras_crosr"):
            sys.modules[name] = None
        import numpy as np
        import tensorflow as tf
        artifact = tf.saved_model.load({str(tmp_path / "saved")!r})  # keep a reference: it owns the variables
        served = artifact.serve(tf.constant(np.load({str(tmp_path / "x.npy")!r})))
        np.save({str(tmp_path / "served.npy")!r}, served.numpy())
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "served.npy"), expected, atol=1e-5, rtol=0)


def test_build_open_set_model_errors(real):
    model, _, _, _ = real
    with pytest.raises(NotFittedError, match="not fitted"):
        build_open_set_model(model, OpenMax())
    supervised = build_dhrnet("mnist_cnn", num_classes=10, variant="supervised")
    rng = np.random.default_rng(0)
    labels = np.arange(10).repeat(3)
    features = {"logits": rng.random((30, 10)) + 5 * np.eye(10)[labels], "latent": rng.random((30, 3))}
    fitted = CROSR(tail_size=2).fit(features, labels)
    with pytest.raises(ValueError, match="'latent' output"):
        build_open_set_model(supervised, fitted)


def test_open_set_model_outputs_float32_under_mixed_precision():
    x = np.random.default_rng(0).random((48, 12, 12, 1)).astype("float32")
    labels = np.arange(48) % 3
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_dhrnet("mnist_cnn", num_classes=3, input_shape=(12, 12, 1))
        features = inference_model(model).predict(x, verbose=0)  # float32 outputs of a float16 network
        # the untrained network's logits, shifted so that every class has tail_size correctly classified samples
        separated = {**features, "logits": features["logits"] + 5 * np.eye(3, dtype="float32")[labels]}
        detector = CROSR(tail_size=5).fit(separated, labels)
        open_set = build_open_set_model(model, detector)
        output = open_set.predict(x, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert open_set.get_layer("open_set").compute_dtype == "float32" and output.dtype == np.float32
    np.testing.assert_allclose(output, detector.predict_proba(features), atol=1e-5, rtol=0)


class DeployLayerTest(testing.TestCase):
    """The Keras layer contract (build / call / config / serialization) of the two deploy layers."""

    def test_openmax_layer(self):
        self.run_layer_test(
            OpenSetLayer,
            init_kwargs={"n_classes": 5, "n_features": 5, "use_latent": False, "alpha": 2},
            input_shape=(3, 5),
            expected_output_shape=(3, 6),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=1 + 5,  # means and the Weibull parameters
            run_training_check=False,
        )

    def test_softmax_threshold_layer(self):
        self.run_layer_test(
            SoftmaxThresholdLayer,
            init_kwargs={"n_classes": 5},
            input_shape=(3, 5),
            expected_output_shape=(3, 6),
            expected_num_trainable_weights=0,
            expected_num_non_trainable_weights=0,
            run_training_check=False,
        )

    def test_crosr_layer_takes_a_dict_and_round_trips_its_config(self):
        layer = OpenSetLayer(4, 4 + 3, use_latent=True, alpha=2, distance="eucos", name="crosr_head")
        inputs = {"logits": keras.Input((4,)), "latent": keras.Input((3,))}
        self.assertEqual(tuple(layer(inputs).shape), (None, 5))
        config = layer.get_config()
        self.assertEqual(OpenSetLayer.from_config(config).get_config(), config)
        self.assertEqual(
            {k: config[k] for k in ("n_classes", "n_features", "use_latent", "alpha", "distance")},
            {"n_classes": 4, "n_features": 7, "use_latent": True, "alpha": 2, "distance": "eucos"},
        )
        del config["distance"]  # a layer saved before the option existed is the paper's l2
        self.assertEqual(OpenSetLayer.from_config(config).distance, "euclidean")

    def test_inputs_must_be_batches_of_vectors(self):
        for layer in (SoftmaxThresholdLayer(4), OpenSetLayer(4, 4, use_latent=False)):
            with self.assertRaisesRegex(ValueError, r"`logits` must have shape \(batch, width\); got \(2, 3, 4\)"):
                layer(np.zeros((2, 3, 4), "float32"))


def test_softmax_threshold_model_round_trips_with_safe_mode(real, tmp_path):
    model, _, x_test, _ = real
    features = inference_model(model).predict(x_test, verbose=0)
    detector = SoftmaxThreshold().fit(features["logits"], np.arange(len(x_test)) % 10)  # fit records N only
    open_set = build_open_set_model(model, detector)
    np.testing.assert_allclose(open_set.predict(x_test, verbose=0), detector.predict_proba(features), atol=1e-6)
    open_set.save(tmp_path / "softmax.keras")
    reloaded = keras.saving.load_model(tmp_path / "softmax.keras", safe_mode=True)
    np.testing.assert_array_equal(reloaded.predict(x_test, verbose=0), open_set.predict(x_test, verbose=0))
