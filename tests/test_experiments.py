"""The experiment runner, its report and the CLI, on the embedded sample (no data root needed)."""

import dataclasses
import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_crosr import datasets, metrics, openset
from keras_crosr.__main__ import main
from keras_crosr.dhrnet import build_dhrnet, inference_model
from keras_crosr.experiments import EXPERIMENTS, Budget, Network, Runner, Training, get_experiment, make_detector
from keras_crosr.experiments import report, warmup_cosine
from keras_crosr.experiments.runner import fingerprint

TINY = dataclasses.replace(
    get_experiment("quickstart"),
    networks=(Network("mnist_cnn", "dhrnet", ("softmax", "openmax", "crosr")),),
    quick=Budget(epochs=2, train=1000, test=100),
    training=Training(epochs=2, batch_size=32, learning_rate=0.05, dropout=0.1),
    tail_size={"mnist_cnn": 5},
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One quick run of the quickstart experiment on a tiny budget, shared by the tests below."""
    path = tmp_path_factory.mktemp("run")
    runner = Runner(TINY, path, quick=True, verbose=0)
    return runner, runner.run(), path


def test_run_records_every_evaluation(tiny_run):
    runner, text, path = tiny_run
    results = json.loads((path / "results.json").read_text())
    for head in ("softmax", "openmax", "crosr"):
        for outlier in ("omniglot", "mnist_noise", "noise"):
            entry = results[f"mnist_cnn-dhrnet/{head}/{outlier}"]
            assert 0.0 <= entry["macro_f1"] <= 1.0 and 0.0 <= entry["auroc"] <= 1.0
            assert len(entry["f1_vs_threshold"]) == 21 and entry["f1_vs_threshold"]["0.50"] == entry["macro_f1"]
            assert entry["detector"] == make_detector(head, tail_size=5).get_params()
    assert 0.0 <= results["mnist_cnn-dhrnet/closed_set_accuracy"] <= 1.0
    assert results["mnist_cnn-dhrnet/training"]["train_samples"] == 1000
    assert results["mnist_cnn-dhrnet/training"]["batch_size"] == 32  # TINY's budget keeps the recipe's
    assert results["mnist_cnn-dhrnet/training"]["resumed_at_epoch"] == 0
    assert (path / "networks" / "mnist_cnn-dhrnet.keras").is_file()
    assert (path / "results.md").read_text() == text


def test_the_report_says_where_the_decisions_went(tiny_run):
    _, text, path = tiny_run
    results = json.loads((path / "results.json").read_text())
    entries = [results[f"mnist_cnn-dhrnet/crosr/{name}"] for name in TINY.evaluations]
    row = "| mnist_cnn | dhrnet | crosr | " + " | ".join(
        [f"{entries[0]['known_rejected']:.3f}"]
        + [f"{e['unknown_rejected']:.3f} / {e['unknown_in_largest_class']:.3f}" for e in entries]) + " |"
    assert "### Where the decisions at threshold 0.5 went" in text and row in text
    assert len({e["known_rejected"] for e in entries}) == 1  # one known test set beside every outlier set
    unrecorded = {k: {m: v for m, v in e.items() if m != "unknown_rejected"} if isinstance(e, dict) else e
                  for k, e in results.items()}  # a run recorded before the rates: no such section
    assert "Where the decisions" not in report.render(TINY, unrecorded)


def test_figure_5_is_drawn_from_the_recorded_curves(tiny_run):
    _, text, path = tiny_run
    figures = json.loads((path / "results.json").read_text())["figures"]
    assert figures == {name: f"figures/f1_vs_threshold_{name}.png" for name in ("mnist_noise", "noise", "omniglot")}
    assert all((path / figure).read_bytes().startswith(b"\x89PNG") for figure in figures.values())
    assert "### Macro-F1 against the rejection threshold (Figure 5)" in text
    assert "![omniglot](figures/f1_vs_threshold_omniglot.png)" in text


def test_recorded_scores_are_those_of_the_saved_network_and_its_head(tiny_run):
    """Every entry made again by hand from the saved network: the runner pairs the right features, labels,
    heads and outlier sets (a flipped unknown score, a shifted label or two swapped entries would change these
    numbers)."""
    runner, _, path = tiny_run
    x_train, y_train, x_test, y_test, outliers = runner.load_outlier_benchmark()
    extract = inference_model(keras.saving.load_model(path / "networks" / "mnist_cnn-dhrnet.keras", compile=False))
    features = {name: extract.predict(x, verbose=0) for name, x in [("train", x_train), ("known", x_test),
                                                                       *outliers.items()]}
    recorded = json.loads((path / "results.json").read_text())
    for head in ("softmax", "openmax", "crosr"):
        detector = make_detector(head, tail_size=5).fit(features["train"], y_train)
        for outlier in ("omniglot", "mnist_noise", "noise"):
            parts = [features["known"], features[outlier]]
            labels = np.concatenate([y_test, np.full(len(outliers[outlier]), detector.n_classes_)])
            expected = metrics.open_set_scores(
                labels, np.concatenate([detector.predict_proba(f) for f in parts]),
                unknown_scores=np.concatenate([detector.decision_function(f) for f in parts]))
            entry = recorded[f"mnist_cnn-dhrnet/{head}/{outlier}"]
            keys = ("macro_f1", "auroc", "known_rejected", "unknown_rejected", "unknown_in_largest_class")
            assert {k: entry[k] for k in keys} == pytest.approx(
                {k: expected[k] for k in keys}, abs=1e-4), (head, outlier)
    assert recorded["mnist_cnn-dhrnet/crosr/noise"]["auroc"] > 0.9  # noise vs digits: far above chance


def test_an_evaluation_made_with_other_detector_settings_is_made_again(tiny_run):
    _, _, path = tiny_run
    network = path / "networks" / "mnist_cnn-dhrnet.keras"
    trained = network.stat().st_mtime_ns
    results = json.loads((path / "results.json").read_text())
    kept = dict(results)
    results["mnist_cnn-dhrnet/crosr/noise"] = {**results["mnist_cnn-dhrnet/crosr/noise"], "macro_f1": -1.0,
                                               "detector": {**results["mnist_cnn-dhrnet/crosr/noise"]["detector"],
                                                            "alpha": 3}}
    results["mnist_cnn-dhrnet/openmax/noise"] = {  # an earlier version recorded no detector settings
        k: v for k, v in results["mnist_cnn-dhrnet/openmax/noise"].items() if k != "detector"}
    (path / "results.json").write_text(json.dumps(results))
    Runner(TINY, path, quick=True, verbose=0).run()
    assert json.loads((path / "results.json").read_text()) == kept  # both made again, with the same numbers

    calibrated = dataclasses.replace(TINY, alpha={"sample": 2})  # e.g. a newer configuration of the experiment
    Runner(calibrated, path, quick=True, verbose=0).run()
    remade = json.loads((path / "results.json").read_text())
    for outlier in ("omniglot", "mnist_noise", "noise"):
        assert remade[f"mnist_cnn-dhrnet/softmax/{outlier}"] == kept[f"mnist_cnn-dhrnet/softmax/{outlier}"]
        for head in ("openmax", "crosr"):
            assert remade[f"mnist_cnn-dhrnet/{head}/{outlier}"]["detector"]["alpha"] == 2
    assert network.stat().st_mtime_ns == trained  # the heads were refitted on the saved network
    (path / "results.json").write_text(json.dumps(kept))  # as it was, for the tests below


def test_the_paper_uses_rank_calibration_except_on_mnist_and_cifar10():
    split = get_experiment("class-split")
    assert {name: split.alpha_for(name) for name in split.evaluations} == {
        "mnist": None, "svhn": 10, "cifar10": None, "cifar+10": None, "cifar+50": None, "tinyimagenet": 10}
    assert get_experiment("dbpedia").alpha_for("dbpedia") == 10
    for experiment in EXPERIMENTS.values():
        if experiment.dataset in ("mnist", "cifar10", "sample"):
            assert experiment.alpha_for(experiment.dataset) is None, experiment.name


def test_report_puts_paper_numbers_beside_ours(tiny_run):
    _, text, _ = tiny_run
    crosr_row = next(line for line in text.splitlines() if "| dhrnet | crosr |" in line)
    assert "(0.793)" in crosr_row and "(0.827)" in crosr_row and "(0.826)" in crosr_row
    assert "Quick run" in text and "Embedded sample" in text


def test_rerun_resumes_without_recomputing(tiny_run, capsys, monkeypatch):
    runner, _, path = tiny_run
    network = path / "networks" / "mnist_cnn-dhrnet.keras"
    before = (network.stat().st_mtime_ns, (path / "results.json").read_text())
    for step in ("train", "features", "fit_heads", "evaluate"):  # a finished run needs none of them again

        def recomputed(*args, step=step, **kwargs):
            raise AssertionError(f"a rerun of a finished run called Runner.{step}")

        monkeypatch.setattr(Runner, step, recomputed)
    rerun = Runner(TINY, path, quick=True, verbose=1)
    rerun.run()
    assert (network.stat().st_mtime_ns, (path / "results.json").read_text()) == before
    out = capsys.readouterr().out
    assert "training" not in out and "reusing trained network" not in out


def test_a_training_draws_its_weights_from_its_seed_and_records_it(tmp_path):
    with pytest.raises(ValueError, match="epochs=0 would evaluate untrained networks"):
        Runner(TINY, tmp_path, epochs=0, verbose=0)
    runner = Runner(TINY, tmp_path, epochs=1, seed=3, verbose=0)  # one step, at the warm-up's rate 0
    runner.workspace.open()
    x, y = np.random.default_rng(0).random((6, 28, 28, 1), dtype="float32"), np.arange(6) % 3
    weights = {key: runner.train(key, "mnist_cnn", "supervised", x, y, 3, **seed).get_weights()
               for key, seed in [("default", {}), ("three", {"seed": 3}), ("four", {"seed": 4})]}
    assert all(np.array_equal(a, b) for a, b in zip(weights["default"], weights["three"]))  # the run's seed
    assert not all(np.array_equal(a, b) for a, b in zip(weights["three"], weights["four"]))
    assert [runner.workspace.results[f"{key}/training"]["seed"] for key in weights] == [3, 3, 4]


def test_cached_features_are_used_only_for_the_inputs_they_came_from(tmp_path, monkeypatch, capsys):
    runner = Runner(TINY, tmp_path, quick=True, verbose=1)
    runner.workspace.open()
    model = build_dhrnet([keras.layers.Conv2D(4, 3, padding="same")], num_classes=3, input_shape=(8, 8, 1))
    rng = np.random.default_rng(0)
    x, other = rng.random((2, 10, 8, 8, 1)).astype("float32")
    first = runner.features("net", model, {"train": x})["train"]
    np.testing.assert_allclose(first["logits"], inference_model(model).predict(x, verbose=0)["logits"], atol=1e-6)
    extracted = []
    real_inference_model = inference_model

    def counting_inference_model(model):
        extracted.append(model)
        return real_inference_model(model)

    monkeypatch.setattr("keras_crosr.experiments.runner.inference_model", counting_inference_model)
    again = runner.features("net", model, {"train": x})["train"]
    assert not extracted and all(np.array_equal(again[k], first[k]) for k in first)
    message = "the cached features .*net.npz of the network net came from other train inputs than this run gives it"
    with pytest.raises(ValueError, match=message):
        runner.features("net", model, {"train": other})  # same shape, other images: its results came from x
    with pytest.raises(ValueError, match=message):  # before a saved network is reused, or a training resumed
        runner.train("net", "mnist_cnn", "dhrnet", other, np.zeros(10, "int64"), 3)
    path = tmp_path / "features" / "net.npz"
    np.savez(path, **{k: v for k, v in np.load(path).items() if not k.endswith("fingerprint")})
    capsys.readouterr()
    swapped = runner.features("net", model, {"train": other})["train"]  # a cache without fingerprints is not trusted
    assert len(extracted) == 1 and not np.allclose(swapped["logits"], first["logits"])
    assert "the cached train features do not say which inputs they came from" in capsys.readouterr().out
    assert str(np.load(path)["train/fingerprint"]) == fingerprint(other)


def test_a_rerun_on_other_data_is_refused_and_changes_nothing(tiny_run, monkeypatch):
    runner, _, path = tiny_run
    recorded = json.loads((path / "results.json").read_text())
    assert sorted(recorded["inputs"]) == ["mnist_noise", "noise", "omniglot", "test", "train"]  # the sample: no file
    # e.g. another data source: the arrays differ, their shapes do not; labels count too
    for changed, array in (("train", "x_train"), ("test", "y_test"), ("omniglot", "omniglot")):
        with monkeypatch.context() as patch:
            reverse_sample_array(patch, array)
            with pytest.raises(ValueError, match=f"holds results on other data than this run loaded: {changed} "):
                Runner(TINY, path, quick=True, verbose=0).run()
    assert json.loads((path / "results.json").read_text()) == recorded


def reverse_sample_array(monkeypatch, name):
    """Makes the embedded sample's array ``name`` come in reverse order."""
    real_sample = datasets.load_sample
    monkeypatch.setattr(datasets, "load_sample", lambda: {**real_sample(), name: real_sample()[name][::-1]})


def test_data_read_from_another_source_is_refused(tmp_path, data_dir):
    from keras_crosr.datasets import _source

    with _source.recording() as used:
        datasets.load_mnist("test", source="local", data_dir=data_dir)
    assert used == {"MNIST": "local mnist.npz"}  # relative to the data root: a run may move between machines
    experiment = dataclasses.replace(
        get_experiment("class-split"), trials=1, networks=(Network("mnist_cnn", "dhrnet", ("softmax",)),),
        quick=Budget(epochs=1, train=300, test=100, batch_size=32), backbones={"mnist": "mnist_cnn"},
    )
    run = tmp_path / "run"
    Runner(experiment, run, quick=True, only=["mnist"], source="local", data_dir=data_dir, verbose=0).run()
    results = json.loads((run / "results.json").read_text())
    assert results["inputs"]["source of MNIST"] == "local mnist.npz"
    assert "Data read from: MNIST: local mnist.npz." in (run / "results.md").read_text()
    assert sorted(results["inputs"]) == ["mnist/trial0/known", "mnist/trial0/train", "mnist/trial0/unknown",
                                         "source of MNIST"]
    results["inputs"]["source of MNIST"] = "tfds mnist"  # as a run on tensorflow-datasets records it
    del results["mnist/trial0/dhrnet/softmax"]  # a trial left to do
    (run / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match=r"other data than this run loaded: source of MNIST \(tfds mnist, now "
                                         r"local mnist.npz\)"):
        Runner(experiment, run, quick=True, only=["mnist"], source="local", data_dir=data_dir, verbose=0).run()


def test_recording_blocks_nest():
    from keras_crosr.datasets import _source

    sample = Path(datasets.__file__).parent / "sample"
    with _source.recording() as outer:
        with _source.recording() as inner:
            _source.resolve("A", "mnist_omniglot.npz", source="local", data_dir=sample)
        _source.resolve("B", "mnist_omniglot.npz", source="local", data_dir=sample)
    _source.resolve("C", "mnist_omniglot.npz", source="local", data_dir=sample)
    assert inner == {"A": "local mnist_omniglot.npz"}
    assert outer == {"A": "local mnist_omniglot.npz", "B": "local mnist_omniglot.npz"}


def test_a_directory_of_an_earlier_version_is_checked_against_every_networks_cache(tmp_path, monkeypatch):
    two = dataclasses.replace(TINY, quick=Budget(epochs=1, train=300, test=100), networks=(
        Network("mnist_cnn", "supervised", ("softmax",)), Network("mnist_cnn", "dhrnet", ("softmax",))))
    Runner(two, tmp_path, quick=True, networks=["supervised"], verbose=0).run()
    results = json.loads((tmp_path / "results.json").read_text())
    del results["inputs"]  # as an earlier version left it: its networks' caches alone say what they were given
    (tmp_path / "results.json").write_text(json.dumps(results))
    reverse_sample_array(monkeypatch, "x_train")
    with pytest.raises(ValueError, match="mnist_cnn-supervised came from other train inputs"):
        Runner(two, tmp_path, quick=True, verbose=0).run()  # the finished supervised network's, before any training
    assert not (tmp_path / "networks" / "mnist_cnn-dhrnet.keras").exists()


def test_a_set_that_could_not_be_loaded_records_no_source_and_a_stopped_first_run_no_directory(
        tmp_path, data_dir, monkeypatch):
    from keras_crosr.datasets import _source

    def offline_tfds_omniglot(*args, **kwargs):  # found where to read it (tensorflow-datasets), then failed to
        _source._resolved("Omniglot", "tfds", "omniglot", "omniglot")
        raise datasets.DatasetNotFoundError("Omniglot: tensorflow-datasets could not download 'omniglot' (offline)")

    monkeypatch.setattr(datasets, "load_omniglot", offline_tfds_omniglot)
    root = tmp_path / "data"  # MNIST without Omniglot
    root.mkdir()
    (root / "mnist.npz").symlink_to(data_dir / "mnist.npz")
    experiment = dataclasses.replace(
        get_experiment("mnist-outliers"), networks=(Network("mnist_cnn", "supervised", ("softmax",)),),
        quick=Budget(epochs=1, train=300, test=100, batch_size=32), tail_size={"mnist_cnn": 5},
    )
    run = tmp_path / "run"
    options = {"quick": True, "source": "local", "data_dir": str(root), "verbose": 0}
    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Runner, "train", interrupted)
        with pytest.raises(KeyboardInterrupt):
            Runner(experiment, run, **options).run()
    assert not run.exists()  # its settings, data fingerprints and unavailable sets are no result
    Runner(experiment, run, **options).run()
    inputs = json.loads((run / "results.json").read_text())["inputs"]
    assert sorted(inputs) == ["mnist_noise", "noise", "source of MNIST", "test", "train"]


