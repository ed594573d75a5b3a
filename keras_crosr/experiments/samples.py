"""Figure 6: known test samples and outliers sorted by each method's confidence, the top ones drawn.

For every network and head of the experiment and every outlier set, the known test samples and the outliers
are scored together; the confidence is the largest known-class probability of ``predict_proba`` (the final
confidence of Eq. 3 for OpenMax / CROSR, the softmax maximum for Softmax). The ``TOP_K`` most confident samples
are drawn with :func:`keras_crosr.plots.plot_sorted_samples` (unknowns framed red, misclassified knowns cyan)
into ``figures/samples_{network}_{head}_{outlier}.png``; fewer red frames mean a more robust method.
"""

import numpy as np
from matplotlib.figure import Figure

from keras_crosr import datasets, plots
from keras_crosr.experiments.runner import _subsample

TOP_K = 50  # samples drawn per method, in rows of NCOLS
NCOLS = 10


def top_k_composition(confidence, labels, predictions, unknown_label, k):
    """Fractions of unknowns and of misclassified knowns among the ``k`` most confident samples."""
    top = plots.sorted_order(confidence)[:k]
    unknown = labels[top] == unknown_label
    return {
        "unknown": round(float(np.mean(unknown)), 4),
        "misclassified_known": round(float(np.mean(~unknown & (predictions[top] != labels[top]))), 4),
    }


def _save_figure(path, images, confidence, labels, predictions, unknown_label, title):
    rows = -(-min(TOP_K, len(images)) // NCOLS)
    figure = Figure(figsize=(NCOLS * 0.8, rows * 0.8 + 0.6))
    ax = figure.subplots()
    plots.plot_sorted_samples(images, confidence, labels, predictions, unknown_label, n=TOP_K, ncols=NCOLS, ax=ax)
    ax.set_title(f"{title}\n{ax.get_title()}", fontsize=9)
    figure.savefig(path, dpi=120, bbox_inches="tight")


def sorted_samples_figure(runner):
    """Trains the runner's networks, fits their heads and draws Fig. 6 per (network, head, outlier set).

    Records ``figures`` -> ``{"{network}/{head}/{outlier}": "figures/NAME.png"}`` and, per method,
    ``samples/{network}/{head}/{outlier}`` -> ``{"top_k", "top_k_unknown", "top_k_misclassified_known",
    "top_half_unknown", "known", "unknown"}``, where the top half is the ``known`` most confident samples (a
    perfect method puts no unknown there); a head that cannot be fitted is recorded with its error message.
    """
    experiment = runner.experiment
    pending = [n for n in runner.networks if not all(
        runner.workspace.has(f"samples/{n.key}/{head}/{name}")
        for head in n.heads if head not in runner.skip_heads for name in runner.evaluations
    )]
    if not pending:
        return
    load = datasets.LOADERS[experiment.dataset]
    x_train, y_train = load("train", **runner.data)
    x_test, y_test = load("test", **runner.data)
    keep = _subsample(len(x_train), runner._limit("train"), runner.seed)
    x_train, y_train = x_train[keep], y_train[keep]
    keep = _subsample(len(x_test), runner._limit("test"), runner.seed)
    x_test, y_test = x_test[keep], y_test[keep]
    outliers = {name: runner._load_outliers(name, x_test) for name in runner.evaluations}
    outliers = {name: x for name, x in outliers.items() if x is not None}
    num_classes = int(y_train.max()) + 1
    for network in pending:
        model = runner.train(network.key, network.backbone, network.variant, x_train, y_train, num_classes)
        features = runner.features(network.key, model, {"train": x_train, "test": x_test, **outliers})
        heads = runner.fit_heads(network, features["train"], y_train, experiment.tail_size_for(network.backbone))
        for head, detector in heads.items():
            for name, x_out in outliers.items():
                key = f"{network.key}/{head}/{name}"
                if runner.workspace.has(f"samples/{key}"):
                    continue
                if isinstance(detector, Exception):
                    runner.workspace.record(f"samples/{key}", {"status": "failed", "message": str(detector)})
                    continue
                scored = {k: np.concatenate([features["test"][k], features[name][k]]) for k in features[name]}
                labels = np.concatenate([y_test, np.full(len(x_out), num_classes)])
                proba = detector.predict_proba(scored)
                confidence = proba[:, :-1].max(axis=1)
                predictions = detector.predict(scored)
                filename = f"samples_{network.key}_{head}_{name}.png"
                _save_figure(runner.workspace.path / "figures" / filename, np.concatenate([x_test, x_out]),
                             confidence, labels, predictions, num_classes, f"{network.key} + {head}, {name}")
                top = top_k_composition(confidence, labels, predictions, num_classes, TOP_K)
                half = top_k_composition(confidence, labels, predictions, num_classes, len(x_test))
                runner.workspace.record(f"samples/{key}", {
                    "top_k": min(TOP_K, len(labels)),
                    "top_k_unknown": top["unknown"],
                    "top_k_misclassified_known": top["misclassified_known"],
                    "top_half_unknown": half["unknown"],
                    "known": int(len(x_test)),
                    "unknown": int(len(x_out)),
                })
                figures = dict(runner.workspace.results.get("figures", {}))
                figures[key] = f"figures/{filename}"
                runner.workspace.record("figures", figures)
                runner._log(f"[samples] {key}: {top['unknown']:.0%} unknowns among the top {TOP_K}, "
                            f"{half['unknown']:.0%} in the top {len(x_test)}")
