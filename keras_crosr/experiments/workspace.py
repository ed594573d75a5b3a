"""The output directory of one experiment run, and the fingerprints that tie its results to their data.

A run lives in one output directory::

    OUTPUT/run.json            the settings the results depend on (a rerun with other settings is refused)
    OUTPUT/results.json        every finished evaluation, written after each one (the resume point), and under
                               "run" the settings of run.json, so that the file alone says what made it; under
                               "inputs" a fingerprint of each data set the run trained or evaluated on and
                               where each was read from
    OUTPUT/results.md          our numbers beside the paper's, with the data caveats
    OUTPUT/networks/KEY.keras  trained networks (KEY.backup/ holds BackupAndRestore state while training)
    OUTPUT/features/KEY.npz    cached (logits, latent) of every set a network is evaluated on, with a fingerprint
                               of the inputs they came from
    OUTPUT/figures/*.png       figures: F1 vs threshold (Fig. 5) of the outlier experiments, sorted samples (Fig. 6)
"""

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np


class Workspace:
    """The output directory of one experiment run: its settings, results store, networks, features and figures.

    ``settings`` (what the trained networks and the evaluated samples depend on: experiment, quick budget, seed,
    epochs, training recipe) are recorded in ``run.json``; reusing the directory with other settings is an error,
    so that no result of one run is ever passed off as another's. ``legacy``: the values of settings that a run
    of the same experiment recorded before they existed was made with.
    """

    def __init__(self, path, settings, legacy=None):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"the output directory {self.path} is a file; give a directory (new or of a run).")
        self.settings = settings
        self.legacy = dict(legacy or {})
        self.results_path = self.path / "results.json"
        self.settings_path = self.path / "run.json"
        self.results = json.loads(self.results_path.read_text()) if self.results_path.exists() else {}
        self._check_settings()

    def _check_settings(self):
        if self.settings_path.exists():
            recorded = [json.loads(self.settings_path.read_text())]
        elif "run" in self.results:
            recorded = [self.results["run"]]
        else:  # a directory of an earlier version: its training records say how its networks were trained
            recorded = [{k: r[k] for k in ("epochs", "batch_size", "learning_rate") if k in r}
                        for key, r in self.results.items() if key.endswith("/training")]
        experiment = self.settings.get("experiment")  # the legacy values belong to runs of this experiment
        recorded = [{**self.legacy, **record} if record.get("experiment", experiment) == experiment else record
                    for record in recorded]
        differences = sorted({f"{name}={value!r} (asked: {self.settings[name]!r})" for record in recorded
                              for name, value in record.items() if self.settings.get(name) != value})
        if differences:
            raise ValueError(
                f"{self.path} holds a run made with other settings: {', '.join(differences)}. Rerun with its "
                "settings to resume it, or choose another output directory."
            )

    def open(self):
        """Creates the directory (if needed) and records the settings; returns whether it was created."""
        created = not self.path.exists()
        for folder in ("networks", "features", "figures"):
            (self.path / folder).mkdir(parents=True, exist_ok=True)
        if not self.settings_path.exists():
            self.settings_path.write_text(json.dumps(self.settings, indent=1, sort_keys=True))
        return created

    def remove_if_empty(self):
        """Removes the directory when it holds nothing but its settings and data fingerprints (a run that stopped
        before any result; what it found unavailable is no result either)."""
        bare = all(key in ("run", "inputs") or key.startswith("unavailable/") for key in self.results)
        if all(p.is_dir() or p == self.settings_path or bare and p == self.results_path for p in self.path.rglob("*")):
            shutil.rmtree(self.path)

    def has(self, key, detector=None):
        """Whether ``key`` is finished; a head that failed is tried again.

        ``detector``: the hyper-parameters (``get_params()``) the evaluation ``key`` must have been made with;
        one recorded with others (or, by an earlier version, without them) is not finished.
        """
        value = self.results.get(key)
        if key not in self.results or isinstance(value, dict) and value.get("status") == "failed":
            return False
        return detector is None or isinstance(value, dict) and value.get("detector") == detector

    def check_inputs(self, inputs):
        """Records what identifies the data the run loaded, ``{name: value}``: the :func:`fingerprint` of each
        array set (e.g. ``"train"``) and, as ``"source of DATASET"``, where each data set was read from; refuses
        data other than those recorded, since results on them would be mixed with the recorded ones.

        Returns:
            whether any of ``inputs`` was not recorded before (first loaded, or a directory of an earlier version).
        """
        recorded = self.results.get("inputs", {})
        differ = sorted(name for name, value in inputs.items() if recorded.get(name, value) != value)
        if differ:
            differences = [f"{name} ({recorded[name]}, now {inputs[name]})" if name.startswith("source of ")
                           else name for name in differ]
            sources = [f"{k.removeprefix('source of ')}: {v}" for k, v in sorted(recorded.items())
                       if k.startswith("source of ")]
            raise ValueError(
                f"{self.path} holds results on other data than this run loaded: {', '.join(differences)} (another "
                "data source or data directory, changed files, or a keras-crosr version that prepares them "
                "otherwise); they would be mixed with results on these. Rerun with the data it was made with"
                + (f" (read from {'; '.join(sources)})" if sources else "") + ", or choose another output directory."
            )
        new = any(name not in recorded for name in inputs)
        if new:
            self.record("inputs", {**recorded, **inputs})
        return new

    def record(self, key, value):
        """Stores one finished result and writes results.json atomically."""
        self.results[key] = value
        self._write()

    def forget(self, key):
        """Removes the record ``key`` (e.g. a data set recorded as unavailable that a later run could load)."""
        if self.results.pop(key, None) is not None:
            self._write()

    def _write(self):
        self.results["run"] = self.settings
        tmp = self.results_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.results, indent=1, sort_keys=True))
        os.replace(tmp, self.results_path)


def fingerprint(*arrays):
    """A digest of the arrays' shapes, dtypes and bytes, in order: which data results and cached features
    belong to."""
    digest = hashlib.blake2b(digest_size=16)
    for x in arrays:
        x = np.ascontiguousarray(x)
        digest.update(f"{x.shape}{x.dtype}".encode())
        if x.size:  # a memoryview of an empty array cannot be cast
            digest.update(memoryview(x).cast("B"))
    return digest.hexdigest()