def test_an_interrupted_training_is_not_resumed_on_other_data(tmp_path, monkeypatch):
    small = dataclasses.replace(TINY, quick=Budget(epochs=2, train=300, test=100))

    class CrashAfterAnEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            raise Crash("crash after epoch 1")

    monkeypatch.setattr(keras.callbacks, "TerminateOnNaN", CrashAfterAnEpoch)
    with pytest.raises(Crash):
        Runner(small, tmp_path, quick=True, verbose=0).run()
    monkeypatch.undo()
    reverse_sample_array(monkeypatch, "x_train")
    with pytest.raises(ValueError, match="other data than this run loaded: train"):
        Runner(small, tmp_path, quick=True, verbose=0).run()
    assert (tmp_path / "networks" / "mnist_cnn-dhrnet.backup").is_dir()  # kept for a rerun on its own data


def test_a_first_run_stopped_before_any_result_leaves_no_directory(tmp_path, monkeypatch):
    def stopped(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Runner, "train", stopped)
    with pytest.raises(KeyboardInterrupt):
        Runner(TINY, tmp_path / "run", quick=True, verbose=0).run()
    assert not (tmp_path / "run").exists()  # the data fingerprints alone are no result: other settings may follow


def test_a_diverged_training_is_reported_not_saved_and_trained_again_by_a_rerun(tmp_path, monkeypatch):
    small = dataclasses.replace(TINY, quick=Budget(epochs=1, train=300, test=100))
    real_benchmark = Runner.load_outlier_benchmark

    def nan_images(self):  # a NaN in the first batch: the loss is NaN at once, on any machine
        x_train, *rest = real_benchmark(self)
        x_train = x_train.copy()
        x_train[0, 0, 0, 0] = np.nan
        return (x_train, *rest)

    monkeypatch.setattr(Runner, "load_outlier_benchmark", nan_images)
    text = Runner(small, tmp_path, quick=True, verbose=0).run()
    assert "[mnist_cnn-dhrnet] training diverged (NaN/inf loss after 1 epochs) with learning rate 0.05" in text
    assert not list((tmp_path / "networks").iterdir())  # neither the network nor a BackupAndRestore state
    recorded = json.loads((tmp_path / "results.json").read_text())
    assert sorted(recorded) == ["inputs", "problems/mnist_cnn-dhrnet", "run"]  # of the network: its problem only
    assert main(["report", "quickstart", str(tmp_path / "results.json")]) == 2  # no results to render
    monkeypatch.setattr(Runner, "load_outlier_benchmark", real_benchmark)
    rerun = Runner(small, tmp_path, quick=True, verbose=0)
    assert "diverged" not in rerun.run()
    assert "problems/mnist_cnn-dhrnet" not in rerun.workspace.results
    assert rerun.workspace.results["mnist_cnn-dhrnet/training"]["resumed_at_epoch"] == 0
    assert (tmp_path / "networks" / "mnist_cnn-dhrnet.keras").is_file()


