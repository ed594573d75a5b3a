import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from keras_crosr import CROSR, NotFittedError, OpenMax, OpenSetHead, SoftmaxThreshold
from keras_crosr import build_dhrnet, compile_dhrnet, dhrnet_targets, inference_model
from keras_crosr.callbacks import DivergedModelError
from keras_crosr.datasets.embedded import load_sample


def tiny_stages():
    return [
        keras.Sequential([layers.Conv2D(8, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
        keras.Sequential([layers.Conv2D(16, 3, padding="same", activation="relu"), layers.MaxPooling2D()]),
    ]


@pytest.fixture(scope="module")
def data():
    sample = load_sample()
    return {
        "x": sample["x_train"][:1500],
        "y": sample["y_train"][:1500],
        "x_test": np.concatenate([sample["x_test"][:100], sample["omniglot"][:100]]),
    }


@pytest.fixture(scope="module")
def trained(data):
    """A small DHRNet trained with an OpenSetHead callback attached."""
    keras.utils.set_random_seed(0)
    model = compile_dhrnet(
        build_dhrnet(tiny_stages(), num_classes=10, input_shape=(28, 28, 1), latent_dim=4),
        optimizer=keras.optimizers.Adam(3e-3),
    )
    head = OpenSetHead((data["x"], data["y"]), detector="crosr", batch_size=128, verbose=0)
    model.fit(data["x"], dhrnet_targets(data["x"], data["y"]), epochs=3, batch_size=64, verbose=0, callbacks=[head])
    return model, head


def test_callback_fits_at_train_end_and_matches_the_detector_on_predict_features(data, trained):
    model, head = trained
    assert isinstance(head.detector_, CROSR) and head.detector_.n_classes_ == 10
    assert head.detector_.n_features_in_ == 10 + 2 * 4
    assert set(head.inference_model_.output) == {"logits", "latent"}
    features = inference_model(model)
    reference = CROSR().fit(features.predict(data["x"], verbose=0), data["y"])
    test_features = features.predict(data["x_test"], verbose=0)
    np.testing.assert_allclose(head.detector_.means_, reference.means_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(head.predict_proba(data["x_test"]), reference.predict_proba(test_features), atol=1e-5)
    np.testing.assert_allclose(
        head.decision_function(data["x_test"]), reference.decision_function(test_features), atol=1e-5
    )
    np.testing.assert_array_equal(head.predict(data["x_test"]), reference.predict(test_features))
    np.testing.assert_array_equal(
        head.predict(data["x_test"], threshold=0.9), reference.predict(test_features, threshold=0.9)
    )
    truth = np.concatenate([load_sample()["y_test"][:100], np.full(100, 10)])  # x_test: 100 digits, 100 Omniglot
    assert head.score(data["x_test"], truth) == pytest.approx(reference.score(test_features, truth))
    weights = np.linspace(0.1, 1.0, truth.size)
    assert head.score(data["x_test"], truth, sample_weight=weights) == pytest.approx(
        reference.score(test_features, truth, sample_weight=weights)
    )


def test_fit_on_a_trained_model_with_a_detector_instance(data, trained):
    model, _ = trained
    template = OpenMax(tail_size=10, alpha=3)
    head = OpenSetHead((data["x"], data["y"]), detector=template, batch_size=500, verbose=0).fit(model)
    assert not hasattr(template, "n_classes_")  # the instance is copied, not fitted in place
    assert isinstance(head.detector_, OpenMax) and head.detector_.alpha == 3
    logits = model.predict(data["x_test"], verbose=0)["logits"]
    reference = OpenMax(tail_size=10, alpha=3).fit(model.predict(data["x"], verbose=0)["logits"], data["y"])
    np.testing.assert_allclose(head.predict_proba(data["x_test"]), reference.predict_proba(logits), atol=1e-5)


def test_dataset_with_target_dicts_equals_arrays(data, trained):
    model, head = trained
    dataset = tf.data.Dataset.from_tensor_slices((data["x"], dhrnet_targets(data["x"], data["y"]))).batch(200)
    from_dataset = OpenSetHead(dataset, detector="crosr", verbose=0).fit(model)
    np.testing.assert_allclose(from_dataset.detector_.means_, head.detector_.means_, atol=1e-5)
    np.testing.assert_allclose(
        from_dataset.predict_proba(data["x_test"]), head.predict_proba(data["x_test"]), atol=1e-5
    )


def test_a_detector_class_is_refused_with_a_hint_at_an_instance(data):
    with pytest.raises(TypeError, match=r"got the class CROSR: pass an instance, e.g. CROSR\(\)"):
        OpenSetHead((data["x"], data["y"]), detector=CROSR)


def test_tuple_with_the_target_dict_equals_labels(data, trained):
    model, head = trained
    from_targets = OpenSetHead((data["x"], dhrnet_targets(data["x"], data["y"])), verbose=0).fit(model)
    np.testing.assert_allclose(from_targets.detector_.means_, head.detector_.means_, atol=1e-5)


def test_predict_methods_reuse_the_fitted_inference_model(data, trained):
    _, head = trained
    head.predict_proba(data["x_test"][:1])
    predict_function = head._sharded_model.predict_function
    assert predict_function is not None  # the fitted model ran itself, not a copy built for the call
    for method in (head.predict, head.predict_proba, head.decision_function):
        method(data["x_test"][:3])
        assert head._sharded_model.predict_function is predict_function  # traced once, not per call
    np.testing.assert_array_equal(head.predict(data["x_test"][:, :, :, 0]), head.predict(data["x_test"]))
    with pytest.raises(ValueError, match=r"shape \(n, 28, 28, 1\).*received \(4, 32, 32, 1\)"):
        head.predict(np.zeros((4, 32, 32, 1), "float32"))
    corrupted = data["x_test"][:4].copy()
    corrupted[1, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="holds 1 NaN or infinite values"):
        head.predict(corrupted)


def test_a_detector_failing_at_train_end_says_the_network_is_trained(data):
    model = compile_dhrnet(build_dhrnet("mnist_cnn", num_classes=3, input_shape=(28, 28, 1)))
    x, y = data["x"][:48], data["y"][:48] % 3
    head = OpenSetHead((x, y), detector=CROSR(tail_size=100), verbose=0)
    with pytest.raises(RuntimeError, match=r"network itself finished training.*head\.fit\(model\)") as info:
        model.fit(x, dhrnet_targets(x, y), epochs=1, verbose=0, callbacks=[head])
    assert "needs at least tail_size=100 correctly classified" in str(info.value)  # the detector's own message
    head.detector = "softmax"
    assert head.fit(model).predict(x).shape == (48,)


def test_progress_bar_follows_verbose(data, trained, capsys):
    model, _ = trained
    OpenSetHead((data["x"], data["y"]), detector="softmax", batch_size=500, verbose=1).fit(model)
    assert "3/3" in capsys.readouterr().out
    OpenSetHead((data["x"], data["y"]), detector="softmax", batch_size=500, verbose=0).fit(model)
    assert capsys.readouterr().out == ""


def test_supervised_model_gives_logits_only(data):
    model = build_dhrnet(tiny_stages(), num_classes=10, input_shape=(28, 28, 1), variant="supervised")
    head = OpenSetHead((data["x"][:200], data["y"][:200]), detector="softmax", verbose=0).fit(model)
    assert isinstance(head.detector_, SoftmaxThreshold)
    logits = model.predict(data["x_test"], verbose=0)["logits"]
    expected = SoftmaxThreshold().fit(logits, np.zeros(len(logits), int)).predict_proba(logits)
    np.testing.assert_allclose(head.predict_proba(data["x_test"]), expected, atol=1e-6)
    with pytest.raises(ValueError, match="latent"):
        OpenSetHead((data["x"][:200], data["y"][:200]), detector="crosr", verbose=0).fit(model)


def test_a_detector_that_needs_the_latent_is_refused_before_training_a_supervised_model(data):
    model = compile_dhrnet(build_dhrnet(tiny_stages(), num_classes=10, input_shape=(28, 28, 1), variant="supervised"))
    x, y = data["x"][:64], data["y"][:64]
    head = OpenSetHead((x, y), detector=CROSR(tail_size=5), verbose=0)
    message = r"the CROSR detector needs the latent output z, which the model .* does not have .*detector='openmax'"
    with pytest.raises(ValueError, match=message):
        model.fit(x, dhrnet_targets(x, y, model=model), epochs=3, verbose=0, callbacks=[head])
    assert int(model.optimizer.iterations) == 0  # refused when training began, not after it


def test_inputs_of_another_kind_than_the_fit_s_are_refused(data, trained):
    model, head = trained
    assert head.input_dtype_ == np.float32
    raw = np.round(data["x_test"] * 255).astype("uint8")
    message = "x has dtype uint8, but this head was fitted on float32 inputs"
    for method in (head.predict, head.predict_proba, head.decision_function):
        with pytest.raises(ValueError, match=message):
            method(raw)
    with pytest.raises(ValueError, match=message):
        head.predict(tf.constant(raw))
    np.testing.assert_array_equal(head.predict(data["x_test"].astype("float64")), head.predict(data["x_test"]))


def test_errors(data, trained):
    model, _ = trained
    head = OpenSetHead((data["x"], data["y"]), verbose=0)
    for method in (head.predict, head.predict_proba, head.decision_function):
        with pytest.raises(NotFittedError, match="not fitted"):
            method(data["x_test"])
    with pytest.raises(ValueError, match="unknown detector 'openmx'"):
        OpenSetHead((data["x"], data["y"]), detector="openmx")
    with pytest.raises(TypeError, match="detector"):
        OpenSetHead((data["x"], data["y"]), detector=object())
    for batch_size in (0, True, 64.0):
        with pytest.raises(ValueError, match="batch_size"):
            OpenSetHead((data["x"], data["y"]), batch_size=batch_size)
    assert OpenSetHead((data["x"], data["y"]), batch_size=np.int64(64)).batch_size == 64
    with pytest.raises(ValueError, match="differ in length"):
        OpenSetHead((data["x"], data["y"][:10]), verbose=0).fit(model)
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        OpenSetHead((data["x"], keras.utils.to_categorical(data["y"])), verbose=0).fit(model)
    images_only = tf.data.Dataset.from_tensor_slices(data["x"]).batch(500)
    with pytest.raises(ValueError, match=r"\(x, y\) batches"):
        OpenSetHead(images_only, verbose=0).fit(model)


def test_an_endless_dataset_is_refused_before_training_or_read_for_its_steps(data, trained):
    model, head = trained
    endless = tf.data.Dataset.from_tensor_slices((data["x"], data["y"])).batch(300).repeat()
    with pytest.raises(ValueError, match=r"endless dataset .* pass `steps=`"):
        OpenSetHead(endless, verbose=0)  # at construction: it would only fail (or hang) after model.fit
    from_steps = OpenSetHead(endless, steps=5, verbose=0).fit(model)  # 5 x 300 = the 1,500 training images
    np.testing.assert_allclose(from_steps.detector_.means_, head.detector_.means_, atol=1e-5)
    assert OpenSetHead(endless, steps=np.int32(5)).steps == 5
    for steps in (0, 2.5, True):
        with pytest.raises(ValueError, match="`steps` must be None or a positive int"):
            OpenSetHead(endless, steps=steps)
    with pytest.raises(ValueError, match=r"with arrays `\(x, y\)` every sample is used"):
        OpenSetHead((data["x"], data["y"]), steps=1)


class EndlessBatches(keras.utils.PyDataset):
    """A PyDataset without `num_batches`: Keras treats it as infinite."""

    def __init__(self, x, y, batch_size):
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size

    @property
    def num_batches(self):
        return None

    def __getitem__(self, index):
        start = index * self.batch_size % len(self.x)
        return self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]


def test_an_endless_pydataset_is_refused_or_read_for_its_steps(data, trained):
    model, head = trained
    endless = EndlessBatches(data["x"], data["y"], batch_size=300)
    with pytest.raises(ValueError, match=r"PyDataset whose `num_batches` is None\): pass `steps=`"):
        OpenSetHead(endless, verbose=0)
    from_steps = OpenSetHead(endless, steps=5, verbose=0).fit(model)  # 5 x 300 = the 1,500 training images
    np.testing.assert_allclose(from_steps.detector_.means_, head.detector_.means_, atol=1e-5)


def test_a_used_up_generator_and_empty_inputs_say_what_is_wrong(data, trained):
    model, head = trained
    batches = ((data["x"][i : i + 500], data["y"][i : i + 500]) for i in range(0, 1500, 500))
    once = OpenSetHead(batches, verbose=0).fit(model)
    np.testing.assert_allclose(once.detector_.means_, head.detector_.means_, atol=1e-5)
    with pytest.raises(ValueError, match="no batches: .* used up"):
        once.fit(model)
    with pytest.raises(ValueError, match=r"holds no samples \(shape \(0, 28, 28, 1\)\)"):
        head.predict(data["x_test"][:0])
    with pytest.raises(ValueError, match="holds no samples"):
        OpenSetHead((data["x"][:0], data["y"][:0]), verbose=0).fit(model)


def _early_stopped_model(data, head_first):
    """A tiny DHRNet trained 3 epochs, then 2 more with an OpenSetHead and EarlyStopping(restore_best_weights=True)
    whose 'best' epoch is the first of the two (mode="max" on a falling loss): the weights at the end are its."""
    keras.utils.set_random_seed(1)
    model = compile_dhrnet(
        build_dhrnet(tiny_stages(), num_classes=10, input_shape=(28, 28, 1), latent_dim=4),
        optimizer=keras.optimizers.Adam(3e-3),
    )
    x, y = data["x"], data["y"]
    model.fit(x, dhrnet_targets(x, y), epochs=3, batch_size=64, verbose=0)
    head = OpenSetHead((x, y), detector=CROSR(tail_size=10), verbose=0)
    stop = keras.callbacks.EarlyStopping(monitor="loss", mode="max", patience=5, restore_best_weights=True)
    callbacks = [head, stop] if head_first else [stop, head]
    model.fit(x, dhrnet_targets(x, y), epochs=2, batch_size=64, verbose=0, callbacks=callbacks)
    return model, head, (x, y)


def test_a_head_fitted_before_the_weights_changed_refuses_to_predict(data):
    model, head, (x, y) = _early_stopped_model(data, head_first=True)
    with pytest.raises(RuntimeError, match=r"weights changed after this OpenSetHead was fitted.*head\.fit\(model\)"):
        head.predict(data["x_test"])  # fitted on epoch 3's weights, before EarlyStopping restored epoch 1's
    reference = CROSR(tail_size=10).fit(inference_model(model).predict(x, verbose=0), y)
    np.testing.assert_allclose(head.fit(model).detector_.means_, reference.means_, atol=1e-5)
    assert head.predict(data["x_test"]).shape == (200,)


def test_a_head_listed_after_early_stopping_fits_the_restored_weights(data):
    model, head, (x, y) = _early_stopped_model(data, head_first=False)
    reference = CROSR(tail_size=10).fit(inference_model(model).predict(x, verbose=0), y)
    np.testing.assert_allclose(head.detector_.means_, reference.means_, atol=1e-5)
    features = inference_model(model).predict(data["x_test"], verbose=0)
    np.testing.assert_allclose(head.predict_proba(data["x_test"]), reference.predict_proba(features), atol=1e-5)


def test_a_diverged_network_is_named_as_such(data):
    model = build_dhrnet(tiny_stages(), num_classes=10, input_shape=(28, 28, 1), latent_dim=4)
    model.set_weights([np.full_like(w, np.nan) for w in model.get_weights()])
    head = OpenSetHead((data["x"][:100], data["y"][:100]), verbose=0)
    with pytest.raises(DivergedModelError, match=r"NaN or inf values \(1000 in the logits, 800 in the latent\): its"):
        head.fit(model)
    head.set_model(model)
    with pytest.raises(RuntimeError, match="at the end of training: the model's features") as info:
        head.on_train_end()
    assert "usable" in str(info.value) and "is not usable" in str(info.value)


def test_an_unbatched_dataset_is_named_as_such(data, trained):
    model, _ = trained
    unbatched = tf.data.Dataset.from_tensor_slices((data["x"][:10], data["y"][:10]))
    with pytest.raises(ValueError, match=r"batch 1 has inputs of shape \(28, 28, 1\).*is the dataset batched"):
        OpenSetHead(unbatched, verbose=0).fit(model)
