"""Figure 6: a random sample of known test samples and outliers, sorted by each method's confidence.

For every network and head of the experiment and every outlier set, the known test samples and the outliers
are scored together; the confidence is the largest known-class probability of ``predict_proba`` (the final
confidence of Eq. 3 for OpenMax / CROSR, the softmax maximum for Softmax). As in the paper, ``SAMPLED`` points
drawn at random (the same points for every method) are sorted by confidence and drawn with
:func:`keras_crosr.plots.plot_sorted_samples` (unknowns framed red, misclassified knowns cyan) into
``figures/samples_{network}_{head}_{outlier}.png``; fewer red frames on the left mean a more robust method.
"""

import numpy as np
from matplotlib.figure import Figure

from keras_crosr import plots
from keras_crosr.experiments.runner import subsample

SAMPLED = 50  # points drawn per figure, in rows of NCOLS
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
    rows = -(-len(images) // NCOLS)
    figure = Figure(figsize=(NCOLS * 0.8, rows * 0.8 + 0.6))
    ax = figure.subplots()
    plots.plot_sorted_samples(images, confidence, labels, predictions, unknown_label, n=len(images), ncols=NCOLS,
                              ax=ax)
    ax.set_title(f"{title}\n{ax.get_title()}", fontsize=9)
    figure.savefig(path, dpi=120, bbox_inches="tight")


def sorted_samples_figure(runner):
    """Trains the runner's networks, fits their heads and draws Fig. 6 per (network, head, outlier set).

    Records ``figures`` -> ``{"{network}/{head}/{outlier}": "figures/NAME.png"}`` and, per method,
    ``samples/{network}/{head}/{outlier}`` -> ``{"sampled", "sampled_unknown", "left_half_unknown",
    "left_half_misclassified_known", "top_half_unknown", "known", "unknown"}``: ``left_half_*`` are fractions
    of the more confident half of the drawn sample, ``top_half_unknown`` the fraction of unknowns among the
    ``known`` most confident of all scored samples (0 for a perfect method, 0.5 for a random order at the
    paper's 1:1 ratio), and ``detector``, the head's ``get_params()``: a record made with other detector
    settings is made again. A head that cannot be fitted is recorded with its error message.
    """
    experiment = runner.experiment

    def finished(network, head, name):
        return runner.finished(f"samples/{network.key}/{head}/{name}", head, network.backbone, experiment.dataset)

    def pending(names):
        return [n for n in runner.networks if not all(
            finished(n, head, name) for head in n.heads if head not in runner.skip_heads for name in names)]

    if not pending(runner.evaluations):
        return
    x_train, y_train, x_test, y_test, outliers = runner.load_outlier_benchmark()
    num_classes = int(y_train.max()) + 1
    for network in pending(list(outliers)):  # an unavailable outlier set keeps no network pending
        model = runner.train(network.key, network.backbone, network.variant, x_train, y_train, num_classes)
        if model is None:  # training diverged; the runner reports it
            continue
        features = runner.features(network.key, model, {"train": x_train, "test": x_test, **outliers})
        heads = runner.fit_heads(network, features["train"], y_train, backbone=network.backbone,
                                 dataset=experiment.dataset)
        for head, detector in heads.items():
            for name, x_out in outliers.items():
                key = f"{network.key}/{head}/{name}"
                if finished(network, head, name):
                    continue
                if isinstance(detector, Exception):
                    runner.workspace.record(f"samples/{key}", {"status": "failed", "message": str(detector)})
                    continue
                scored = {k: np.concatenate([features["test"][k], features[name][k]]) for k in features[name]}
                labels = np.concatenate([y_test, np.full(len(x_out), num_classes)])
                proba = detector.predict_proba(scored)
                confidence = proba[:, :-1].max(axis=1)
                predictions = detector.predict(scored)
                pick = subsample(len(labels), SAMPLED, runner.seed)
                filename = f"samples_{network.key}_{head}_{name}.png"
                images = np.concatenate([x_test, x_out])[pick]
                _save_figure(runner.workspace.path / "figures" / filename, images,
                             confidence[pick], labels[pick], predictions[pick], num_classes,
                             f"{network.key} + {head}, {name}")
                left = top_k_composition(confidence[pick], labels[pick], predictions[pick], num_classes,
                                         len(pick) // 2)
                half = top_k_composition(confidence, labels, predictions, num_classes, len(x_test))
                runner.workspace.record(f"samples/{key}", {
                    "sampled": int(len(pick)),
                    "sampled_unknown": int(np.sum(labels[pick] == num_classes)),
                    "left_half_unknown": left["unknown"],
                    "left_half_misclassified_known": left["misclassified_known"],
                    "top_half_unknown": half["unknown"],
                    "known": int(len(x_test)),
                    "unknown": int(len(x_out)),
                    "detector": detector.get_params(),
                })
                figures = dict(runner.workspace.results.get("figures", {}))
                figures[key] = f"figures/{filename}"
                runner.workspace.record("figures", figures)
                runner.log(f"[samples] {key}: {half['unknown']:.1%} unknowns among the {len(x_test)} most "
                            "confident samples (0% is perfect, 50% is chance)")