class Crash(RuntimeError):
    """Stands in for a crash (power cut, time limit) in the middle of a training."""


@pytest.mark.parametrize("crashed_after", [1, 2])  # 2: the last epoch was saved, the network was not
def test_interrupted_training_resumes_at_its_last_finished_epoch(tmp_path, monkeypatch, capsys, crashed_after):
    class CrashAfterAnEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # runs after BackupAndRestore saved this epoch
            if epoch + 1 == crashed_after:
                raise Crash(f"crash after epoch {epoch + 1}")

    small = dataclasses.replace(TINY, quick=Budget(epochs=2, train=300, test=100))  # the bookkeeping, cheaply
    monkeypatch.setattr(keras.callbacks, "TerminateOnNaN", CrashAfterAnEpoch)
    with pytest.raises(Crash, match=f"after epoch {crashed_after}"):
        Runner(small, tmp_path, quick=True, verbose=0).run()
    networks = tmp_path / "networks"
    assert (networks / "mnist_cnn-dhrnet.backup").is_dir() and not (networks / "mnist_cnn-dhrnet.keras").exists()
    monkeypatch.undo()
    capsys.readouterr()
    text = Runner(small, tmp_path, quick=True, verbose=1).run()
    out = capsys.readouterr().out
    assert f"[mnist_cnn-dhrnet] resumed an interrupted training after its epoch {crashed_after}" in out
    assert "Epoch 1/2" not in out and ("Epoch 2/2" in out) == (crashed_after == 1)  # only unfinished epochs
    training = json.loads((tmp_path / "results.json").read_text())["mnist_cnn-dhrnet/training"]
    assert training["epochs"] == 2 and training["resumed_at_epoch"] == crashed_after
    if crashed_after == 1:
        assert "2 epochs on 300 samples, resumed after epoch 1: " in text and "s for the last 1 (" in text
    else:
        assert "2 epochs on 300 samples, resumed after its last epoch: " in text
        assert "s to restore and save it (" in text
    assert (networks / "mnist_cnn-dhrnet.keras").is_file() and not (networks / "mnist_cnn-dhrnet.backup").exists()


