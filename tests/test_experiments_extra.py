"""The runtime (Table 7) and samples (Fig. 6) experiments, run through the Runner on tiny budgets."""

import dataclasses
import json
from pathlib import Path

import keras
import matplotlib.image
import numpy as np
import pytest

from keras_crosr.__main__ import main
from keras_crosr.dhrnet import build_dhrnet, inference_model
from keras_crosr.experiments import Budget, Network, Runner, get_experiment
from keras_crosr.experiments.runner import make_detector
from keras_crosr.experiments.runtime import fit_readout
from keras_crosr.experiments.samples import top_k_composition

RUNTIME_HEADS = ("softmax", "openmax", "crosr")


def _runtime_experiment(**changes):
    experiment = get_experiment("runtime")
    changes.setdefault("networks", tuple(n for n in experiment.networks if n.backbone == "cifar_cnn"))
    return dataclasses.replace(experiment, quick=Budget(epochs=0, train=200, test=10), **changes)


# Milliseconds each head's model takes on the 10 timed images, in the order it sees them (a fake clock):
# softmax 1..10 (median 5.5, 10th / 90th percentiles 1.9 / 9.1 by linear interpolation), openmax twice that,
# crosr six 1 ms calls and four 30 ms calls (median 1, while the mean would be 12.6).
FAKE_MS = {
    "softmax": np.arange(1.0, 11.0),
    "openmax": 2.0 * np.arange(1.0, 11.0),
    "crosr": np.r_[[1.0] * 6, [30.0] * 4],
}
# head: (ms_per_image, ratio_to_softmax, p10_ms, p90_ms), worked out by hand from FAKE_MS
EXPECTED_TIMES = {
    "softmax": (5.5, 1.0, 1.9, 9.1),
    "openmax": (11.0, 2.0, 3.8, 18.2),
    "crosr": (1.0, 0.182, 1.0, 30.0),  # 1 / 5.5 = 0.1818
}


@pytest.fixture
def fake_clock(monkeypatch):
    """Times the runtime experiment with a fake ``time.perf_counter`` that each head's model call advances by
    ``FAKE_MS`` (warm-up calls by 100 ms, never measured); the real models still run. Returns the calls seen
    per head: ``(batch shape, output)``."""
    from keras_crosr.experiments import runtime

    now = [0.0]
    calls = {}

    class Spy:
        def __init__(self, head, model):
            self.head, self.model = head, model

        def predict_on_batch(self, batch):
            output = self.model.predict_on_batch(batch)
            seen = calls.setdefault(self.head, [])
            timed = len(seen) - runtime.WARMUP_CALLS
            now[0] += 0.1 if timed < 0 else FAKE_MS[self.head][timed % 10] / 1000
            seen.append((batch.shape, np.asarray(output)))
            return output

    real = runtime.time_per_image
    monkeypatch.setattr(runtime, "time", type("FakeTime", (), {"perf_counter": staticmethod(lambda: now[0])}))
    monkeypatch.setattr(runtime, "time_per_image", lambda models, images, **kwargs: real(
        {head: Spy(head, model) for head, model in models.items()}, images, **kwargs))
    return calls


