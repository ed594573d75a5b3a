"""The benchmark scripts' input checks (the benchmarks themselves run outside the test suite)."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ocsvm_gamma_reads_the_variant_of_a_runner_features_file():
    bench = load_script("bench_ocsvm_gamma")
    assert bench.feature_variant(Path("features/mnist-t3-mnist_cnn-supervised.npz")) == "supervised"
    assert bench.feature_variant(Path("features/mnist_cnn-dhrnet.npz")) == "dhrnet"
    with pytest.raises(SystemExit, match="not a features file of the runner"):
        bench.feature_variant(Path("features/latents.npz"))


def _recorded_reports():
    """``(experiment name, results JSON)`` of every recorded experiment run with its Markdown report beside it
    (the file name starts with the experiment's name; the benchmarks' own results are rendered by their scripts)."""
    from keras_crosr.experiments import EXPERIMENTS

    for path in sorted(BENCHMARKS.glob("results/**/*.json")):
        names = [name for name in EXPERIMENTS if path.stem.startswith(name)]
        if names and path.with_suffix(".md").is_file():
            yield pytest.param(max(names, key=len), path, id=str(path.relative_to(BENCHMARKS / "results")))


@pytest.mark.parametrize("name, path", _recorded_reports())
def test_a_recorded_experiment_report_is_what_its_results_render_to(name, path):
    """Each recorded report is ``python -m keras_crosr report NAME FILE.json`` today: the Markdown says what the
    code says of the recorded numbers, not what an older report once said."""
    from keras_crosr.experiments import get_experiment, report

    rendered = report.render(get_experiment(name), json.loads(path.read_text()))
    assert rendered == path.with_suffix(".md").read_text()


def test_first_steps_records_each_steps_loss_and_stops_at_the_first_nan():
    import argparse

    import numpy as np

    bench = load_script("bench_first_steps")
    args = argparse.Namespace(backbone="mnist_cnn", variant="dhrnet", schedule="constant", epochs=1, steps=3,
                              batch_size=8, seed=0)
    x = np.random.default_rng(0).random((24, 28, 28, 1), dtype=np.float32)
    y = np.arange(24) % 10
    run = bench.run(x, y, 0.01, 5.0, args)
    assert run["clipnorm"] == 5.0 and run["diverged_at_step"] is None
    assert [len(run[k]) for k in ("loss", "logits_loss", "reconstruction_loss")] == [3, 3, 3]
    assert run["loss"][0] == pytest.approx(run["logits_loss"][0] + run["reconstruction_loss"][0], rel=1e-5)
    x[8] = np.nan  # the second batch
    run = bench.run(x, y, 0.01, None, args)
    assert run["diverged_at_step"] == 2 and run["loss"][1] is None and len(run["loss"]) == 2

    record = {"command": "python benchmarks/bench_first_steps.py", "keras": "3", "backend": "jax",
              "settings": {"backbone": "mnist_cnn", "dataset": "mnist", "variant": "dhrnet", "train_samples": 24,
                           "schedule": "constant", "epochs": 1, "steps": 3, "batch_size": 8, "seed": 0},
              "runs": [run]}
    row = (f"| 0.01 | none | 2 | {run['loss'][0]:.3f} | – | – | – | 2: NaN/inf / NaN/inf | "
           f"{run['seconds_per_step']} |")
    assert row in bench.markdown(record).splitlines()


def test_f1_definition_scores_both_macro_f1_formulas():
    import numpy as np

    bench = load_script("bench_f1_definition")
    # Class 0: P 1/3, R 1; class 1: P 1, R 1/2; unknown (label 2): P 0, R 0 (predicted as class 0).
    labels, predictions = np.array([0, 1, 1, 2]), np.array([0, 0, 1, 0])
    precision, recall = (1 / 3 + 1.0 + 0.0) / 3, (1.0 + 0.5 + 0.0) / 3
    assert bench.f1_of_averages(labels, predictions, n_classes=2) == pytest.approx(
        2 * precision * recall / (precision + recall))
    assert bench.f1_of_averages(np.array([2, 2]), np.array([0, 1]), n_classes=2) == 0.0

    synthetic = bench.synthetic_outcomes()
    assert synthetic["none rejected, all in one class"]["averaged_f1"] == pytest.approx(0.827, abs=5e-4)
    assert synthetic["none rejected, all in one class"]["f1_of_averages"] > 0.85
    assert synthetic["all rejected"]["averaged_f1"] == synthetic["all rejected"]["f1_of_averages"]

    cells = {name: {"averaged_f1": 0.7, "f1_of_averages": 0.75} for name in bench.OUTLIER_SETS}
    record = {"command": "bench_f1_definition.py", "seconds": 1.0, "synthetic": synthetic,
              "rows": [{"network": "dhrnet", "head": "crosr", **cells}]}
    assert ("| dhrnet | crosr | 0.700 / 0.750 / 0.793 | 0.700 / 0.750 / 0.827 | 0.700 / 0.750 / 0.826 |"
            in bench.markdown(record).splitlines())


def test_reconstruction_weight_euclidean_distance_is_each_images_l2_norm():
    import numpy as np

    bench = load_script("bench_reconstruction_weight")
    x = np.zeros((2, 4, 4, 1), dtype="float32")
    x_rec = x.copy()
    x_rec[0, :2, :2] = 1.5  # four pixels off by 1.5: norm 3
    distance = bench.ImageEuclideanDistance()
    assert np.asarray(distance.call(x, x_rec)) == pytest.approx([3.0, 0.0], abs=1e-5)
    assert float(distance(x, x_rec)) == pytest.approx(1.5, abs=1e-5)  # the batch mean