def test_skipped_heads_are_filled_in_by_a_later_run(tmp_path, capsys):
    small = dataclasses.replace(TINY, quick=Budget(epochs=1, train=300, test=100))
    Runner(small, tmp_path, quick=True, skip_heads=["openmax"], verbose=0).run()
    first = json.loads((tmp_path / "results.json").read_text())
    assert not [key for key in first if "/openmax/" in key] and "mnist_cnn-dhrnet/crosr/noise" in first
    Runner(small, tmp_path, quick=True, verbose=1).run()
    assert "reusing trained network" in capsys.readouterr().out
    second = json.loads((tmp_path / "results.json").read_text())
    assert sorted(key for key in second if "/openmax/" in key) == [
        f"mnist_cnn-dhrnet/openmax/{outlier}" for outlier in ("mnist_noise", "noise", "omniglot")
    ]
    assert {key: second[key] for key in first} == first  # nothing finished is made again


def test_a_dbpedia_directory_is_only_resumed_with_its_data_options(tmp_path):
    Runner("dbpedia", tmp_path).workspace.open()
    assert json.loads((tmp_path / "run.json").read_text())["data_options"] == {"max_length": 100, "max_tokens": 5000}
    other = dataclasses.replace(get_experiment("dbpedia"), data_options={"max_length": 300, "max_tokens": 5000})
    with pytest.raises(ValueError, match=r"other settings: data_options=\{'max_length': 100, 'max_tokens': 5000\}"):
        Runner(other, tmp_path)


def test_cli_says_what_stopped_a_run(tmp_path, monkeypatch, capsys):
    def stopped(self):
        raise ValueError("the network file is missing")

    monkeypatch.setattr(Runner, "run", stopped)
    assert main(["run", "quickstart", "--output", str(tmp_path / "out"), "--verbose", "0"]) == 2
    assert capsys.readouterr().err == "error: the network file is missing\n"
    assert main(["quickstart", "--seed", "-1", "--output", str(tmp_path / "out")]) == 2
    assert "seed must be a non-negative integer; got -1" in capsys.readouterr().err


def test_a_recorded_network_whose_file_is_gone_is_not_silently_trained_again(tmp_path):
    small = dataclasses.replace(TINY, quick=Budget(epochs=1, train=300, test=100))
    Runner(small, tmp_path, quick=True, skip_heads=["openmax"], verbose=0).run()
    (tmp_path / "networks" / "mnist_cnn-dhrnet.keras").unlink()
    before = (tmp_path / "results.json").read_text()
    with pytest.raises(ValueError, match=r"records the network mnist_cnn-dhrnet as trained, but its file .* missing"):
        Runner(small, tmp_path, quick=True, verbose=0).run()  # openmax is pending: it would need the network
    assert (tmp_path / "results.json").read_text() == before
    assert not (tmp_path / "networks" / "mnist_cnn-dhrnet.keras").exists()


def test_networks_and_features_are_written_whole_and_an_unreadable_cache_is_extracted_again(tmp_path, capsys):
    small = dataclasses.replace(TINY, quick=Budget(epochs=1, train=300, test=100))
    Runner(small, tmp_path, quick=True, skip_heads=["openmax"], verbose=0).run()
    assert sorted(p.name for p in (tmp_path / "networks").iterdir()) == ["mnist_cnn-dhrnet.keras"]
    assert sorted(p.name for p in (tmp_path / "features").iterdir()) == ["mnist_cnn-dhrnet.npz"]
    cache = tmp_path / "features" / "mnist_cnn-dhrnet.npz"
    cache.write_bytes(cache.read_bytes()[:1000])  # as a crash in the middle of np.savez would have left it
    Runner(small, tmp_path, quick=True, verbose=1).run()
    assert re.search(r"\[mnist_cnn-dhrnet\] the cached features .*mnist_cnn-dhrnet\.npz are unreadable \(",
                     capsys.readouterr().out)
    results = json.loads((tmp_path / "results.json").read_text())
    assert "mnist_cnn-dhrnet/openmax/noise" in results
    with np.load(cache) as archive:
        assert {"train/logits", "known/logits", "noise/fingerprint"} <= set(archive.files)


def test_sample_omniglot_outliers_are_a_seeded_draw_not_the_first_characters(tmp_path):
    from keras_crosr.datasets import load_sample
    from keras_crosr.experiments.runner import subsample

    omniglot = load_sample()["omniglot"]  # stored in source order: alphabet after alphabet
    x_test = np.zeros((500, 28, 28, 1), "float32")
    for seed in (0, 1):
        drawn = Runner(TINY, tmp_path, quick=True, seed=seed, verbose=0).load_outliers("omniglot", x_test)
        np.testing.assert_array_equal(drawn, omniglot[subsample(len(omniglot), 500, seed)])
        assert not np.array_equal(drawn, omniglot[:500])


def test_a_results_file_alone_vouches_for_its_settings(tmp_path):
    """A run directory with results.json but no run.json (e.g. a recorded benchmark copied to resume it)."""
    settings = Runner(TINY, tmp_path, quick=True, verbose=0).settings()
    (tmp_path / "results.json").write_text(json.dumps({"run": settings}))
    with pytest.raises(ValueError, match=r"holds a run made with other settings: seed=0 \(asked: 1\)"):
        Runner(TINY, tmp_path, quick=True, seed=1, verbose=0)
    assert Runner(TINY, tmp_path, quick=True, verbose=0).workspace.results == {"run": settings}


def test_interrupted_evaluation_is_filled_in(tiny_run):
    _, _, path = tiny_run
    results = json.loads((path / "results.json").read_text())
    removed = results.pop("mnist_cnn-dhrnet/crosr/noise")
    (path / "results.json").write_text(json.dumps(results))
    Runner(TINY, path, quick=True, verbose=0).run()
    refilled = json.loads((path / "results.json").read_text())["mnist_cnn-dhrnet/crosr/noise"]
    assert refilled == removed  # same network, same cached features, same detector: same numbers


def test_a_failed_head_is_tried_again_and_reported_once(tiny_run):
    _, _, path = tiny_run
    results = json.loads((path / "results.json").read_text())
    kept = {name: results[f"mnist_cnn-dhrnet/openmax/{name}"] for name in ("omniglot", "noise")}
    for name in kept:
        results[f"mnist_cnn-dhrnet/openmax/{name}"] = {"status": "failed", "message": "too few samples"}
    text = report.render(TINY, results)
    assert text.count("too few samples") == 1
    assert "- mnist_cnn-dhrnet/openmax (noise, omniglot): too few samples" in text
    (path / "results.json").write_text(json.dumps(results))
    Runner(TINY, path, quick=True, verbose=0).run()
    refilled = json.loads((path / "results.json").read_text())
    assert {name: refilled[f"mnist_cnn-dhrnet/openmax/{name}"] for name in kept} == kept


def test_a_run_directory_is_only_resumed_with_its_own_settings(tiny_run):
    _, _, path = tiny_run
    settings = json.loads((path / "run.json").read_text())
    assert settings["experiment"] == "quickstart" and settings["quick"] is True
    assert (settings["epochs"], settings["seed"], settings["train"], settings["batch_size"]) == (2, 0, 1000, 32)
    with pytest.raises(ValueError, match=r"other settings: epochs=2 \(asked: 3\)"):
        Runner(TINY, path, quick=True, epochs=3)
    with pytest.raises(ValueError, match=r"seed=0 \(asked: 5\)"):
        Runner(TINY, path, quick=True, seed=5)
    with pytest.raises(ValueError, match=r"quick=True \(asked: False\)"):
        Runner(TINY, path)
    assert json.loads((path / "run.json").read_text()) == settings


