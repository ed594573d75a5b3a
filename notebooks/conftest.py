"""nbval configuration: notebooks run on their smoke budget under pytest, offline from the local data root.

The kernels nbval starts inherit this process's environment, so the variables set here reach the notebooks.
Notebooks that need the real data sets are skipped, with the reason, when no data root is found.
"""

import os
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_CROSR_SMOKE", "1")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
_SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if "KERAS_CROSR_DATA" not in os.environ and (_SHARED / "MANIFEST.md").is_file():
    os.environ["KERAS_CROSR_DATA"] = str(_SHARED)

# Notebooks that run on the embedded sample alone; every other one needs the real data sets.
_OFFLINE_NOTEBOOKS = {"quickstart.ipynb"}


def pytest_collection_modifyitems(config, items):
    root = os.environ.get("KERAS_CROSR_DATA")
    if root and (Path(root) / "MANIFEST.md").is_file():
        return
    skip = pytest.mark.skip(reason="needs the complete offline data folder (files listed in DATA.md, recognised by its "
                                   "MANIFEST.md): set KERAS_CROSR_DATA")
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb" and path.name not in _OFFLINE_NOTEBOOKS:
            item.add_marker(skip)
