"""The runtime (Table 7) and samples (Fig. 6) experiments, run through the Runner on tiny budgets."""

import dataclasses

import keras
import matplotlib.image
import numpy as np
import pytest

from keras_crosr.dhrnet import build_dhrnet, inference_model
from keras_crosr.experiments import Budget, Network, Runner, get_experiment
from keras_crosr.experiments.runtime import fit_readout
from keras_crosr.experiments.samples import top_k_composition

RUNTIME_HEADS = ("softmax", "openmax", "crosr")


def _runtime_experiment(**changes):
    experiment = get_experiment("runtime")
    changes.setdefault("networks", tuple(n for n in experiment.networks if n.backbone == "cifar_cnn"))
    return dataclasses.replace(experiment, quick=Budget(epochs=0, train=200, test=10), **changes)


def test_runtime_experiment_times_each_method(tmp_path, data_dir, capsys):
    runner = Runner(_runtime_experiment(), tmp_path, quick=True, source="local", data_dir=data_dir, verbose=0)
    text = runner.run()
    results = runner.workspace.results
    records = {head: results[f"runtime/cifar_cnn/{head}"] for head in RUNTIME_HEADS}
    softmax_ms = records["softmax"]["ms_per_image"]
    for head, record in records.items():
        assert record["ms_per_image"] > 0 and record["p10_ms"] <= record["ms_per_image"] <= record["p90_ms"]
        assert record["ratio_to_softmax"] == pytest.approx(record["ms_per_image"] / softmax_ms, abs=2e-3)
        assert record["repeats"] == 10 and record["fit_images"] == 200
        assert record["backend"] == keras.backend.backend()
        assert record["device"].startswith(("cpu: ", "gpu: "))
        assert record["weights"].startswith("untrained")
        assert f"| cifar_cnn | {head} |" in text
    assert records["softmax"]["ratio_to_softmax"] == 1.0
    assert 2 <= records["crosr"]["tail_size"] <= 20 and records["softmax"]["tail_size"] is None
    assert (tmp_path / "networks" / "cifar_cnn-dhrnet.keras").exists()

    capsys.readouterr()
    again = Runner(_runtime_experiment(), tmp_path, quick=True, source="local", data_dir=data_dir, verbose=1)
    again.run()
    assert again.workspace.results == results
    assert "[runtime]" not in capsys.readouterr().out  # nothing re-timed


def test_runtime_rejects_methods_it_cannot_compare(tmp_path):
    no_softmax = _runtime_experiment(networks=(Network("cifar_cnn", "dhrnet", ("crosr",)),))
    with pytest.raises(ValueError, match="no softmax head"):
        Runner(no_softmax, tmp_path / "a", quick=True, verbose=0).run()
    ocsvm = _runtime_experiment(networks=(Network("cifar_cnn", "supervised", ("softmax", "ocsvm")),))
    with pytest.raises(ValueError, match="'ocsvm' .* cannot be timed"):
        Runner(ocsvm, tmp_path / "b", quick=True, verbose=0).run()


def test_fit_readout_sets_the_classifier_of_an_untrained_network():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(60, 32, 32, 3)).astype("float32")
    y = np.arange(60) % 10
    model = build_dhrnet("cifar_cnn", num_classes=10, variant="dhrnet")
    features = fit_readout(model, x, y, num_classes=10)
    assert set(features) == {"logits", "latent"}
    actual = inference_model(model).predict(x, verbose=0)
    np.testing.assert_allclose(features["logits"], actual["logits"], atol=1e-3)
    assert np.mean(np.argmax(actual["logits"], axis=1) == y) >= 0.95


def test_top_k_composition():
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array([2, 0, 1, 2, 0])  # 2 = unknown
    predictions = np.array([0, 1, 1, 2, 0])
    assert top_k_composition(confidence, labels, predictions, 2, 2) == {"unknown": 0.5, "misclassified_known": 0.5}
    assert top_k_composition(confidence, labels, predictions, 2, 5) == {"unknown": 0.4, "misclassified_known": 0.2}


def test_samples_experiment_draws_each_method(tmp_path, data_dir, capsys):
    experiment = get_experiment("samples")
    experiment = dataclasses.replace(
        experiment,
        networks=(Network("mnist_cnn", "dhrnet", RUNTIME_HEADS),),  # one training for the three methods
        quick=Budget(epochs=2, train=1000, test=100),
        training=dataclasses.replace(experiment.training, batch_size=32),
        tail_size={"mnist_cnn": 5},
    )
    runner = Runner(experiment, tmp_path, quick=True, source="local", data_dir=data_dir, verbose=0)
    text = runner.run()
    results = runner.workspace.results
    assert set(results["figures"]) == {f"mnist_cnn-dhrnet/{head}/omniglot" for head in RUNTIME_HEADS}
    for key, path in results["figures"].items():
        image = matplotlib.image.imread(tmp_path / path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300
        assert f"![{key}]({path})" in text
        record = results[f"samples/{key}"]
        assert record["known"] == record["unknown"] == 100 and record["sampled"] == 50
        assert 0 < record["sampled_unknown"] < 50  # the same random points for every method
        assert record["sampled_unknown"] == results["samples/mnist_cnn-dhrnet/softmax/omniglot"]["sampled_unknown"]
        for fraction in ("left_half_unknown", "left_half_misclassified_known"):
            assert 0.0 <= record[fraction] <= 1.0
        # Better than chance: a random order puts half of the unknowns in the top half.
        assert record["top_half_unknown"] < 0.5

    capsys.readouterr()
    again = Runner(experiment, tmp_path, quick=True, source="local", data_dir=data_dir, verbose=1)
    again.run()
    assert again.workspace.results == results
    output = capsys.readouterr().out
    assert "[samples]" not in output and "[mnist_cnn-dhrnet]" not in output  # nothing re-trained or re-drawn


def test_dbpedia_trains_one_network_per_seed_for_every_setting(tmp_path, data_dir):
    experiment = dataclasses.replace(
        get_experiment("dbpedia"),
        networks=(Network("text_cnn", "dhrnet", RUNTIME_HEADS),),
        evaluations=(4, 0),
        quick=Budget(epochs=6, train=300, test=100, batch_size=16),
        tail_size={"text_cnn": 5},
    )
    runner = Runner(experiment, tmp_path, quick=True, data_dir=data_dir, verbose=0)
    text = runner.run()
    results = runner.workspace.results
    assert sorted(p.name for p in (tmp_path / "networks").glob("*.keras")) == ["dbpedia-s0-dhrnet.keras"]
    assert list(k for k in results if k.endswith("/training")) == ["dbpedia-s0-dhrnet/training"]
    assert "auroc" in results["4/8/seed0/dhrnet/crosr"]
    assert 0.0 < results["4/4/seed0/dhrnet/crosr"]["macro_f1"] <= 1.0  # no unknowns there: no AUROC
    assert "| dhrnet | crosr |" in text
    with np.load(tmp_path / "features" / "dbpedia-s0-dhrnet.npz") as cached:
        assert len(cached["unknown4/logits"]) == 100 and "unknown0/logits" not in cached.files

    results["4/8/seed0/dhrnet/openmax"] = {"status": "failed", "message": "too few samples"}
    from keras_crosr.experiments import report

    row = next(line for line in report.render(experiment, results).splitlines() if "| dhrnet | openmax |" in line)
    assert row.split("|")[3].strip() == "– (0.729)"  # 4/8: the failed head has no number; the report renders