def test_runtime_experiment_times_each_method(tmp_path, data_dir, capsys, fake_clock):
    runner = Runner(_runtime_experiment(), tmp_path, quick=True, source="local", data_dir=data_dir, verbose=0)
    text = runner.run()
    results = runner.workspace.results
    records = {head: results[f"runtime/cifar_cnn/{head}"] for head in RUNTIME_HEADS}
    for head, record in records.items():
        times = (record["ms_per_image"], record["ratio_to_softmax"], record["p10_ms"], record["p90_ms"])
        assert times == pytest.approx(EXPECTED_TIMES[head], abs=1e-9)
        # every timed call ran that head's own deployed model on one image: (1, 10 + 1) probabilities
        assert [shape for shape, _ in fake_clock[head]] == [(1, 32, 32, 3)] * 20  # 10 warm-up + 10 timed
        for _, output in fake_clock[head]:
            assert output.shape == (1, 11)
            np.testing.assert_allclose(output.sum(), 1.0, atol=1e-5)
        assert (fake_clock[head][-1][1][0, -1] == 0.0) == (head == "softmax")  # only Softmax has no unknown
        assert record["repeats"] == 10 and record["fit_images"] == 200
        assert record["backend"] == keras.backend.backend()
        assert record["device"].startswith(("cpu: ", "gpu: "))
        assert record["weights"].startswith("untrained")
        assert f"| cifar_cnn | {head} |" in text
    assert 2 <= records["crosr"]["tail_size"] <= 20 and records["softmax"]["tail_size"] is None
    assert (tmp_path / "networks" / "cifar_cnn-dhrnet.keras").exists()

    assert records["crosr"]["configured"] == {"tail_size": 20, "alpha": None} and records["softmax"]["configured"] == {}

    capsys.readouterr()
    again = Runner(_runtime_experiment(), tmp_path, quick=True, source="local", data_dir=data_dir, verbose=1)
    again.run()
    assert again.workspace.results == results
    assert "[runtime]" not in capsys.readouterr().out  # nothing re-timed

    other = Runner(_runtime_experiment(alpha={"cifar10": 2}), tmp_path, quick=True, source="local",
                   data_dir=data_dir, verbose=1)
    other.run()  # the heads are timed again with the detector settings they get now
    assert other.workspace.results["runtime/cifar_cnn/crosr"]["configured"] == {"tail_size": 20, "alpha": 2}
    assert "[runtime] timing" in capsys.readouterr().out


def test_runtime_rejects_methods_it_cannot_compare_before_creating_its_directory(tmp_path):
    no_softmax = _runtime_experiment(networks=(Network("cifar_cnn", "dhrnet", ("crosr",)),))
    with pytest.raises(ValueError, match="no softmax head"):
        Runner(no_softmax, tmp_path / "a", quick=True, verbose=0)
    ocsvm = _runtime_experiment(networks=(Network("cifar_cnn", "supervised", ("softmax", "ocsvm")),))
    with pytest.raises(ValueError, match="'ocsvm' .* cannot be timed"):
        Runner(ocsvm, tmp_path / "b", quick=True, verbose=0)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("arguments", [["--networks", "dhrnet"], ["--skip-heads", "softmax"]])
