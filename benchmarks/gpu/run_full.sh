#!/usr/bin/env bash
# Full-size runs of the paper's experiments on a GPU machine with Keras on JAX (no TensorFlow there).
#
# Prepare here (a machine with pip), from the repository root:
#   bash ../shared/device/prepare-wheels.sh                       # keras, namex, optree wheels into .whl/
#   bash benchmarks/gpu/run_full.sh --stage                       # copies the .npz files the runs need to .devdata/
# On the GPU machine, from a copy of the working tree carrying .whl and .devdata:
#   bash benchmarks/gpu/run_full.sh OUT_DIR [STAGE ...]   # STAGE: mnist, cifar10, class-split, samples
# Each stage runs under a time limit (MNIST_LIMIT, SPLIT_LIMIT seconds; CIFAR_LIMIT per network) so that one
# device call ends in time; MNIST_EPOCHS, CIFAR_EPOCHS and SPLIT_EPOCHS override the configured epochs (default: the
# configured, full-size ones: 15 for MNIST, 2-3 s an epoch per network on an H200; 60 for CIFAR-10, 2-3 s an epoch
# per plain-CNN network; 10 per class-split trial); MNIST_NETWORKS and SPLIT_NETWORKS name the networks to train.
# Each stage is `python -m keras_crosr run ...`, resumable; its results.json (render the Markdown with
# `python -m keras_crosr report NAME FILE.json`) and the trained MNIST
# networks are copied to OUT_DIR, with one log (run.log) holding Keras' per-epoch step timings.
set -uo pipefail
cd "$(dirname "$0")/../.."

if [ "${1:-}" = "--stage" ]; then
  mkdir -p .devdata
  grep -qx '/.devdata/' .git/info/exclude 2>/dev/null || echo '/.devdata/' >> .git/info/exclude
  src="${KERAS_CROSR_DATA:-../shared/data}"
  cp "$src"/MANIFEST.md "$src"/mnist.npz "$src"/omniglot_eval.npz "$src"/cifar10_jpeg.npz \
     "$src"/tinyimagenet_test.npz .devdata/
  du -sh .devdata .whl
  exit 0
fi

out="${1:?usage: run_full.sh OUT_DIR [STAGE ...]}"; shift
stages=("${@:-mnist cifar10 class-split}")
mkdir -p "$out"
if ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site:$PWD"
fi
export KERAS_BACKEND="${KERAS_BACKEND:-jax}" PYTHONUNBUFFERED=1 KERAS_CROSR_DATA="$PWD/.devdata"
runs=/tmp/keras_crosr_runs
log="$out/run.log"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null | tee "$log"
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)" \
  | tee -a "$log"

run() {  # run SECONDS NAME ARGS...: one experiment under a time limit, its results.json copied to $out
  local limit=$1 name=$2; shift 2
  local start=$SECONDS
  timeout "$limit" python3 -m keras_crosr run "$name" --source local --output "$runs/$name" --verbose 2 "$@" 2>&1 \
    | grep -v "^I0000\|^W0000" >> "$log"
  echo "$name: exit ${PIPESTATUS[0]} after $((SECONDS - start)) s" | tee -a "$log"
  cp "$runs/$name/results.json" "$out/$name.json" 2>/dev/null
}
# Partial results come back even if the whole command is cut short; the copier ends with the script (it would
# otherwise hold the caller's output open).
copy_results() {
  for f in "$runs"/*/results.json; do [ -f "$f" ] && cp "$f" "$out/$(basename "$(dirname "$f")").json"; done
}
(while sleep 20; do copy_results; done) >/dev/null 2>&1 &
copier=$!
trap 'kill $copier 2>/dev/null; copy_results' EXIT

for stage in ${stages[@]}; do
  case "$stage" in
    mnist)
      # OCSVM heads are left to a CPU run that resumes from the trained networks (they are CPU-bound).
      run "${MNIST_LIMIT:-300}" mnist-outliers --skip-heads ocsvm crosr_ocsvm \
        ${MNIST_EPOCHS:+--epochs "$MNIST_EPOCHS"} ${MNIST_NETWORKS:+--networks $MNIST_NETWORKS}
      mkdir -p "$out/networks"
      cp "$runs"/mnist-outliers/networks/*.keras "$out/networks/" ;;
    cifar10)
      # One process per network, in the order given (the runner trains in the configured order), all resuming
      # one run directory: a network cut by the limit leaves the finished ones' results.
      for network in ${CIFAR_NETWORKS:-cifar_cnn-dhrnet cifar_cnn-supervised cifar_cnn-laddernet}; do
        run "${CIFAR_LIMIT:-300}" cifar10-outliers --only imagenet_crop imagenet_resize \
          ${CIFAR_EPOCHS:+--epochs "$CIFAR_EPOCHS"} --networks "$network"
      done ;;
    class-split)
      run "${SPLIT_LIMIT:-300}" class-split --only mnist ${SPLIT_EPOCHS:+--epochs "$SPLIT_EPOCHS"} \
        --networks ${SPLIT_NETWORKS:-supervised dhrnet} ;;
    samples)
      run "${SAMPLES_LIMIT:-200}" samples ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
