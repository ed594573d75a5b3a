"""Runs an :class:`~keras_crosr.experiments.config.Experiment`: train, extract features, fit heads, evaluate.

Everything a run makes goes to its :class:`~keras_crosr.experiments.workspace.Workspace` (the output directory:
settings, results, trained networks, cached features, figures). Running again with the same directory skips every
finished evaluation and reuses trained networks and features, so an interrupted run resumes where it stopped; an
interrupted training resumes from its last epoch. A rerun whose data differ from those recorded (changed files,
or another ``source``) is refused.
"""

import dataclasses
import os
import time
import zipfile

import keras
import numpy as np

from keras_crosr import datasets, metrics, openset, protocols
from keras_crosr._validation import is_integer
from keras_crosr.backbones import BACKBONES, get_backbone
from keras_crosr.datasets import _source
from keras_crosr.dhrnet import build_dhrnet, compile_dhrnet, dhrnet_targets, inference_model
from keras_crosr.experiments import report
from keras_crosr.experiments.config import class_split_dataset, class_split_network, get_experiment
from keras_crosr.experiments.workspace import Workspace, fingerprint

_HEADS = ("softmax", "openmax", "crosr", "ocsvm", "crosr_ocsvm", "crosr_isoforest")
F1_THRESHOLDS = np.round(np.linspace(0.0, 1.0, 21), 2)


def warmup_cosine(learning_rate, steps_per_epoch, epochs):
    """The runner's schedule: linear warm-up from 0 over 10 % of the steps (at most one epoch), then cosine to 0."""
    warmup = min(steps_per_epoch, max(1, epochs * steps_per_epoch // 10))
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, epochs * steps_per_epoch - warmup), warmup_target=learning_rate, warmup_steps=warmup
    )


