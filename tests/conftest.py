"""Shared test configuration: TensorFlow backend by default, the offline data root, seeds."""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir():
    """The offline data root: $KERAS_CROSR_DATA, else ../shared/data beside the checkout, else None."""
    candidates = [os.environ.get("KERAS_CROSR_DATA"), REPO_ROOT.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "MANIFEST.md").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def data_dir():
    """Path of the real offline data sets; skips the test with the reason when they are absent."""
    root = shared_data_dir()
    if root is None:
        pytest.skip("real data sets not found: set KERAS_CROSR_DATA or place ../shared/data beside the checkout")
    return root


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
    keras.backend.clear_session()
