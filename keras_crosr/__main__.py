"""Command line: ``python -m keras_crosr list | run NAME | quickstart | report NAME RESULTS``.

Examples::

    python -m keras_crosr quickstart                      # the embedded sample, a few minutes on a CPU
    python -m keras_crosr list
    python -m keras_crosr run mnist-outliers --quick      # a reduced run on the real data
    python -m keras_crosr run mnist-outliers --data-dir ../shared/data --output runs/mnist-outliers
    python -m keras_crosr report mnist-outliers runs/mnist-outliers/results.json
"""

import argparse
import sys

from keras_crosr.experiments.config import EXPERIMENTS


def _parser():
    parser = argparse.ArgumentParser(prog="python -m keras_crosr", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the experiments of the paper")
    quickstart = commands.add_parser("quickstart", help="train on the embedded sample and print Table 2 in miniature")
    run = commands.add_parser("run", help="run one experiment")
    run.add_argument("name", help="experiment name (see `list`)")
    report = commands.add_parser("report", help="render the Markdown report of a run's results.json")
    report.add_argument("name", help="experiment name (see `list`)")
    report.add_argument("results", help="path of the run's results.json")
    for sub in (quickstart, run):
        sub.add_argument("--output", default=None, help="run directory (default: runs/NAME); reused to resume")
        sub.add_argument("--epochs", type=int, default=None, help="override the configured epochs")
        sub.add_argument("--seed", type=int, default=0)
        sub.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras progress bars")
    run.add_argument("--quick", action="store_true", help="the experiment's reduced budget")
    run.add_argument("--source", default="auto", choices=("auto", "local", "tfds"), help="where data comes from")
    run.add_argument("--data-dir", default=None, help="local data root (default: $KERAS_CROSR_DATA)")
    run.add_argument("--only", nargs="+", default=None, help="restrict to these evaluations (outlier sets, splits)")
    run.add_argument("--networks", nargs="+", default=None, help="restrict to these networks (BACKBONE-VARIANT)")
    run.add_argument("--skip-heads", nargs="+", default=(), help="heads to leave for a later run (e.g. ocsvm)")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    if args.command == "list":
        width = max(map(len, EXPERIMENTS))
        for name, experiment in EXPERIMENTS.items():
            print(f"{name:<{width}}  {experiment.reproduces}")
        return 0
    if args.command == "report":
        import json
        from pathlib import Path

        from keras_crosr.experiments import report
        from keras_crosr.experiments.config import get_experiment

        results = json.loads(Path(args.results).read_text())
        print(report.render(get_experiment(args.name), results))
        return 0
    from keras_crosr.experiments.runner import Runner

    name = "quickstart" if args.command == "quickstart" else args.name
    if name not in EXPERIMENTS:
        print(f"error: unknown experiment {name!r}; available: {', '.join(EXPERIMENTS)}", file=sys.stderr)
        return 2
    options = {"epochs": args.epochs, "seed": args.seed, "verbose": args.verbose}
    if args.command == "run":
        options.update(quick=args.quick, source=args.source, data_dir=args.data_dir, only=args.only, networks=args.networks,
                       skip_heads=args.skip_heads)
    print(Runner(name, args.output or f"runs/{name}", **options).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