def test_cli_says_which_runtime_comparison_is_impossible(tmp_path, capsys, arguments):
    output = tmp_path / "out"
    assert main(["run", "runtime", *arguments, "--output", str(output), "--verbose", "0"]) == 2
    assert "error: runtime: backbone 'cifar_cnn' has no softmax head to compare with" in capsys.readouterr().err
    assert not output.exists()


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
        # 3 epochs: after 2, OpenMax / CROSR could not be fitted for runner seeds 0 and 1 (a digit class with fewer
        # than 5 correctly classified training images); after 3 every head fits for seeds 0-3
        quick=Budget(epochs=3, train=1000, test=100),
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
        # Better than chance: a random order puts half of the unknowns in the top half. Measured 0.34-0.35 here
        # (runner seed 0) and 0.17-0.22 for seeds 1-3.
        assert record["top_half_unknown"] < 0.5

    # the fractions recomputed from the cached features: unknowns among the 100 most confident of the
    # 100 known test images (rows 0..99) followed by the 100 Omniglot outliers (rows 100..199)
    _, y_train, _, y_test, _ = runner.load_outlier_benchmark()
    with np.load(tmp_path / "features" / "mnist_cnn-dhrnet.npz") as cached:
        features = {name: {k: cached[f"{name}/{k}"] for k in ("logits", "latent")} for name in ("train", "test")}
        features["omniglot"] = {k: cached[f"omniglot/{k}"] for k in ("logits", "latent")}
    scored = {k: np.concatenate([features["test"][k], features["omniglot"][k]]) for k in ("logits", "latent")}
    labels = np.r_[y_test, np.full(100, 10)]
    for head in RUNTIME_HEADS:
        detector = make_detector(head, tail_size=5).fit(features["train"], y_train)  # no rank calibration on MNIST
        confidence = detector.predict_proba(scored)[:, :-1].max(axis=1)
        top = np.argsort(-confidence, kind="stable")[:100]
        record = results[f"samples/mnist_cnn-dhrnet/{head}/omniglot"]
        assert record["top_half_unknown"] == pytest.approx(np.mean(top >= 100), abs=1e-4)
        pick = np.sort(np.random.default_rng(0).permutation(200)[:50])  # the runner's subsample, seed 0
        left = pick[np.argsort(-confidence[pick], kind="stable")[:25]]
        assert record["left_half_unknown"] == pytest.approx(np.mean(left >= 100), abs=1e-4)
        wrong = (left < 100) & (detector.predict({k: v[left] for k, v in scored.items()}) != labels[left])
        assert record["left_half_misclassified_known"] == pytest.approx(np.mean(wrong), abs=1e-4)

    # the samples notebook's table of a recorded run reads these records
    notebook = json.loads((Path(__file__).parents[1] / "notebooks" / "samples.ipynb").read_text())
    cell = next("".join(c["source"]) for c in notebook["cells"] if "load_recorded(" in "".join(c["source"])
                and "show_table(" in "".join(c["source"]))
    shown = []
    exec(cell, {"load_recorded": lambda *paths: (paths[0], results), "show_table": lambda *table: shown.append(table)})
    (header, rows), = shown
    assert [row[0] for row in rows] == sorted(results["figures"]) and all(len(row) == len(header) for row in rows)
    record = results["samples/mnist_cnn-dhrnet/crosr/omniglot"]
    assert rows[0][1:] == [f"{record['left_half_unknown']:.0%}", f"{record['top_half_unknown']:.0%}", 100, 100]

    capsys.readouterr()
    again = Runner(experiment, tmp_path, quick=True, source="local", data_dir=data_dir, verbose=1)
    again.run()
    assert again.workspace.results == results
    output = capsys.readouterr().out
    assert "[samples]" not in output and "[mnist_cnn-dhrnet]" not in output  # nothing re-trained or re-drawn
    crosr = make_detector("crosr", tail_size=5)
    assert results["samples/mnist_cnn-dhrnet/crosr/omniglot"]["detector"] == crosr.get_params()

    other_tail = Runner(dataclasses.replace(experiment, tail_size={"mnist_cnn": 6}), tmp_path, quick=True,
                        source="local", data_dir=data_dir, verbose=1)
    other_tail.run()  # the heads' records are made again with the detector settings they get now
    remade = other_tail.workspace.results
    assert all(remade[f"samples/mnist_cnn-dhrnet/{head}/omniglot"]["detector"]["tail_size"] == 6
               for head in ("openmax", "crosr"))
    assert "reusing trained network" in capsys.readouterr().out


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


def test_a_head_that_cannot_be_fitted_for_timing_is_reported_and_the_run_goes_on(tmp_path, data_dir, monkeypatch):
    from keras_crosr.experiments import runtime

    def too_few(head, features, labels, tail_size, alpha=None):
        raise ValueError(f"runtime: class 3 has 1 correctly classified fitting samples ({head})")

    monkeypatch.setattr(runtime, "fit_timing_head", too_few)
    runner = Runner(_runtime_experiment(), tmp_path, quick=True, source="local", data_dir=data_dir, verbose=0)
    text = runner.run()  # no exception: the problem is reported
    assert "[runtime] cifar_cnn not timed: softmax head: runtime: class 3 has 1 correctly" in text
    assert not [key for key in runner.workspace.results if key.startswith("runtime/")]
    recorded = json.loads((tmp_path / "results.json").read_text())
    assert recorded["problems/runtime-cifar_cnn"].startswith("[runtime] cifar_cnn not timed")  # for `report`
    monkeypatch.undo()
    text = Runner(_runtime_experiment(), tmp_path, quick=True, source="local", data_dir=data_dir, verbose=0).run()
    assert "not timed" not in text and "| cifar_cnn | crosr |" in text
