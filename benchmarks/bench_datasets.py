"""Load time and peak memory of each keras_crosr.datasets loader on the real offline files.

Each loader runs once in a fresh Python process (so that the peak resident memory belongs to it alone):
time is the wall time of the call; "peak extra memory" is the growth of the process's peak RSS
(``resource.getrusage``) during the call; "output" is the size of the returned arrays. A peak / output ratio
near 1 means the data are decoded once, straight into the output (the JPEG loaders also hold the compressed
bytes while decoding). LSUN and SVHN have no offline files and are not measured.

Run: ``python benchmarks/bench_datasets.py [--data-dir DIR]`` (default ``$KERAS_CROSR_DATA`` or
``../shared/data``); writes ``datasets.{json,md}`` into ``--output-dir`` (default ``benchmarks/results``).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

# name -> expression evaluated with `d` = keras_crosr.datasets, `P` = keras_crosr.protocols, `root` = data root.
CASES = {
    "MNIST train (60,000)": "d.load_mnist('train', data_dir=root)",
    "MNIST test (10,000)": "d.load_mnist('test', data_dir=root)",
    "Omniglot (10,000)": "d.load_omniglot(data_dir=root)",
    "Noise (10,000)": "d.load_noise()",
    "MNIST-Noise (10,000)": "d.load_mnist_noise(data_dir=root)",
    "CIFAR-10 train (50,000 JPEGs)": "d.load_cifar10('train', data_dir=root)",
    "CIFAR-10 test (10,000 JPEGs)": "d.load_cifar10('test', data_dir=root)",
    "ImageNet-crop (10,000 JPEGs)": "d.load_imagenet_crop(data_dir=root)",
    "ImageNet-resize (10,000 JPEGs)": "d.load_imagenet_resize(data_dir=root)",
    "Tiny ImageNet val (10,000 JPEGs)": "d.load_tinyimagenet('val', data_dir=root)",
    "Tiny ImageNet train, 20 classes (10,000 JPEGs)": (
        "d.load_tinyimagenet('train', classes=P.published_split('tinyimagenet', 0)[0], label_order='sorted', "
        "data_dir=root)"
    ),
    "DBpedia subset (5,000 + 5,000 texts, vocabulary)": "d.load_dbpedia(data_dir=root)",
    "embedded sample": "d.load_sample()",
}

CHILD = """
import json, resource, sys, time
import numpy as np
import keras_crosr.datasets as d
import keras_crosr.protocols as P
root = sys.argv[1]

def nbytes(obj):
    if isinstance(obj, np.ndarray):
        return obj.nbytes
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (tuple, list)):
        return sum(nbytes(v) for v in obj)
    return 0

before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
result = eval(sys.argv[2])
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
peak_extra_mib = (after - before) / 1024  # ru_maxrss is in KiB on Linux
print(json.dumps({"seconds": seconds, "peak_extra_mib": peak_extra_mib, "output_mib": nbytes(result) / 2**20}))
"""


def default_root():
    env = os.environ.get("KERAS_CROSR_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


def run_case(expression, root):
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), expression], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=default_root())
    parser.add_argument("--output-dir", type=Path, default=RESULTS,
                        help="directory for datasets.{json,md} (default: benchmarks/results)")
    args = parser.parse_args(argv)
    if not (args.data_dir / "MANIFEST.md").is_file():
        sys.exit(f"no data root at {args.data_dir}: pass --data-dir or set KERAS_CROSR_DATA")
    load_before = os.getloadavg()[0]
    rows = []
    for name, expression in CASES.items():
        row = {"loader": name, "call": expression, **run_case(expression, args.data_dir)}
        row["peak_over_output"] = row["peak_extra_mib"] / row["output_mib"] if row["output_mib"] else None
        rows.append(row)
        print(
            f"{name:50s} {row['seconds']:7.2f} s  peak +{row['peak_extra_mib']:7.1f} MiB  output "
            f"{row['output_mib']:7.1f} MiB",
            flush=True,
        )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    (args.output_dir / "datasets.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=2))
    lines = [
        "# Data set loading: time and peak memory (keras_crosr.datasets, real offline files)",
        "",
        f"`python benchmarks/bench_datasets.py` (one run, each loader in a fresh process; {meta['cpus']} CPUs, "
        f"Python {meta['python']}; 1-minute load average {meta['load_average_before']} before and "
        f"{meta['load_average_after']} after: times on a shared machine). Peak extra = growth of the peak RSS "
        "during the call.",
        "",
        "| loader | time (s) | peak extra (MiB) | output (MiB) | peak / output |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r['peak_over_output']:.2f}" if r["peak_over_output"] else "-"
        lines.append(
            f"| {r['loader']} | {r['seconds']:.2f} | {r['peak_extra_mib']:.1f} | {r['output_mib']:.1f} | {ratio} |"
        )
    lines += ["", "LSUN-crop / LSUN-resize and SVHN: no offline files, not measured."]
    (args.output_dir / "datasets.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output_dir / 'datasets.json'} and {args.output_dir / 'datasets.md'}")


if __name__ == "__main__":
    main()
