"""Markdown reports: each of our numbers beside the paper's, with the data caveats."""

import numpy as np

from keras_crosr import protocols
from keras_crosr.experiments import paper
from keras_crosr.experiments.config import class_split_dataset

_PAPER_BACKBONE = {"mnist_cnn": "plain_cnn", "cifar_cnn": "plain_cnn", "densenet92": "densenet"}


def _cell(ours, published=None, digits=3):
    text = "–" if ours is None else f"{ours:.{digits}f}"
    return text if published is None else f"{text} ({published:.{digits}f})"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _metric(results, key, name="macro_f1"):
    value = results.get(key)
    return value.get(name) if isinstance(value, dict) else None


def _outliers(experiment, results):
    sections = []
    accuracy_rows = []
    for network in experiment.networks:
        published = paper.TABLE1_CLOSED_SET_ACCURACY.get(
            (_PAPER_BACKBONE.get(network.backbone), network.variant, experiment.dataset)
        )
        accuracy_rows.append([network.backbone, network.variant,
                              _cell(results.get(f"{network.key}/closed_set_accuracy"), published)])
    sections.append("### Closed-set test accuracy (Table 1)\n\n" + _table(["backbone", "training", "accuracy"],
                                                                          accuracy_rows))
    mnist = experiment.dataset in ("mnist", "sample")
    published_f1 = paper.TABLE2_MNIST_F1 if mnist else paper.TABLE3_CIFAR10_F1
    for metric, title in (("macro_f1", "Macro-F1 over N+1 classes at threshold 0.5 (Tables 2, 3, 6)"),
                          ("auroc", "AUROC of unknown detection")):
        rows = []
        for network in experiment.networks:
            for head in network.heads:
                if mnist:
                    reference = published_f1.get((network.variant, head)) or paper.TABLE6_MNIST_F1.get(
                        (network.variant, head), {})
                else:
                    reference = published_f1.get((network.backbone, network.variant, head), {})
                rows.append([network.backbone, network.variant, head] + [
                    _cell(_metric(results, f"{network.key}/{head}/{name}", metric),
                          reference.get(name) if metric == "macro_f1" else None)
                    for name in experiment.evaluations
                ])
        if metric == "macro_f1" and not mnist:
            backbones = {network.backbone for network in experiment.networks}
            rows += [[backbone, "paper", method] + [_cell(None, scores.get(name)) for name in experiment.evaluations]
                     for (backbone, method), scores in paper.TABLE3_CIFAR10_F1_OTHERS.items() if backbone in backbones]
        sections.append(f"### {title}\n\n" + _table(["backbone", "training", "detector", *experiment.evaluations],
                                                    rows))
    rates = _rejection_rates(experiment, results)
    if rates:
        sections.append(rates)
    figures = results.get("figures", {})
    if figures:
        sections.append("### Macro-F1 against the rejection threshold (Figure 5)\n\n"
                        + "\n".join(f"![{name}]({path})" for name, path in sorted(figures.items())))
    return sections


def _rejection_rates(experiment, results):
    """Where the decisions at threshold 0.5 went, for the runs that recorded it (``metrics.rejection_rates``)."""
    rows = []
    for network in experiment.networks:
        for head in network.heads:
            entries = [results.get(f"{network.key}/{head}/{name}") for name in experiment.evaluations]
            entries = [e if isinstance(e, dict) and "unknown_rejected" in e else None for e in entries]
            if not any(entries):
                continue
            known = next(e["known_rejected"] for e in entries if e)  # the same known test set in every column
            rows.append([network.backbone, network.variant, head, f"{known:.3f}"] + [
                "–" if e is None else f"{e['unknown_rejected']:.3f} / {e['unknown_in_largest_class']:.3f}"
                for e in entries
            ])
    if not rows:
        return None
    return ("### Where the decisions at threshold 0.5 went\n\n"
            "Known test samples rejected; per outlier set, the outliers rejected / the largest share of them given "
            "to one known class (macro-F1 rises with either, so the F1 alone does not say which).\n\n"
            + _table(["backbone", "training", "detector", "knowns rejected", *experiment.evaluations], rows))


