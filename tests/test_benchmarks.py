"""The benchmark scripts' input checks (the benchmarks themselves run outside the test suite)."""

import importlib.util
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