def test_the_runner_clips_the_gradients_to_the_recipes_global_norm(tmp_path, monkeypatch):
    from keras_crosr.experiments import runner as runner_module

    clipped = dataclasses.replace(TINY, quick=Budget(epochs=1, train=300, test=100),
                                  training=dataclasses.replace(TINY.training, clipnorm=1.5))
    seen, real_compile = [], runner_module.compile_dhrnet

    def recording(model, optimizer, **kwargs):
        seen.append(optimizer.global_clipnorm)
        return real_compile(model, optimizer, **kwargs)

    monkeypatch.setattr(runner_module, "compile_dhrnet", recording)
    runner = Runner(clipped, tmp_path, quick=True, verbose=0)
    assert runner.settings()["clipnorm"] == 1.5
    runner.run()
    assert seen == [1.5, 1.5]  # the training's optimizer, then the one saved with the network
    saved = keras.saving.load_model(tmp_path / "networks" / "mnist_cnn-dhrnet.keras")
    assert saved.optimizer.global_clipnorm == 1.5
    assert Runner(TINY, tmp_path / "unclipped", quick=True).settings()["clipnorm"] is None


def test_a_run_recorded_before_gradient_clipping_resumes_only_unclipped(tmp_path):
    experiment = get_experiment("cifar10-outliers")
    clipped = Runner(experiment, tmp_path / "new", verbose=0)
    assert clipped.settings()["clipnorm"] == 5.0
    old = tmp_path / "old"  # the run.json of a run made before `clipnorm` existed: its networks trained unclipped
    old.mkdir()
    (old / "run.json").write_text(json.dumps({k: v for k, v in clipped.settings().items() if k != "clipnorm"}))
    with pytest.raises(ValueError, match=r"other settings: clipnorm=None \(asked: 5.0\)"):
        Runner(experiment, old, verbose=0)
    unclipped = dataclasses.replace(experiment, training=dataclasses.replace(experiment.training, clipnorm=None))
    assert Runner(unclipped, old, verbose=0).settings()["clipnorm"] is None


def test_a_run_directory_of_an_earlier_version_is_checked_against_its_training_records(tmp_path):
    record = {"epochs": 15, "batch_size": 128, "learning_rate": 0.05, "train_samples": 60000}
    (tmp_path / "results.json").write_text(json.dumps({"mnist_cnn-dhrnet/training": record}))
    with pytest.raises(ValueError, match=r"epochs=15 \(asked: 3\)"):
        Runner("mnist-outliers", tmp_path, epochs=3)
    assert Runner("mnist-outliers", tmp_path).epochs == 15  # the configured recipe made it: resumable
    oldest = {"mnist_cnn-supervised/training": {"epochs": 15, "train_samples": 60000}}  # no batch size, rate
    (tmp_path / "results.json").write_text(json.dumps(oldest))
    assert Runner("mnist-outliers", tmp_path).epochs == 15
    with pytest.raises(ValueError, match=r"epochs=15 \(asked: 3\)"):
        Runner("mnist-outliers", tmp_path, epochs=3)


def test_features_are_the_inference_models_logits_and_latent(tmp_path):
    runner = Runner(TINY, tmp_path, quick=True, verbose=0)
    runner.workspace.open()
    model = build_dhrnet("mnist_cnn", num_classes=3, variant="dhrnet")
    x = np.random.default_rng(0).uniform(size=(6, 28, 28, 1)).astype("float32")
    features = runner.features("net", model, {"train": x})["train"]
    expected = inference_model(model).predict(x, verbose=0)
    assert set(features) == {"logits", "latent"}
    for output in features:
        np.testing.assert_allclose(features[output], expected[output], rtol=1e-5, atol=1e-6)


def test_class_split_runs_each_available_split_and_reports_the_others(tmp_path, data_dir, capsys):
    root = tmp_path / "data"  # MNIST only: SVHN and CIFAR-100 (for CIFAR+10) are missing
    root.mkdir()
    (root / "mnist.npz").symlink_to(data_dir / "mnist.npz")
    experiment = dataclasses.replace(
        get_experiment("class-split"), trials=1, networks=(Network("neal_cnn", "dhrnet", ("softmax", "crosr")),),
        quick=Budget(epochs=2, train=1000, test=200, batch_size=32, learning_rate=0.05), tail_size={"mnist_cnn": 5},
        backbones={"mnist": "mnist_cnn"},  # the paper's 9-conv network is slow for a test; its 28x28 digits unpadded
    )
    run = tmp_path / "run"
    text = Runner(experiment, run, quick=True, only=["svhn", "mnist", "cifar+10"], source="local",
                  data_dir=str(root), verbose=0).run()
    results = json.loads((run / "results.json").read_text())
    assert "KERAS_CROSR_DATA" in results["unavailable/svhn"] and "svhn" in results["unavailable/svhn"].lower()
    assert "unavailable/cifar+10" in results
    assert "svhn not evaluated" in text
    assert sorted(p.name for p in (run / "networks").glob("*.keras")) == ["mnist-t0-mnist_cnn-dhrnet.keras"]
    with np.load(run / "features" / "mnist-t0-mnist_cnn-dhrnet.npz") as cached:
        assert cached["train/logits"].shape == (1000, 6) and len(cached["unknown/logits"]) == 200  # 6 known digits
    entry = results["mnist/trial0/dhrnet/crosr"]
    assert entry["detector"] == make_detector("crosr", tail_size=5).get_params()  # MNIST: no rank calibration
    assert 0.5 < entry["auroc"] <= 1.0 and 0.0 < results["mnist/trial0/dhrnet/closed_set_accuracy"] <= 1.0
    assert "| dhrnet | crosr |" in text and "(n=1)" in text

    capsys.readouterr()
    Runner(experiment, run, quick=True, only=["mnist"], source="local", data_dir=str(root), verbose=1).run()
    assert "mnist-t0" not in capsys.readouterr().out  # finished: the network is not even loaded


def test_quick_budget_replaces_epochs_and_where_set_batch_size_and_learning_rate(tmp_path):
    experiment = dataclasses.replace(TINY, quick=Budget(epochs=1, train=10, test=10, batch_size=8, learning_rate=1e-3))
    quick = Runner(experiment, tmp_path / "quick", quick=True, verbose=0)
    assert quick.training == dataclasses.replace(TINY.training, epochs=1, batch_size=8, learning_rate=1e-3)
    assert quick.epochs == 1
    assert Runner(experiment, tmp_path / "full", verbose=0).training == TINY.training
    assert Runner(experiment, tmp_path / "cli", quick=True, epochs=4, verbose=0).epochs == 4
    assert str(experiment.quick) == "Budget(epochs=1, train=10, test=10, batch_size=8, learning_rate=0.001)"


@pytest.mark.parametrize(
    "steps_per_epoch, epochs, warmup",
    [(100, 15, 100), (100, 5, 50), (3, 2, 1), (1, 1, 1)],  # 10 % of the steps, at most one epoch, at least one step
)
def test_warmup_cosine_rises_linearly_to_the_rate_then_decays_by_cosine_to_zero(steps_per_epoch, epochs, warmup):
    schedule = warmup_cosine(0.05, steps_per_epoch, epochs)
    total = steps_per_epoch * epochs
    rate = np.array([float(keras.ops.convert_to_numpy(schedule(step))) for step in range(total + 1)])
    np.testing.assert_allclose(rate[: warmup + 1], 0.05 * np.arange(warmup + 1) / warmup, rtol=1e-5, atol=1e-9)
    progress = (np.arange(warmup, total + 1) - warmup) / max(1, total - warmup)
    np.testing.assert_allclose(rate[warmup:], 0.025 * (1 + np.cos(np.pi * progress)), rtol=1e-5, atol=1e-7)