def subsample(n, limit, seed):
    """Indices of ``min(n, limit)`` samples, a seeded permutation prefix (all of them, in order, without limit)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def _seeded_subset(x, n, seed):
    """``n`` of the samples ``x`` (all of them if fewer), drawn by ``seed``: a prefix of a file stored in source
    order would be biased (the sample's first 1,000 Omniglot characters come from 11 of the 20 alphabets)."""
    return x[subsample(len(x), n, seed)]


def _fit_images(images, backbone):
    """``images`` zero-padded to ``backbone``'s input size where they are smaller (MNIST's 28x28 digits on Neal
    et al.'s 32x32 network), else as they are."""
    size = get_backbone(backbone).input_shape[:2]
    if all(have >= want for have, want in zip(images.shape[1:3], size)):
        return images
    return datasets.pad_images(images, size)


def make_detector(head, *, tail_size=20, alpha=None, seed=0):
    """The unfitted detector of a head name (see :class:`~keras_crosr.experiments.config.Network`)."""
    if head == "softmax":
        return openset.SoftmaxThreshold()
    if head == "openmax":
        return openset.OpenMax(tail_size=tail_size, alpha=alpha)
    if head == "crosr":
        return openset.CROSR(tail_size=tail_size, alpha=alpha)
    if head == "ocsvm":
        return openset.OneClassCROSR("ocsvm", tail_size=tail_size, alpha=alpha, use_latent=False)
    if head in ("crosr_ocsvm", "crosr_isoforest"):
        return openset.OneClassCROSR(head.split("_")[1], tail_size=tail_size, alpha=alpha, random_state=seed)
    raise ValueError(f"unknown head {head!r}; available: {', '.join(_HEADS)}")


class Runner:
    """Trains and evaluates the networks of one experiment.

    Args:
        experiment: an experiment name or :class:`~keras_crosr.experiments.config.Experiment`.
        output_dir: the run directory (created; reused to resume).
        epochs: overrides the configuration's (and the quick budget's) epochs.
        quick: use the experiment's reduced ``quick`` budget.
        source, data_dir: where data comes from (see :mod:`keras_crosr.datasets`).
        seed: seed of weights, shuffling, subsampling and synthesized outliers (trial ``t`` of a class
            separation or of DBpedia: ``seed + t``).
        only: restrict to these evaluations (outlier sets, split names or unknown-class counts); a quick run
            defaults to its budget's ``evaluations``, where set.
        networks: restrict to these networks (keys ``BACKBONE-VARIANT``, or variants); a quick run defaults to
            its budget's ``networks``, where set.
        skip_heads: heads not to fit in this run (a later run without them fills them in).
        trials: restrict to these trials (0-based: class separation, or DBpedia configured with ``trials`` > 1), so that
            the trials of one experiment can run in turns into one run directory.
        splits: class separation only: whose trials, ``"neal"`` (Neal et al.'s code, which the paper follows;
            the default) or ``"arpl"`` (the later literature's lists), see
            :func:`keras_crosr.protocols.published_split`. A run directory recorded without it was made with
            ``"arpl"``, the only lists before.
        verbose: Keras verbosity of training and feature extraction.
    """

    def __init__(self, experiment, output_dir, *, epochs=None, quick=False, source="auto", data_dir=None, seed=0,
                 only=None, networks=None, skip_heads=(), trials=None, splits=None, verbose=1):
        self.experiment = get_experiment(experiment) if isinstance(experiment, str) else experiment
        if epochs is not None and not is_integer(epochs, 0):
            raise ValueError(f"epochs must be a non-negative integer; got {epochs!r}")
        if epochs == 0 and self.experiment.kind != "runtime":
            raise ValueError(
                f"epochs=0 would evaluate untrained networks (chance accuracy; most Weibull heads cannot be fitted on "
                f"them): {self.experiment.name} needs at least 1 (only runtime, whose timing does not depend on the "
                "weights, runs untrained ones)"
            )
        if not is_integer(seed, 0):
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
        if self.experiment.kind == "dbpedia" and source == "tfds":
            raise ValueError("the DBpedia data set is read from local files only (data_dir or $KERAS_CROSR_DATA); "
                             "source='tfds' cannot serve it")
        if splits is not None and self.experiment.kind != "class_split":
            raise ValueError(f"splits= chooses the trials of a class separation; {self.experiment.name} is not one")
        if splits is not None and splits not in protocols.SPLITS:
            raise ValueError(f"splits must be one of {protocols.SPLITS}; got {splits!r}")
        self.splits = splits or protocols.SPLITS[0]
        self.quick = quick
        self.budget = self.experiment.quick if quick else None
        self.training = self.budget.apply(self.experiment.training) if quick else self.experiment.training
        self.epochs = int(epochs) if epochs is not None else self.training.epochs
        self.data = {"source": source, "data_dir": data_dir}
        self.seed = int(seed)
        self.verbose = verbose
        evaluations = self.experiment.evaluations
        if not only and quick and self.budget.evaluations:
            only = [str(e) for e in self.budget.evaluations]  # as the CLI gives them (DBpedia's are ints)
            left_out = [str(e) for e in evaluations if str(e) not in only]
            if left_out:
                self.log(f"--quick evaluates {', '.join(only)}; name others with --only "
                         f"({', '.join(left_out)})")
        if only:
            unknown = [e for e in only if str(e) not in [str(v) for v in evaluations]]
            if unknown:
                raise ValueError(f"{unknown} not among {self.experiment.name}'s evaluations {list(evaluations)}")
            evaluations = tuple(e for e in evaluations if str(e) in [str(o) for o in only])
        self.evaluations = evaluations
        if not networks and quick and self.budget.networks:
            networks = self.budget.networks
            left_out = [n.key for n in self.experiment.networks if n.key not in networks]
            if left_out:
                self.log(f"--quick trains {', '.join(networks)}; name others with --networks ({', '.join(left_out)})")
        self.networks = tuple(
            n for n in self.experiment.networks if not networks or n.key in networks or n.variant in networks
        )
        unmatched = [name for name in networks or () if not any(name in (n.key, n.variant) for n in self.networks)]
        if unmatched:
            keys = [n.key for n in self.experiment.networks]
            raise ValueError(f"no network of {self.experiment.name} matches {unmatched}; available: {keys}")
        heads = sorted({h for n in self.experiment.networks for h in n.heads})
        unknown = [h for h in skip_heads if h not in heads]
        if unknown:
            raise ValueError(f"cannot skip {unknown}: {self.experiment.name}'s heads are {heads}")
        self.skip_heads = tuple(skip_heads)
        self.trials = tuple(range(self.experiment.trials)) if trials is None else tuple(trials)
        bad = [t for t in self.trials if not is_integer(t, 0) or t >= self.experiment.trials]
        if bad or not self.trials or len(set(self.trials)) < len(self.trials):
            raise ValueError(f"trials must be distinct indices in range({self.experiment.trials}) "
                             f"({self.experiment.name} has {self.experiment.trials}); got {list(self.trials)}")
        self.trials = tuple(sorted(int(t) for t in self.trials))
        if self.experiment.kind == "runtime":  # the networks and heads chosen must make a Table 7 comparison
            from keras_crosr.experiments.runtime import check_methods

            check_methods(self)
        legacy = {"clipnorm": None}  # runs recorded before the setting existed trained unclipped
        if self.experiment.kind == "class_split":
            legacy["splits"] = protocols.SPLITS_BEFORE_CHOICE
        self.workspace = Workspace(output_dir, self.settings(), legacy=legacy)
        self._check_backbones()

    def settings(self):
        """What the trained networks and the evaluated samples depend on (recorded in the run's ``run.json``)."""
        training = dataclasses.asdict(self.training)
        training.pop("epochs")
        settings = {"experiment": self.experiment.name, "quick": self.quick, "seed": self.seed, "epochs": self.epochs,
                    "train": self.limit("train"), "test": self.limit("test"), **training}
        if self.experiment.kind == "class_split":
            settings["splits"] = self.splits
        if self.experiment.data_options:  # e.g. DBpedia's vocabulary: the networks' inputs depend on it
            settings["data_options"] = dict(self.experiment.data_options)
        return settings

    def _check_backbones(self):
        """Refuses ``Experiment.backbones`` that name what does not exist, and a run directory whose networks of a
        data set to evaluate were trained on another backbone: its trials would be averaged with ours."""
        backbones = self.experiment.backbones
        if backbones and self.experiment.kind != "class_split":
            raise ValueError(f"backbones= replaces the networks' backbone per data set of a class separation; "
                             f"{self.experiment.name} is not one (set the backbone of its networks instead)")
        unknown = sorted(set(backbones) - {str(e) for e in self.experiment.evaluations})
        if unknown:
            raise ValueError(f"backbones= names {unknown}, not among {self.experiment.name}'s data sets "
                             f"{list(self.experiment.evaluations)}")
        unknown = sorted(set(backbones.values()) - set(BACKBONES))
        if unknown:
            raise ValueError(f"backbones= names unknown backbones {unknown}; valid names are {sorted(BACKBONES)}")
        if self.experiment.kind != "class_split":
            return
        asked = {d: {self.experiment.backbone_for(n, d) for n in self.networks} for d in self.evaluations}
        for key, record in sorted(self.workspace.results.items()):
            dataset = class_split_dataset(key, asked)
            backbones = asked.get(dataset, ())
            if key.endswith("/training") and dataset is not None and record.get("backbone") not in backbones:
                raise ValueError(
                    f"{self.workspace.path} holds {dataset} networks trained on {record.get('backbone')} "
                    f"({key[: -len('/training')]}); this run trains {dataset} on {', '.join(sorted(backbones))}. "
                    f"Resume it with the experiment's backbones={{{dataset!r}: {record.get('backbone')!r}}}, or "
                    "choose another output directory."
                )

    # -- helpers -----------------------------------------------------------------------------------------------

    def limit(self, kind):
        """The budget's cap on ``"train"`` or ``"test"`` samples (``None``: all of them)."""
        return None if self.budget is None else getattr(self.budget, kind)

    def log(self, message):
        """Prints a progress message unless ``verbose=0``."""
        if self.verbose:
            print(message, flush=True)

    def _problem(self, key, message):
        """Records (as ``problems/KEY``) and logs what kept part of the run from finishing; the report lists
        these under its caveats until a later run finishes that part (:meth:`_solved`)."""
        self.workspace.record(f"problems/{key}", message)
        self.log(message)

    def _solved(self, key):
        self.workspace.forget(f"problems/{key}")

    def train(self, key, backbone, variant, x_train, y_train, num_classes, *, seed=None, **build_kwargs):
        """The trained network ``key``: loaded when saved by an earlier run, else trained and saved with its
        weights and shuffling drawn by ``seed`` (default: the run's; trial ``t`` of a class separation or of
        DBpedia passes ``seed + t``, so that the spread over trials includes the initialisation's).

        Returns ``None`` (and reports the problem) when the training loss diverges.
        """
        path = self.workspace.path / "networks" / f"{key}.keras"
        self._check_cached_inputs(key, {"train": x_train})
        if path.exists():
            self.log(f"[{key}] reusing trained network {path}")
            return keras.saving.load_model(path, compile=False)
        if self.workspace.has(f"{key}/training"):
            raise ValueError(
                f"{self.workspace.path} records the network {key} as trained, but its file {path} is missing: the "
                "results and cached features recorded for it came from that network, and a new training would "
                "not reproduce it. Put the file back to resume, or choose another output directory."
            )
        training = self.training
        seed = self.seed if seed is None else seed
        keras.utils.set_random_seed(seed)
        model = build_dhrnet(
            backbone, num_classes=num_classes, input_shape=x_train.shape[1:], variant=variant,
            dropout=training.dropout, **build_kwargs,
        )
        steps_per_epoch = int(np.ceil(len(x_train) / training.batch_size))
        schedule = warmup_cosine(training.learning_rate, steps_per_epoch, self.epochs)
        compile_dhrnet(
            model, keras.optimizers.SGD(schedule, momentum=training.momentum, global_clipnorm=training.clipnorm),
            classification_weight=training.classification_weight,
            reconstruction_weight=training.reconstruction_weight,
        )
        self.log(f"[{key}] training {variant} on {backbone}: {len(x_train)} samples, {self.epochs} epochs")
        start = time.perf_counter()
        first_epoch = 0  # > 0 when BackupAndRestore resumes an interrupted training
        if self.epochs > 0:
            backup = keras.callbacks.BackupAndRestore(str(self.workspace.path / "networks" / f"{key}.backup"))
            history = model.fit(
                x_train, dhrnet_targets(x_train, y_train, model=model), batch_size=training.batch_size,
                epochs=self.epochs, shuffle=True, callbacks=[backup, keras.callbacks.TerminateOnNaN()],
                verbose=self.verbose,
            )
            if not np.all(np.isfinite(history.history.get("loss", [0.0]))):
                self._problem(
                    key,
                    f"[{key}] training diverged (NaN/inf loss after {len(history.history['loss'])} epochs) with "
                    f"learning rate {training.learning_rate}: lower it in the experiment's Training configuration"
                )
                return None
            first_epoch = history.epoch[0] if history.epoch else self.epochs
            if first_epoch:
                self.log(f"[{key}] resumed an interrupted training after its epoch {first_epoch}")
        # The finished network is saved without its optimizer state (a fresh, unbuilt optimizer): half the size.
        compile_dhrnet(model, keras.optimizers.SGD(training.learning_rate, momentum=training.momentum,
                                                   global_clipnorm=training.clipnorm),
                       classification_weight=training.classification_weight,
                       reconstruction_weight=training.reconstruction_weight)
        partial = path.with_name(f"{key}.partial.keras")  # written whole, then renamed: never a truncated file
        model.save(partial)
        os.replace(partial, path)
        self._solved(key)
        self.workspace.record(f"{key}/training", {
            "backbone": backbone, "variant": variant, "epochs": self.epochs, "train_samples": int(len(x_train)),
            "batch_size": training.batch_size, "learning_rate": training.learning_rate, "seed": seed,
            "wall_time_s": round(time.perf_counter() - start, 1), "backend": keras.backend.backend(),
            "resumed_at_epoch": first_epoch,  # wall_time_s covers the epochs from here on only
        })
        return model

    def features(self, key, model, arrays):
        """``{name: {"logits", "latent"?}}`` for each input array, cached in ``features/KEY.npz`` with the
        fingerprint of the array; inputs other than those of the cached features are refused (the network's
        recorded results came from those)."""
        path = self.workspace.path / "features" / f"{key}.npz"
        cached = {}
        if path.exists():
            try:
                with np.load(path) as archive:
                    cached = dict(archive)
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
                self.log(f"[{key}] the cached features {path} are unreadable ({error}): extracting again")
        digests = {name: fingerprint(x) for name, x in arrays.items()}
        self._refuse_other_inputs(key, path, [name for name, digest in digests.items()
                                              if cached.get(f"{name}/fingerprint", digest) != digest])
        extractor = None
        for name, x in arrays.items():
            digest = digests[name]
            if cached.get(f"{name}/fingerprint") == digest:
                continue
            if f"{name}/logits" in cached:  # a cache without fingerprints: nothing vouches for it
                self.log(f"[{key}] the cached {name} features do not say which inputs they came from: extracting "
                         "again")
            extractor = extractor or inference_model(model)
            out = extractor.predict(x, batch_size=256, verbose=self.verbose)
            for output, value in out.items():
                cached[f"{name}/{output}"] = np.asarray(value, dtype=np.float32)
            cached[f"{name}/fingerprint"] = np.array(digest)
            partial = path.with_name(f"{path.name}.partial")
            with open(partial, "wb") as file:
                np.savez(file, **cached)
            os.replace(partial, path)
        return {
            name: {k.split("/", 1)[1]: v for k, v in cached.items()
                   if k.split("/", 1)[0] == name and not k.endswith("/fingerprint")}
            for name in arrays
        }

    def _check_cached_inputs(self, key, arrays):
        """Refuses ``arrays`` (``{name: array}``) other than the inputs the cached features of network ``key`` were
        extracted from (the check of run directories made before data fingerprints were recorded)."""
        path = self.workspace.path / "features" / f"{key}.npz"
        try:
            with np.load(path) as archive:
                cached = {name: str(archive[f"{name}/fingerprint"]) for name in arrays
                          if f"{name}/fingerprint" in archive.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):  # none, or unreadable: features() says so
            return
        self._refuse_other_inputs(key, path, [name for name, digest in cached.items()
                                              if fingerprint(arrays[name]) != digest])

    @staticmethod
    def _refuse_other_inputs(key, path, differ):
        if differ:
            raise ValueError(
                f"the cached features {path} of the network {key} came from other {', '.join(sorted(differ))} "
                "inputs than this run gives it (another data source or data directory, changed files, or a "
                "keras-crosr version that prepares them otherwise): its recorded results would be mixed with "
                "results on these. Rerun with the data it was made with, or choose another output directory."
            )

    def check_data(self, sources, networks=None, **named):
        """Fingerprints each array set ``name=(arrays...)`` the run loaded (inputs with their labels) and refuses
        data other than those recorded for the run directory, or read from other ``sources`` (as collected by
        ``datasets._source.recording()``): :meth:`Workspace.check_inputs`.

        ``networks``: a function returning ``{key: {name: array}}``, the inputs each network of these data is
        given (``None``: no network caches features of them); where the data were not recorded yet (a directory
        of an earlier version), the cached features of every one of them, finished or not, are checked, so that no
        network's results on other data stay beside the new ones.
        """
        inputs = {**{f"source of {name}": where for name, where in sources.items()},
                  **{name: fingerprint(*arrays) for name, arrays in named.items()}}
        cached = any((self.workspace.path / "features").glob("*.npz"))
        if self.workspace.check_inputs(inputs) and cached and networks is not None:
            for key, arrays in networks().items():
                self._check_cached_inputs(key, arrays)

    def detector(self, head, backbone, dataset):
        """The unfitted detector of ``head``: the experiment's tail size for ``backbone`` and rank calibration
        for the known data set ``dataset``."""
        return make_detector(head, tail_size=self.experiment.tail_size_for(backbone),
                             alpha=self.experiment.alpha_for(dataset), seed=self.seed)

    def finished(self, key, head, backbone, dataset):
        """Whether the evaluation ``key`` of ``head`` is recorded with the detector settings it gets now."""
        return self.workspace.has(key, self.detector(head, backbone, dataset).get_params())

    def fit_heads(self, network, features, labels, *, backbone, dataset, heads=None):
        """Fits ``heads`` (default: every head of ``network`` not skipped) on the features of a ``backbone``
        network trained on ``dataset``; a head that cannot be fitted is returned as its error, to be recorded
        with its message."""
        fitted = {}
        for head in heads if heads is not None else [h for h in network.heads if h not in self.skip_heads]:
            detector = self.detector(head, backbone, dataset)
            try:
                fitted[head] = detector.fit(features, labels)
            except ValueError as error:  # recorded as failed (the report lists it); a rerun tries again
                self.log(f"[{network.key}] head {head} not fitted: {error}")
                fitted[head] = error
        return fitted

    @staticmethod
    def score(detector, features):
        """``(proba (n, N+1), unknown score (n,))`` of a fitted detector; rows are independent of each other."""
        if len(features["logits"]) == 0:
            return np.zeros((0, detector.n_classes_ + 1)), np.zeros(0)
        return detector.predict_proba(features), detector.decision_function(features)

    def evaluate(self, key, detector, known, unknown, y_known):
        """Records the metrics of one known + unknown evaluation under ``key``.

        ``known`` and ``unknown`` are :meth:`score` outputs (scored separately: results never depend on
        batching), or ``detector`` is the error that kept the head from being fitted.
        """
        if isinstance(detector, Exception):
            self.workspace.record(key, {"status": "failed", "message": str(detector)})
            return
        proba = np.concatenate([known[0], unknown[0]])
        labels = np.concatenate([y_known, np.full(len(unknown[0]), detector.n_classes_)])
        scores = metrics.open_set_scores(labels, proba, unknown_scores=np.concatenate([known[1], unknown[1]]))
        curve = metrics.f1_vs_threshold(proba, labels, F1_THRESHOLDS)
        scores["f1_vs_threshold"] = dict(zip([f"{t:.2f}" for t in F1_THRESHOLDS], np.round(curve, 4).tolist()))
        self.workspace.record(key, {**{k: (round(v, 4) if isinstance(v, float) else v) for k, v in scores.items()},
                                    "detector": detector.get_params()})  # what the result was made with

    def _pending_heads(self, prefix, *, dataset):
        """``{network: heads not yet recorded under {prefix}/{variant}/{head}}`` for the networks with any."""
        pending = {
            network: [h for h in network.heads if h not in self.skip_heads and not self.finished(
                f"{prefix}/{network.variant}/{h}", h, self.experiment.backbone_for(network, dataset), dataset)]
            for network in self.networks
        }
        return {network: heads for network, heads in pending.items() if heads}

    def _evaluate_heads(self, prefix, heads, features, y_known, unknown_sets, *, backbone, dataset):
        """Scores the known set once per head, then each unknown set, recording ``{prefix}/{head}/{set}``
        (``{prefix}/{head}`` when ``unknown_sets`` is ``None``: one unknown set called ``"unknown"``)."""
        for head, detector in heads.items():
            names = ["unknown"] if unknown_sets is None else unknown_sets
            keys = {name: f"{prefix}/{head}" + ("" if unknown_sets is None else f"/{name}") for name in names}
            todo = [name for name in names if not self.finished(keys[name], head, backbone, dataset)]
            if not todo:
                continue
            if isinstance(detector, Exception):
                for name in todo:
                    self.evaluate(keys[name], detector, None, None, y_known)
                continue
            known = self.score(detector, features["known"])
            for name in todo:
                self.evaluate(keys[name], detector, known, self.score(detector, features[name]), y_known)

    def _closed_set(self, key, logits, labels):
        if not self.workspace.has(f"{key}/closed_set_accuracy"):
            accuracy = float(np.mean(np.argmax(logits, axis=1) == labels))
            self.workspace.record(f"{key}/closed_set_accuracy", round(accuracy, 4))

    # -- experiment kinds ------------------------------------------------------------------------------------

    def run(self):
        """Runs the experiment, writes results.json and results.md, and returns the Markdown report."""
        start = time.perf_counter()
        created = self.workspace.open()
        try:
            getattr(self, f"_run_{self.experiment.kind}")()
        except BaseException:
            if created:
                self.workspace.remove_if_empty()
            raise
        text = report.render(self.experiment, self.workspace.results, settings=self.workspace.settings)
        (self.workspace.path / "results.md").write_text(text)
        self.log(f"{self.experiment.name}: done in {time.perf_counter() - start:.0f} s; "
                  f"results in {self.workspace.path / 'results.md'}")
        return text

    def load_outliers(self, name, x_test):
        """The outlier set ``name`` (within the budget), or ``None`` when it is not available: recorded."""
        if self.experiment.dataset == "sample":
            return {
                "omniglot": lambda: _seeded_subset(datasets.load_sample()["omniglot"], len(x_test), self.seed),
                "noise": lambda: datasets.load_noise(len(x_test), seed=self.seed),
                "mnist_noise": lambda: datasets.make_mnist_noise(x_test, seed=self.seed + 1),
            }[name]()
        try:
            split = protocols.make_outlier_addition(
                self.experiment.dataset, name, seed=self.seed, with_train=False, **self.data
            )
        except (datasets.DatasetNotFoundError, FileNotFoundError) as error:
            self.log(f"outlier set {name} skipped: {error}")
            self.workspace.record(f"unavailable/{name}", str(error))
            return None
        self.workspace.forget(f"unavailable/{name}")
        x_out = split.x_test_unknown
        return x_out[subsample(len(x_out), self.limit("test"), self.seed + 1)]

    def load_outlier_benchmark(self):
        """The outlier-addition data within the budget: ``(x_train, y_train, x_test, y_test, outliers)``, with
        ``outliers`` a dict of the available outlier sets (the unavailable ones are recorded)."""
        with _source.recording() as sources:
            if self.experiment.dataset == "sample":
                sample = datasets.load_sample()
                x_train, y_train, x_test, y_test = (sample[k] for k in ("x_train", "y_train", "x_test", "y_test"))
            else:
                x_train, y_train = datasets.LOADERS[self.experiment.dataset]("train", **self.data)
                x_test, y_test = datasets.LOADERS[self.experiment.dataset]("test", **self.data)
        keep = subsample(len(x_train), self.limit("train"), self.seed)
        x_train, y_train = x_train[keep], y_train[keep]
        keep = subsample(len(x_test), self.limit("test"), self.seed)
        x_test, y_test = x_test[keep], y_test[keep]
        outliers = {}
        for name in self.evaluations:
            with _source.recording() as used:
                x_out = self.load_outliers(name, x_test)
            if x_out is not None:  # the source of a set that could not be loaded is none
                outliers[name] = x_out
                sources.update(used)
        given = {"train": x_train, "known": x_test, "test": x_test, **outliers}  # "test": the samples experiment's
        self.check_data(sources, lambda: {network.key: given for network in self.experiment.networks},
                        train=(x_train, y_train), test=(x_test, y_test), **{name: (x,) for name, x in outliers.items()})
        return x_train, y_train, x_test, y_test, outliers

    def _run_outliers(self):
        experiment = self.experiment
        x_train, y_train, x_test, y_test, outliers = self.load_outlier_benchmark()
        num_classes = int(y_train.max()) + 1
        for network in self.networks:
            key = network.key
            missing = [h for h in network.heads if h not in self.skip_heads and not all(
                self.finished(f"{key}/{h}/{name}", h, network.backbone, experiment.dataset) for name in outliers)]
            if not missing and self.workspace.has(f"{key}/closed_set_accuracy"):
                continue
            model = self.train(key, network.backbone, network.variant, x_train, y_train, num_classes)
            if model is None:
                continue
            feats = self.features(key, model, {"train": x_train, "known": x_test, **outliers})
            self._closed_set(key, feats["known"]["logits"], y_test)
            where = {"backbone": network.backbone, "dataset": experiment.dataset}
            heads = self.fit_heads(network, feats["train"], y_train, heads=missing, **where)
            self._evaluate_heads(key, heads, feats, y_test, list(outliers), **where)
        self._draw_f1_vs_threshold()

    def _draw_f1_vs_threshold(self):
        """Figure 5: per outlier set, the recorded macro-F1 against the rejection threshold of every network and
        head, drawn into ``figures/f1_vs_threshold_{set}.png`` and recorded under ``"figures"``."""
        from matplotlib.figure import Figure

        from keras_crosr import plots

        figures = {}
        for name in self.experiment.evaluations:
            curves = {}
            for network in self.experiment.networks:
                for head in network.heads:
                    value = self.workspace.results.get(f"{network.key}/{head}/{name}")
                    curve = value.get("f1_vs_threshold", {}) if isinstance(value, dict) else {}
                    if all(f"{t:.2f}" in curve for t in F1_THRESHOLDS):
                        curves[f"{network.key} + {head}"] = [curve[f"{t:.2f}"] for t in F1_THRESHOLDS]
            if not curves:
                continue
            figure = Figure(figsize=(6, 4.5))
            ax = plots.plot_f1_vs_threshold(F1_THRESHOLDS, curves, ax=figure.subplots())
            ax.set_title(f"{self.experiment.name}, unknowns: {name}")
            ax.legend(fontsize=7)
            filename = f"f1_vs_threshold_{name}.png"
            figure.savefig(self.workspace.path / "figures" / filename, dpi=120, bbox_inches="tight")
            figures[name] = f"figures/{filename}"
        if figures and figures != self.workspace.results.get("figures"):
            self.workspace.record("figures", figures)

    def _run_class_split(self):
        for dataset in self.evaluations:
            for trial in self.trials:
                prefix = f"{dataset}/trial{trial}"
                pending = self._pending_heads(prefix, dataset=dataset)
                if not pending:
                    continue
                try:
                    with _source.recording() as sources:
                        split = protocols.make_class_separation(dataset, trial, splits=self.splits, **self.data)
                except (datasets.DatasetNotFoundError, FileNotFoundError) as error:
                    self.log(f"class split {dataset} skipped: {error}")
                    self.workspace.record(f"unavailable/{dataset}", str(error))
                    break
                self.workspace.forget(f"unavailable/{dataset}")
                keep = subsample(len(split.x_train), self.limit("train"), self.seed + trial)
                x_train, y_train = split.x_train[keep], split.y_train[keep]
                keep_k = subsample(len(split.x_test_known), self.limit("test"), self.seed + trial)
                keep_u = subsample(len(split.x_test_unknown), self.limit("test"), self.seed + trial + 1)
                x_known, y_known = split.x_test_known[keep_k], split.y_test_known[keep_k]
                x_unknown = split.x_test_unknown[keep_u]

                def trial_inputs():  # what each network of the trial is given (called at once by check_data)
                    inputs = {}
                    for network in self.experiment.networks:
                        backbone = self.experiment.backbone_for(network, dataset)
                        images = [_fit_images(x, backbone) for x in (x_train, x_known, x_unknown)]
                        key = class_split_network(dataset, trial, backbone, network.variant)
                        inputs[key] = dict(zip(("train", "known", "unknown"), images))
                    return inputs

                self.check_data(sources, trial_inputs, **{f"{prefix}/train": (x_train, y_train),
                                                          f"{prefix}/known": (x_known, y_known),
                                                          f"{prefix}/unknown": (x_unknown,)})
                for network, missing in pending.items():  # a network whose evaluations are all recorded is not loaded
                    backbone = self.experiment.backbone_for(network, dataset)
                    where = {"backbone": backbone, "dataset": dataset}
                    key = class_split_network(dataset, trial, backbone, network.variant)
                    images = [_fit_images(x, backbone) for x in (x_train, x_known, x_unknown)]
                    model = self.train(key, backbone, network.variant, images[0], y_train, split.num_known,
                                       seed=self.seed + trial)
                    if model is None:
                        continue
                    feats = self.features(key, model, dict(zip(("train", "known", "unknown"), images)))
                    self._closed_set(f"{prefix}/{network.variant}", feats["known"]["logits"], y_known)
                    heads = self.fit_heads(network, feats["train"], y_train, heads=missing, **where)
                    self._evaluate_heads(f"{prefix}/{network.variant}", heads, feats, y_known, None, **where)

    def _run_dbpedia(self):
        experiment = self.experiment
        where = {"backbone": "text_cnn", "dataset": "dbpedia"}
        for num_unknown in self.evaluations:
            for trial in self.trials:
                setting = f"4/{4 + num_unknown}"
                prefix = f"{setting}/seed{self.seed + trial}"
                pending = self._pending_heads(prefix, dataset="dbpedia")
                if not pending:
                    continue
                with _source.recording() as sources:
                    split, vocabulary = protocols.make_dbpedia_split(
                        num_unknown, seed=self.seed + trial, data_dir=self.data["data_dir"], **experiment.data_options
                    )
                keep = subsample(len(split.x_train), self.limit("train"), self.seed)
                x_train, y_train = split.x_train[keep], split.y_train[keep]
                keep_k = subsample(len(split.x_test_known), self.limit("test"), self.seed)
                x_known, y_known = split.x_test_known[keep_k], split.y_test_known[keep_k]
                x_unknown = split.x_test_unknown[subsample(len(split.x_test_unknown), self.limit("test"), self.seed)]
                self.check_data(
                    sources,
                    lambda: {f"dbpedia-s{self.seed + trial}-{network.variant}": {
                        "train": x_train, "known": x_known, f"unknown{num_unknown}": x_unknown,
                    } for network in self.experiment.networks},
                    **{f"{prefix}/train": (x_train, y_train), f"{prefix}/known": (x_known, y_known),
                       f"{prefix}/unknown": (x_unknown,)},
                )
                for network, missing in pending.items():
                    # The seed alone draws the 4 known classes (and the vocabulary), so one network per seed
                    # serves every setting; only the unknown test set changes.
                    key = f"dbpedia-s{self.seed + trial}-{network.variant}"
                    model = self.train(key, "text_cnn", network.variant, x_train, y_train, split.num_known,
                                       seed=self.seed + trial, vocab_size=len(vocabulary))
                    if model is None:
                        continue
                    arrays = {"train": x_train, "known": x_known}
                    if len(x_unknown):
                        arrays[f"unknown{num_unknown}"] = x_unknown
                    feats = self.features(key, model, arrays)
                    self._closed_set(f"{prefix}/{network.variant}", feats["known"]["logits"], y_known)
                    heads = self.fit_heads(network, feats["train"], y_train, heads=missing, **where)
                    feats["unknown"] = feats.pop(f"unknown{num_unknown}", {k: v[:0] for k, v in feats["known"].items()})
                    self._evaluate_heads(f"{prefix}/{network.variant}", heads, feats, y_known, None, **where)

    def _run_runtime(self):
        from keras_crosr.experiments.runtime import measure_runtime

        measure_runtime(self)

    def _run_samples(self):
        from keras_crosr.experiments.samples import sorted_samples_figure

        sorted_samples_figure(self)


def run_experiment(name, output_dir, **kwargs):
    """Runs experiment ``name`` into ``output_dir`` (see :class:`Runner` for the arguments); returns the report."""
    return Runner(name, output_dir, **kwargs).run()