def _mean_std(values):
    """``"mean ± std (n=...)"`` of the values present; the std of the trials themselves (``ddof=0``)."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    return f"{np.mean(values):.3f} ± {np.std(values):.3f} (n={len(values)})"


def _splits(experiment, settings):
    """Class separation: whose trials the run evaluated, from its settings (a run recorded without them: ARPL's)."""
    if experiment.kind != "class_split":
        return []
    if (settings or {}).get("splits", protocols.SPLITS_BEFORE_CHOICE) == "neal":
        unknown = ", ".join(map(str, protocols.NEAL_UNKNOWN))
        return [f"Splits: the trials of Neal et al.'s released code for MNIST, SVHN and CIFAR-10 (unknown classes "
                f"{unknown}), which the paper follows; Tiny ImageNet and CIFAR+N, drawn at random there, use the "
                "ARPL lists (see keras_crosr.protocols)."]
    return ["Splits: the ARPL lists (`--splits arpl`), which the later literature attributes to Neal et al. but "
            "which are not the trials of Neal et al.'s code that the paper follows; their SVHN and CIFAR-10 "
            "trials 0 and 1 share the same known classes (see keras_crosr.protocols)."]


def _other_backbones(experiment, results):
    """Class separation: which data sets' recorded networks were trained on another backbone than the
    experiment's networks (``Experiment.backbones``), as their training records say."""
    if experiment.kind != "class_split":
        return []
    own = sorted({network.backbone for network in experiment.networks})
    others = {}
    for key, record in results.items():
        dataset = class_split_dataset(key, experiment.evaluations)
        if key.endswith("/training") and dataset is not None and record.get("backbone") not in own:
            others.setdefault(dataset, set()).add(record.get("backbone"))
    return [f"{dataset}: networks trained on {', '.join(sorted(others[dataset]))}, not on {', '.join(own)}, the "
            "backbone of the experiment's networks"
            for dataset in map(str, experiment.evaluations) if dataset in others]


def _class_split(experiment, results):
    rows = []
    for network in experiment.networks:
        for head in network.heads:
            row = [network.variant, head]
            for dataset in experiment.evaluations:
                row.append(_mean_std([_metric(results, f"{dataset}/trial{t}/{network.variant}/{head}", "auroc")
                                      for t in range(experiment.trials)]))
            rows.append(row)
    for method, scores in paper.TABLE5_AUROC.items():
        rows.append(["paper", method] + [
            "–" if d not in scores else (f"{scores[d][0]:.3f}" + (f" ± {scores[d][1]:.3f}" if scores[d][1] else ""))
            for d in experiment.evaluations
        ])
    return ["### AUROC of unknown detection, mean ± std (population, ddof=0) over the trials (Table 5)\n\n"
            + _table(["training", "detector", *experiment.evaluations], rows)]


def _dbpedia(experiment, results):
    settings = [f"4/{4 + u}" for u in experiment.evaluations]
    found = {}  # (variant, head, setting) -> {"seedS": macro-F1} of the heads that did not fail
    for key, value in results.items():
        parts = key.split("/")
        if len(parts) == 5 and parts[2].startswith("seed") and isinstance(value, dict) and "macro_f1" in value:
            found.setdefault((parts[3], parts[4], "/".join(parts[:2])), {})[parts[2]] = value["macro_f1"]
    seeds = sorted({seed for values in found.values() for seed in values}, key=lambda seed: int(seed[len("seed"):]))
    rows = []
    for network in experiment.networks:
        for head in network.heads:
            row = [network.variant, head]
            for setting in settings:
                values = found.get((network.variant, head, setting), {})
                published = paper.TABLE4_DBPEDIA_F1.get(head, {}).get(setting)
                if len(seeds) > 1:  # several seeds, each with its own draw of the 4 known classes
                    reference = "" if published is None else f" ({published:.3f})"
                    row.append(_mean_std(list(values.values())) + reference)
                else:
                    row.append(_cell(next(iter(values.values()), None), published))
            rows.append(row)
    run_heads = {head for network in experiment.networks for head in network.heads}
    rows += [["paper", method] + [_cell(None, scores.get(setting)) for setting in settings]
             for method, scores in paper.TABLE4_DBPEDIA_F1.items() if method not in run_heads]
    over = (f", mean ± std (population, ddof=0) over the seeds ({', '.join(seeds)}), each with its own draw of the "
            "known classes" if len(seeds) > 1 else "")
    return [f"### Macro-F1 on DBpedia, known/total classes (Table 4){over}\n\n"
            + _table(["training", "detector", *settings], rows)]


def _runtime(experiment, results):
    rows = []
    for key, value in sorted(results.items()):
        if key.startswith("runtime/"):
            _, backbone, method = key.split("/")
            published = paper.TABLE7_MS_PER_IMAGE.get(method, {}).get(backbone)
            rows.append([backbone, method, _cell(value["ms_per_image"], published, 2),
                         f"{value['ratio_to_softmax']:.2f}"])
    return ["### Milliseconds per image at batch size 1 (Table 7; paper: GTX Titan X)\n\n"
            + _table(["backbone", "method", "ms / image (paper)", "÷ softmax"], rows)]


def _samples(experiment, results):
    figures = results.get("figures", {})
    return ["### Test samples sorted by confidence (Figure 6)\n\n"
            + "\n".join(f"![{name}]({path})" for name, path in sorted(figures.items()))]


def _training_line(key, record):
    """``KEY: E epochs on N samples, T s (backend)``; a resumed training says that T covers its last epochs only."""
    epochs = record["epochs"]
    line = f"{key}: {epochs} epoch{'' if epochs == 1 else 's'} on {record['train_samples']} samples, "
    resumed = record.get("resumed_at_epoch", 0)
    left = epochs - resumed
    if resumed and left:
        line += f"resumed after epoch {resumed}: {record['wall_time_s']} s for the last {left}"
    elif resumed:  # every epoch had been saved before the interruption: only the network was left to save
        line += f"resumed after its last epoch: {record['wall_time_s']} s to restore and save it"
    else:
        line += f"{record['wall_time_s']} s"
    return line + f" ({record['backend']})"


def _failures(experiment, results):
    """``KEY: message`` per failed head; a head of an outlier experiment fails once for all its outlier sets,
    listed as ``NETWORK/HEAD (set, set): message``."""
    grouped = {}
    for key, value in sorted(results.items()):
        if isinstance(value, dict) and value.get("status") == "failed":
            head, unknown_set = key.rsplit("/", 1) if experiment.kind == "outliers" else (key, None)
            grouped.setdefault((head, value["message"]), []).append(unknown_set)
    return [f"{head} ({', '.join(sets)}): {message}" if sets[0] else f"{head}: {message}"
            for (head, message), sets in grouped.items()]


def _unavailable_note(name, why, results):
    """The caveat of a data set the last run could not load: not evaluated, or evaluated by an earlier run."""
    if any(name in key.split("/") for key in results if not key.startswith(("unavailable/", "problems/"))):
        return f"{name} was not available to the last run (its numbers come from an earlier one): {why}"
    return f"{name} not evaluated: {why}"


def holds_results(experiment, results):
    """Whether ``results`` (a ``results.json`` dict) holds any result of ``experiment``'s kind and networks."""
    first = {"outliers": lambda key: key.split("/", 1)[0] in {n.key for n in experiment.networks},
             "class_split": lambda key: key.split("/", 1)[0] in experiment.evaluations and "/trial" in key,
             "dbpedia": lambda key: key.startswith("4/") and "/seed" in key,
             "runtime": lambda key: key.startswith("runtime/"),
             "samples": lambda key: key == "figures"}[experiment.kind]
    return any(first(key) for key in results)


def render(experiment, results, *, settings=None):
    """The Markdown report of one run: our number first, the paper's in parentheses.

    ``settings``: the run's recorded settings (its ``run.json``), which say whether it was a quick run; default:
    those ``results`` holds under ``"run"``.
    """
    settings = settings or results.get("run")
    lines = [f"## {experiment.name}: {experiment.reproduces}", ""]
    if settings and settings.get("quick"):
        budget = ", ".join(f"{k}={settings.get(k)}" for k in ("epochs", "train", "test", "batch_size", "learning_rate"))
        lines += [f"**Quick run** ({budget}): numbers are not comparable with the paper's.", ""]
    trainings = {k: v for k, v in results.items() if k.endswith("/training")}
    if trainings:
        lines += ["Training: " + "; ".join(
            _training_line(k[: -len("/training")], v) for k, v in sorted(trainings.items())), ""]
    sections = {"outliers": _outliers, "class_split": _class_split, "dbpedia": _dbpedia, "runtime": _runtime,
                "samples": _samples}[experiment.kind](experiment, results)
    lines += ["\n\n".join(sections), ""]
    unavailable = {k.split("/", 1)[1]: v for k, v in results.items() if k.startswith("unavailable/")}
    notes = [*_splits(experiment, settings), *experiment.caveats, *_other_backbones(experiment, results),
             *(_unavailable_note(name, why, results) for name, why in unavailable.items()),
             *(why for key, why in sorted(results.items()) if key.startswith("problems/")),
             *_failures(experiment, results)]
    if notes:
        lines += ["Caveats:", *[f"- {note}" for note in notes], ""]
    sources = sorted((k.removeprefix("source of "), v) for k, v in results.get("inputs", {}).items()
                     if k.startswith("source of "))
    if sources:
        lines += ["Data read from: " + "; ".join(f"{name}: {where}" for name, where in sources) + ".", ""]
    return "\n".join(lines)