def test_quick_budget_trains_its_networks_unless_the_user_names_others(tmp_path, capsys):
    cifar = get_experiment("cifar10-outliers")
    quick = Runner(cifar, tmp_path / "quick", quick=True)
    assert [n.key for n in quick.networks] == list(cifar.quick.networks)
    assert "name others with --networks (densenet92-supervised, densenet92-dhrnet)" in capsys.readouterr().out
    chosen = Runner(cifar, tmp_path / "chosen", quick=True, networks=["densenet92-dhrnet"], verbose=0)
    assert [n.key for n in chosen.networks] == ["densenet92-dhrnet"]
    assert len(Runner(cifar, tmp_path / "full", verbose=0).networks) == len(cifar.networks)


def test_quick_budget_makes_its_evaluations_unless_the_user_names_others(tmp_path, capsys):
    split = get_experiment("class-split")
    quick = Runner(split, tmp_path / "quick", quick=True)
    assert quick.evaluations == split.quick.evaluations == ("mnist", "cifar10")
    assert "name others with --only (svhn, cifar+10, cifar+50, tinyimagenet)" in capsys.readouterr().out
    assert Runner(split, tmp_path / "chosen", quick=True, only=["tinyimagenet"], verbose=0).evaluations == (
        "tinyimagenet",
    )
    assert Runner(split, tmp_path / "full", verbose=0).evaluations == split.evaluations
    dbpedia = get_experiment("dbpedia")  # its evaluations are ints: numbers of unknown classes
    narrowed = dataclasses.replace(dbpedia, quick=dataclasses.replace(dbpedia.quick, evaluations=(4, 0)))
    assert Runner(narrowed, tmp_path / "dbpedia", quick=True, verbose=0).evaluations == (4, 0)


@pytest.mark.parametrize("name, only, prefixes", [
    ("class-split", "mnist", ["mnist/trial1", "mnist/trial4"]),
    ("dbpedia", "4", ["4/8/seed1", "4/8/seed4"]),  # DBpedia's trials are seeds
])
def test_trials_restrict_the_trials_run(tmp_path, monkeypatch, name, only, prefixes):
    experiment = dataclasses.replace(get_experiment(name), trials=5)
    runner = Runner(experiment, tmp_path, only=[only], trials=[4, 1], verbose=0)
    assert runner.trials == (1, 4)
    visited = []
    monkeypatch.setattr(runner, "_pending_heads", lambda prefix, **where: visited.append(prefix) or {})
    getattr(runner, f"_run_{experiment.kind}")()
    assert visited == prefixes
    assert Runner(experiment, tmp_path, verbose=0).trials == (0, 1, 2, 3, 4)


def test_each_class_split_trial_trains_its_own_networks_on_its_own_split(tmp_path, monkeypatch, data_dir):
    from keras_crosr import protocols
    from keras_crosr.experiments.runner import subsample

    runner = Runner("class-split", tmp_path, quick=True, only=["mnist"], trials=[1, 3], data_dir=data_dir,
                    verbose=0)
    trained = []

    def record_training(key, backbone, variant, x_train, y_train, num_classes, *, seed=None, **kwargs):
        trained.append((key, fingerprint(x_train), fingerprint(y_train), num_classes, seed))
        return None  # as after a diverged training: nothing more is done with this network

    monkeypatch.setattr(runner, "train", record_training)
    runner.workspace.open()
    runner._run_class_split()
    expected = []
    for trial in (1, 3):
        split = protocols.make_class_separation("mnist", trial, data_dir=data_dir)
        keep = subsample(len(split.x_train), runner.limit("train"), runner.seed + trial)
        digits = split.x_train[keep]
        assert digits.shape[1:] == (28, 28, 1)
        for variant in ("supervised", "dhrnet"):  # the paper's Table 5 network, on digits zero-padded to its 32x32
            expected.append((f"mnist-t{trial}-neal_cnn-{variant}", fingerprint(datasets.pad_images(digits, (32, 32))),
                             fingerprint(split.y_train[keep]), 6, runner.seed + trial))  # each trial its own weights
    assert trained == expected
    assert expected[0][1] != expected[2][1]  # the two trials see other images


def test_class_split_uses_the_papers_table5_network_unless_told_otherwise():
    split = get_experiment("class-split")
    assert {n.backbone for n in split.networks} == {"neal_cnn"}
    assert {split.backbone_for(n, d) for n in split.networks for d in split.evaluations} == {"neal_cnn"}
    ours = dataclasses.replace(split, backbones={"mnist": "mnist_cnn"})
    assert [ours.backbone_for(n, "mnist") for n in ours.networks] == ["mnist_cnn", "mnist_cnn"]
    assert [ours.backbone_for(n, "cifar10") for n in ours.networks] == ["neal_cnn", "neal_cnn"]


