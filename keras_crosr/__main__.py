"""Command line: ``python -m keras_crosr list | run NAME | quickstart | report NAME RESULTS``.

Examples::

    python -m keras_crosr quickstart                      # the embedded sample, a few minutes on a CPU
    python -m keras_crosr list
    python -m keras_crosr run mnist-outliers --quick      # a reduced run on the real data
    python -m keras_crosr run mnist-outliers --data-dir ../shared/data --output runs/mnist-outliers
    python -m keras_crosr report mnist-outliers runs/mnist-outliers/results.json
"""

import argparse
import json
import sys
from pathlib import Path

from keras_crosr.experiments.config import EXPERIMENTS
from keras_crosr.protocols import SPLITS


def _parser():
    parser = argparse.ArgumentParser(prog="python -m keras_crosr", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="list the experiments of the paper")
    listing.add_argument("--details", action="store_true", help="also name each experiment's evaluations and networks")
    quickstart = commands.add_parser("quickstart", help="train on the embedded sample and print Table 2 in miniature")
    run = commands.add_parser("run", help="run one experiment")
    run.add_argument("name", help="experiment name (see `list`)")
    report = commands.add_parser("report", help="render the Markdown report of a run's results.json")
    report.add_argument("name", help="experiment name (see `list`)")
    report.add_argument("results", help="path of the run's results.json")
    for sub in (quickstart, run):
        sub.add_argument("--output", default=None, help="run directory (default: runs/NAME); reused to resume")
        sub.add_argument("--epochs", type=int, default=None, help="override the configured epochs (at least 1)")
        sub.add_argument("--seed", type=int, default=0,
                         help="seed of weights, shuffling, subsampling and synthesized outliers (default: 0)")
        sub.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress bars")
        sub.add_argument("--quick", action="store_true", help="the experiment's reduced budget")
    run.add_argument("--source", default="auto", choices=("auto", "local", "tfds"), help="where data comes from")
    run.add_argument("--data-dir", default=None, help="local data root (default: $KERAS_CROSR_DATA)")
    run.add_argument("--only", nargs="+", default=None,
                     help="restrict to these evaluations: outlier sets, class-split data sets or DBpedia's numbers of "
                          "unknown classes (`list --details` names each experiment's)")
    run.add_argument("--networks", nargs="+", default=None,
                     help="restrict to these networks, BACKBONE-VARIANT or a variant (`list --details` names them)")
    run.add_argument("--skip-heads", nargs="+", default=(), help="heads to leave for a later run (e.g. ocsvm)")
    run.add_argument("--trials", nargs="+", type=int, default=None,
                     help="restrict to these trials, 0-based (class-split; dbpedia when configured with several seeds)")
    run.add_argument("--splits", default=None, choices=SPLITS,
                     help=f"class-split trials: Neal et al.'s code (the paper's, default: {SPLITS[0]}) or ARPL's")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "list":
        width = max(map(len, EXPERIMENTS))
        for name, experiment in EXPERIMENTS.items():
            print(f"{name:<{width}}  {experiment.reproduces}")
            if args.details:
                indent = " " * (width + 2)
                if experiment.evaluations:
                    print(f"{indent}--only: {' '.join(map(str, experiment.evaluations))}")
                print(f"{indent}--networks: {' '.join(network.key for network in experiment.networks)}")
        return 0
    name = "quickstart" if args.command == "quickstart" else args.name
    if name not in EXPERIMENTS:
        return _error(f"unknown experiment {name!r}; available: {', '.join(EXPERIMENTS)}")
    if args.command == "report":
        return _report(EXPERIMENTS[name], Path(args.results))
    from keras_crosr.datasets import DatasetNotFoundError
    from keras_crosr.experiments.runner import Runner

    options = {"epochs": args.epochs, "seed": args.seed, "verbose": args.verbose, "quick": args.quick}
    if args.command == "run":
        options.update(source=args.source, data_dir=args.data_dir, only=args.only, networks=args.networks,
                       skip_heads=args.skip_heads, trials=args.trials, splits=args.splits)
    try:
        runner = Runner(name, args.output or f"runs/{name}", **options)
    except ValueError as error:  # bad arguments, or a run directory made with other settings
        return _error(str(error))
    try:
        print(runner.run(), end="")
    except (DatasetNotFoundError, ValueError) as error:  # e.g. a data set missing, a network file gone
        return _error(str(error))
    except OSError as error:  # e.g. an output directory that cannot be written
        return _error(f"{type(error).__name__}: {error}")
    from keras_crosr.experiments import report

    results = runner.workspace.results
    if not report.holds_results(runner.experiment, results):
        print(f"{name}: nothing was evaluated; see the caveats above", file=sys.stderr)
        return 1
    return 0


def _error(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


def _read_json_object(path):
    """The JSON object in ``path``, or a ``ValueError`` that names the file."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a readable JSON file: {error}") from error
    if not isinstance(value, dict):
        raise ValueError(f"{path} holds a JSON {type(value).__name__}, not the object a run writes")
    return value


def _report(experiment, results_path):
    """Prints the report of a run's results.json, with the run's settings: those of the run.json beside it, else
    those the results file records under ``"run"``."""
    if not results_path.is_file():
        return _error(f"no results file {results_path}")
    from keras_crosr.experiments import report

    settings_path = results_path.with_name("run.json")
    try:
        results = _read_json_object(results_path)
        settings = _read_json_object(settings_path) if settings_path.is_file() else results.get("run")
        if settings is not None and not isinstance(settings, dict):
            raise ValueError(f"{results_path}: its 'run' entry is not an object")
        if settings and settings.get("experiment", experiment.name) != experiment.name:
            raise ValueError(f"{results_path} holds a run of {settings['experiment']}, not of {experiment.name}")
        if not report.holds_results(experiment, results):
            unavailable = [f"{key.removeprefix('unavailable/')}: {why}" for key, why in sorted(results.items())
                           if key.startswith("unavailable/")]
            raise ValueError(f"{results_path} holds no results of {experiment.name}"
                             + (f" (not available to its run: {'; '.join(unavailable)})" if unavailable else ""))
        text = report.render(experiment, results, settings=settings)
    except ValueError as error:
        return _error(str(error))
    except (KeyError, TypeError, AttributeError) as error:  # an entry of another layout
        return _error(f"{results_path} is not laid out as a run's results.json ({type(error).__name__}: {error})")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