@pytest.mark.parametrize("name, backbones, message", [
    ("class-split", {"fashion": "mnist_cnn"}, r"backbones= names \['fashion'\], not among class-split's data sets"),
    ("class-split", {"mnist": "lenet"}, r"backbones= names unknown backbones \['lenet'\]; valid names are "),
    ("mnist-outliers", {"mnist": "neal_cnn"}, "mnist-outliers is not one"),
])
def test_backbones_that_name_nothing_are_refused(tmp_path, name, backbones, message):
    experiment = dataclasses.replace(get_experiment(name), backbones=backbones)
    with pytest.raises(ValueError, match=message):
        Runner(experiment, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_class_split_runs_record_their_splits_and_older_runs_resume_as_arpl(tmp_path):
    from keras_crosr.__main__ import _parser

    runner = Runner("class-split", tmp_path / "new", only=["mnist"], verbose=0)
    assert runner.settings()["splits"] == "neal"  # Neal et al.'s trials, which the paper follows
    runner.workspace.open()
    with pytest.raises(ValueError, match=r"splits='neal' \(asked: 'arpl'\)"):
        Runner("class-split", tmp_path / "new", only=["mnist"], splits="arpl", verbose=0)
    old = tmp_path / "old"  # the run.json of a run made before `splits` existed, on the ARPL lists
    old.mkdir()
    (old / "run.json").write_text(json.dumps({k: v for k, v in runner.settings().items() if k != "splits"}))
    with pytest.raises(ValueError, match=r"splits='arpl' \(asked: 'neal'\)"):
        Runner("class-split", old, only=["mnist"], verbose=0)
    assert Runner("class-split", old, only=["mnist"], splits="arpl", verbose=0).splits == "arpl"
    assert "splits" not in Runner("mnist-outliers", tmp_path / "outliers", verbose=0).settings()
    with pytest.raises(ValueError, match="splits= chooses the trials of a class separation; mnist-outliers is not"):
        Runner("mnist-outliers", tmp_path / "outliers", splits="arpl", verbose=0)
    with pytest.raises(ValueError, match=r"splits must be one of \('neal', 'arpl'\); got 'vaze'"):
        Runner("class-split", tmp_path / "bad", splits="vaze", verbose=0)
    assert _parser().parse_args(["run", "class-split", "--splits", "arpl"]).splits == "arpl"
    assert _parser().parse_args(["run", "class-split"]).splits is None  # the Runner's default, "neal"


def test_report_of_class_split_says_whose_splits_it_evaluated():
    experiment = get_experiment("class-split")
    neal = report.render(experiment, {}, settings={"splits": "neal"}).split("Caveats:")[1]
    assert "- Splits: the trials of Neal et al.'s released code for MNIST, SVHN and CIFAR-10 (unknown classes " \
           "[3, 6, 7, 8], [1, 2, 4, 6]" in neal
    for settings in ({"splits": "arpl"}, None):  # a run recorded without its splits used the ARPL lists
        assert "- Splits: the ARPL lists" in report.render(experiment, {}, settings=settings)
    assert "Splits:" not in report.render(get_experiment("mnist-outliers"), {}, settings={"splits": "neal"})


def test_a_class_split_directory_of_another_backbone_is_not_resumed(tmp_path):
    Runner("class-split", tmp_path, only=["mnist"], verbose=0).workspace.open()
    record = {"backbone": "mnist_cnn", "variant": "dhrnet", "epochs": 10, "train_samples": 36017, "batch_size": 128,
              "learning_rate": 0.05, "wall_time_s": 1.0, "backend": "tensorflow", "resumed_at_epoch": 0}
    (tmp_path / "results.json").write_text(json.dumps({"mnist-t0-mnist_cnn-dhrnet/training": record}))
    with pytest.raises(ValueError, match=re.escape(
            f"{tmp_path} holds mnist networks trained on mnist_cnn (mnist-t0-mnist_cnn-dhrnet); this run trains "
            "mnist on neal_cnn. Resume it with the experiment's backbones={'mnist': 'mnist_cnn'}, or choose "
            "another output directory.")):
        Runner("class-split", tmp_path, only=["mnist"], verbose=0)
    with pytest.raises(ValueError, match="holds mnist networks trained on mnist_cnn"):
        Runner("class-split", tmp_path, verbose=0)  # every data set, MNIST among them
    ours = dataclasses.replace(get_experiment("class-split"), backbones={"mnist": "mnist_cnn"})
    assert Runner(ours, tmp_path, only=["mnist"], verbose=0).evaluations == ("mnist",)
    assert Runner("class-split", tmp_path, only=["cifar10"], verbose=0).evaluations == ("cifar10",)


@pytest.mark.parametrize("trials", [[5], [-1], [], [1, 1], [True], [0.0]])
def test_bad_trials_are_refused(tmp_path, trials):
    with pytest.raises(ValueError, match=r"trials must be distinct indices in range\(5\) \(class-split has 5\)"):
        Runner("class-split", tmp_path, trials=trials)


def test_make_detector_names():
    assert isinstance(make_detector("crosr", tail_size=7), openset.CROSR)
    assert make_detector("openmax", tail_size=7).tail_size == 7
    assert make_detector("ocsvm").use_latent is False
    assert make_detector("crosr_isoforest").estimator == "isoforest"
    with pytest.raises(ValueError, match="unknown head 'svm'"):
        make_detector("svm")


def test_bad_runner_arguments(tmp_path):
    with pytest.raises(ValueError, match="epochs must be a non-negative integer; got -3"):
        Runner("mnist-outliers", tmp_path, epochs=-3)
    for seed in (-1, 1.5, "0"):
        with pytest.raises(ValueError, match=f"seed must be a non-negative integer; got {seed!r}"):
            Runner("mnist-outliers", tmp_path, seed=seed)
    assert Runner("dbpedia", tmp_path, only=[10, "8"]).evaluations == (10, 8)  # the values, or as the CLI gives
    with pytest.raises(ValueError, match="DBpedia data set is read from local files only"):
        Runner("dbpedia", tmp_path, source="tfds")
    with pytest.raises(ValueError, match=r"cannot skip \['crossr'\]: mnist-outliers's heads are"):
        Runner("mnist-outliers", tmp_path, skip_heads=["crossr"])
    with pytest.raises(ValueError, match="unknown experiment 'mnist'"):
        get_experiment("mnist")
    with pytest.raises(ValueError, match="not among mnist-outliers's evaluations"):
        Runner("mnist-outliers", tmp_path, only=["lsun_crop"])
    with pytest.raises(ValueError, match="no network of mnist-outliers matches"):
        Runner("mnist-outliers", tmp_path, networks=["densenet92-dhrnet"])
    with pytest.raises(ValueError, match=r"no network of mnist-outliers matches \['supervsied'\]"):
        Runner("mnist-outliers", tmp_path, networks=["dhrnet", "supervsied"])


def test_an_outlier_set_that_loads_now_is_no_longer_reported_unavailable(tmp_path, data_dir):
    runner = Runner("mnist-outliers", tmp_path, source="local", data_dir=str(data_dir), verbose=0)
    runner.workspace.open()
    runner.workspace.record("unavailable/noise", "an earlier run found no data")
    noise = runner.load_outliers("noise", np.zeros((10, 28, 28, 1), "float32"))
    assert len(noise) == 10000
    assert "unavailable/noise" not in json.loads((tmp_path / "results.json").read_text())
    assert "noise not evaluated" not in report.render(runner.experiment, runner.workspace.results)


def test_a_set_evaluated_by_an_earlier_run_is_not_reported_as_never_evaluated():
    experiment = get_experiment("cifar10-outliers")
    results = {"unavailable/lsun_crop": "no LSUN folder", "unavailable/lsun_resize": "no LSUN_resize folder",
               "cifar_cnn-dhrnet/crosr/lsun_resize": {"macro_f1": 0.5, "auroc": 0.6}}
    text = report.render(experiment, results)
    assert "- lsun_crop not evaluated: no LSUN folder" in text
    assert "- lsun_resize was not available to the last run (its numbers come from an earlier one): no" in text


def test_report_of_class_split_averages_trials():
    experiment = get_experiment("class-split")
    results = {f"mnist/trial{t}/dhrnet/crosr": {"auroc": a} for t, a in enumerate([0.9, 0.8])}
    results["mnist/trial2/dhrnet/crosr"] = {"status": "failed", "message": "diverged"}
    text = report.render(experiment, results)
    row = next(line for line in text.splitlines() if line.startswith("| dhrnet | crosr |"))
    assert "0.850 ± 0.050 (n=2)" in row  # the trials' own spread (ddof=0; ddof=1 would give 0.071), as the header says
    assert "mean ± std (population, ddof=0)" in text
    assert "mnist/trial2/dhrnet/crosr: diverged" in text


def test_report_of_class_split_names_networks_trained_on_another_backbone():
    experiment = get_experiment("class-split")  # its networks: neal_cnn, the paper's Table 5 backbone
    record = {"variant": "dhrnet", "epochs": 1, "train_samples": 10, "wall_time_s": 1.0, "backend": "tensorflow"}
    results = {"mnist-t0-mnist_cnn-dhrnet/training": {**record, "backbone": "mnist_cnn"},
               "cifarplus10-t0-neal_cnn-dhrnet/training": {**record, "backbone": "neal_cnn"}}
    caveats = report.render(experiment, results).split("Caveats:")[1]
    assert "- mnist: networks trained on mnist_cnn, not on neal_cnn" in caveats
    assert "cifar+10:" not in caveats  # trained on the experiment's own backbone
    assert "networks trained on" not in report.render(experiment, {}).split("Caveats:")[1]


def test_dbpedia_report_of_several_seeds_gives_their_mean_std_and_count():
    experiment = get_experiment("dbpedia")
    one = {"4/14/seed0/dhrnet/crosr": {"macro_f1": 0.6}}
    several = {f"4/14/seed{seed}/dhrnet/crosr": {"macro_f1": f1} for seed, f1 in ((0, 0.6), (2, 0.7), (10, 0.8))}
    several["4/14/seed1/dhrnet/crosr"] = {"error": "a failed head"}
    assert "| dhrnet | crosr | 0.600 (0.582) |" in report.render(experiment, one)
    text = report.render(experiment, several)
    assert "| dhrnet | crosr | 0.700 ± 0.082 (n=3) (0.582) |" in text
    assert "mean ± std (population, ddof=0) over the seeds (seed0, seed2, seed10)" in text
    assert "over the seeds" not in report.render(experiment, one)


def test_report_lists_the_papers_methods_we_do_not_run():
    """Table 3's counterfactual row (plain CNN) and Table 4's DOC row appear as paper-only rows, F1 only."""
    cifar = report.render(get_experiment("cifar10-outliers"), {})
    counterfactual = "| cifar_cnn | paper | counterfactual | – (0.636) | – (0.635) | – (0.650) | – (0.648) |"
    assert cifar.count(counterfactual) == 1
    dbpedia = report.render(get_experiment("dbpedia"), {})
    assert "| paper | doc | – (0.507) | – (0.568) | – (0.733) | – (0.985) |" in dbpedia
    assert "| paper | crosr |" not in dbpedia  # a method we run has our row, with the paper's number beside it
    densenet_only = dataclasses.replace(get_experiment("cifar10-outliers"),
                                        networks=(Network("densenet92", "dhrnet", ("crosr",)),))
    assert "counterfactual" not in report.render(densenet_only, {})  # the row belongs to the plain CNN
    assert "| paper |" not in report.render(get_experiment("mnist-outliers"), {})


def test_cli_list_and_errors(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPERIMENTS)
    assert main(["run", "no-such-experiment"]) == 2
    assert "unknown experiment 'no-such-experiment'" in capsys.readouterr().err


def test_cli_list_details_names_what_only_and_networks_take(capsys):
    assert main(["list", "--details"]) == 0
    out = capsys.readouterr().out
    assert "--only: omniglot mnist_noise noise" in out
    assert "--only: mnist svhn cifar10 cifar+10 cifar+50 tinyimagenet" in out
    assert "--networks: neal_cnn-supervised neal_cnn-dhrnet" in out


def test_cli_a_run_that_evaluated_nothing_fails_and_says_why(tmp_path, capsys):
    output = tmp_path / "svhn"
    assert main(["run", "class-split", "--only", "svhn", "--source", "local", "--data-dir", str(tmp_path),
                 "--output", str(output), "--verbose", "0"]) == 1
    captured = capsys.readouterr()
    assert "svhn not evaluated: SVHN: local file not found" in captured.out and "--data-dir" in captured.out
    assert captured.err == "class-split: nothing was evaluated; see the caveats above\n"
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"unavailable/svhn": "SVHN: local file not found: train_32x32.mat"}))
    assert main(["report", "class-split", str(results)]) == 2
    assert capsys.readouterr().err == (f"error: {results} holds no results of class-split (not available to its "
                                       "run: svhn: SVHN: local file not found: train_32x32.mat)\n")


def test_an_output_directory_that_is_a_file_is_refused(tmp_path, capsys):
    afile = tmp_path / "results"
    afile.write_text("")
    assert main(["run", "mnist-outliers", "--output", str(afile)]) == 2
    assert capsys.readouterr().err == f"error: the output directory {afile} is a file; give a directory (new or " \
                                      "of a run).\n"


def test_a_directory_of_another_experiment_is_refused_by_its_own_settings(tmp_path):
    Runner("mnist-outliers", tmp_path, verbose=0).workspace.open()
    with pytest.raises(ValueError, match="experiment='mnist-outliers' \\(asked: 'class-split'\\)") as info:
        Runner("class-split", tmp_path, verbose=0)
    assert "splits" not in str(info.value)  # the class split's legacy default does not apply to another experiment


def test_cli_quickstart_runs_to_its_report_and_keeps_its_settings(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(EXPERIMENTS, "quickstart", dataclasses.replace(TINY, quick=Budget(epochs=1, train=300,
                                                                                        test=100)))
    output = tmp_path / "quickstart"
    assert main(["quickstart", "--quick", "--seed", "3", "--output", str(output), "--verbose", "0"]) == 0
    out = capsys.readouterr().out
    assert out == (output / "results.md").read_text() and "| mnist_cnn | dhrnet | crosr |" in out
    assert json.loads((output / "run.json").read_text())["seed"] == 3
    assert main(["quickstart", "--quick", "--seed", "4", "--output", str(output), "--verbose", "0"]) == 2
    assert "holds a run made with other settings: seed=3 (asked: 4)" in capsys.readouterr().err


def test_cli_report_renders_a_results_file(tmp_path, capsys):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"mnist_cnn-dhrnet/crosr/omniglot": {"macro_f1": 0.8}}))
    assert main(["report", "mnist-outliers", str(path)]) == 0
    out = capsys.readouterr().out
    assert "0.800 (0.793)" in out and "Quick run" not in out
    assert main(["report", "class-split", str(path)]) == 2  # no run.json beside it to say which experiment ran
    assert f"{path} holds no results of class-split" in capsys.readouterr().err
    path.write_text(json.dumps({"mnist/trial0/dhrnet/crosr": {"auroc": 0.9}}))
    assert main(["report", "class-split", str(path)]) == 0 and "0.900 ± 0.000 (n=1)" in capsys.readouterr().out
    path.write_text("{not json")
    assert main(["report", "class-split", str(path)]) == 2
    assert "is not a readable JSON file" in capsys.readouterr().err
    path.write_text("[1, 2]")
    assert main(["report", "class-split", str(path)]) == 2
    assert "holds a JSON list, not the object a run writes" in capsys.readouterr().err
    path.write_text(json.dumps({"mnist/trial0/dhrnet/crosr": {"auroc": 0.9}, "mnist-t0/training": 15}))
    assert main(["report", "class-split", str(path)]) == 2
    assert "is not laid out as a run's results.json" in capsys.readouterr().err


def test_cli_report_uses_the_settings_beside_the_results(tiny_run, capsys):
    _, _, path = tiny_run
    assert main(["report", "quickstart", str(path / "results.json")]) == 0
    out = capsys.readouterr().out
    assert "**Quick run** (epochs=2, train=1000, test=100, batch_size=32, learning_rate=0.05)" in out
    assert "mnist_cnn-dhrnet: 2 epochs on 1000 samples" in out
    assert main(["report", "mnist-outliers", str(path / "results.json")]) == 2
    assert "holds a run of quickstart, not of mnist-outliers" in capsys.readouterr().err
    assert main(["report", "mnist-outliers", str(path / "missing.json")]) == 2
    assert "no results file" in capsys.readouterr().err
    assert main(["report", "quickstart", str(path / "results.json")]) == 0
    results = json.loads((path / "results.json").read_text())
    settings = json.loads((path / "run.json").read_text())
    assert capsys.readouterr().out == report.render(get_experiment("quickstart"), results, settings=settings)


def test_cli_report_of_a_results_file_alone_uses_the_settings_it_records(tiny_run, tmp_path, capsys):
    _, _, path = tiny_run
    alone = tmp_path / "results.json"  # copied without its run.json
    alone.write_text((path / "results.json").read_text())
    assert json.loads(alone.read_text())["run"] == json.loads((path / "run.json").read_text())
    assert main(["report", "quickstart", str(alone)]) == 0
    assert "**Quick run** (epochs=2, train=1000" in capsys.readouterr().out
    assert main(["report", "mnist-outliers", str(alone)]) == 2  # the same networks, but not that experiment
    assert "holds a run of quickstart, not of mnist-outliers" in capsys.readouterr().err


def test_cli_refuses_bad_arguments_without_leaving_a_directory(tmp_path, capsys):
    output = tmp_path / "out"
    assert main(["run", "mnist-outliers", "--epochs", "-3", "--output", str(output)]) == 2
    assert "epochs must be a non-negative integer" in capsys.readouterr().err
    assert main(["run", "mnist-outliers", "--only", "omniglott", "--output", str(output)]) == 2
    assert "'omniglott'] not among" in capsys.readouterr().err
    assert main(["run", "mnist-outliers", "--trials", "1", "--output", str(output)]) == 2
    assert "trials must be distinct indices in range(1) (mnist-outliers has 1); got [1]" in capsys.readouterr().err
    empty = tmp_path / "no-data"
    empty.mkdir()
    assert main(["run", "mnist-outliers", "--source", "local", "--data-dir", str(empty), "--output", str(output),
                 "--verbose", "0"]) == 2
    assert "error:" in capsys.readouterr().err
    assert not output.exists()
