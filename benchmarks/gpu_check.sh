#!/usr/bin/env bash
# GPU vs CPU in one call: the baseline MLP on the GPU (float32, then experiments/gpu.flags
# with mixed float16) and on the same machine's CPU, then `compare` of the three runs.
#
#   bash benchmarks/gpu_check.sh --data_dir=../shared/datasets/mnist
#   bash benchmarks/gpu_check.sh --cpu_only --tiny --data_dir=...   # every step, on a CPU
#
# Flags:
#   --data_dir=DIR   passed to every training run (default: the training command's own default)
#   --output=DIR     where everything is written (default: runs/gpu_check-YYYYmmdd-HHMMSS);
#                    must not exist yet, or be empty
#   --epochs=N       epochs of each run (default 5; speed is timed on epochs 2..N)
#   --cpu_only       no GPU needed: the two "gpu" runs train on the CPU too
#                    (CUDA_VISIBLE_DEVICES=-1); also GPU_CHECK_CPU_ONLY=1
#   --tiny           2 epochs on 2,000 training and 500 test images (a check that it runs)
#   -- FLAGS...      further flags for every training run
# Environment: PYTHON (default python3), RUN_TIMEOUT (seconds a run may take, default 150:
# three runs and the checks stay under 8 minutes).
#
# Writes OUTPUT/{gpu-fp32,gpu-mixed,cpu}/ (run dirs), OUTPUT/<run>.log (each run's
# terminal) and OUTPUT/compare/compare.{md,json,png} (cpu is the reference row), and
# prints the compare table. Exit status 1, with one `error:` line, when TensorFlow sees
# no GPU (without --cpu_only), an argument is wrong or a run fails.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
fail() { echo "error: $*" >&2; exit 1; }

PYTHON=${PYTHON:-python3}
RUN_TIMEOUT=${RUN_TIMEOUT:-150}
data_dir="" output="" epochs=5 tiny=0 cpu_only=${GPU_CHECK_CPU_ONLY:-0}
extra=()
while (($#)); do
  case "$1" in
    --data_dir=*) data_dir=${1#*=} ;;
    --output=*) output=${1#*=} ;;
    --epochs=*) epochs=${1#*=} ;;
    --cpu_only) cpu_only=1 ;;
    --tiny) tiny=1 ;;
    -h|--help) usage; exit 0 ;;
    --) shift; extra=("$@"); break ;;
    *) fail "unknown argument $1 (--help lists them)" ;;
  esac
  shift
done
[[ $epochs =~ ^[1-9][0-9]*$ ]] || fail "--epochs=$epochs: expected a positive whole number"
[[ $cpu_only == 0 || $cpu_only == 1 ]] || fail "GPU_CHECK_CPU_ONLY=$cpu_only: expected 0 or 1"
command -v "$PYTHON" >/dev/null || fail "PYTHON=$PYTHON: not found"

# Paths the caller gave are relative to the caller's folder; the runs start in the repository.
if [[ -n $data_dir ]]; then
  [[ -d $data_dir ]] || fail "--data_dir=$data_dir: no such folder"
  data_dir=$(cd "$data_dir" && pwd)
fi
output=${output:-runs/gpu_check-$(date +%Y%m%d-%H%M%S)}
if [[ -e $output && -n $(ls -A "$output" 2>/dev/null) ]]; then
  fail "--output=$output exists and is not empty; choose another --output"
fi
common=("--epochs=$epochs")
if ((tiny)); then
  common=("--epochs=2" "--limit_train=2000" "--limit_test=500" "--steps_per_loop=5"
          "--summary_every_steps=5")
fi
[[ -n $data_dir ]] && common+=("--data_dir=$data_dir")

if ((cpu_only)); then
  export CUDA_VISIBLE_DEVICES=-1
  echo "CPU-only mode: the gpu-fp32 and gpu-mixed runs train on the CPU (their device column says so)"
else
  gpus=$(TF_CPP_MIN_LOG_LEVEL=2 "$PYTHON" -c \
    "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))" 2>/dev/null \
    | tail -n 1) || gpus=""
  if [[ -z $gpus ]]; then
    fail "$PYTHON cannot import TensorFlow (is the project's environment active?)"
  elif ((gpus == 0)); then
    fail "TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty; check" \
         "nvidia-smi and that TensorFlow has CUDA: pip install 'tensorflow[and-cuda]');" \
         "--cpu_only runs the same steps on the CPU"
  fi
  echo "TensorFlow sees $gpus GPU(s)"
fi

# Created only now: a machine without a GPU leaves no empty output folder behind.
mkdir -p "$output" || fail "--output=$output: cannot create"
output=$(cd "$output" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."

train() {  # name, flags...
  local name=$1; shift
  local started=$SECONDS
  echo "training $name ($*) -> $output/$name"
  if ! timeout "$RUN_TIMEOUT" env TF_CPP_MIN_LOG_LEVEL=2 "$PYTHON" -m mnist_research.train "$@" \
      "${common[@]}" "--run_dir=$output/$name" ${extra[@]+"${extra[@]}"} \
      >"$output/$name.log" 2>&1; then
    tail -n 5 "$output/$name.log" >&2
    fail "the $name run failed or ran past RUN_TIMEOUT=${RUN_TIMEOUT}s (log: $output/$name.log)"
  fi
  grep -E "^Test accuracy " "$output/$name.log" | head -n 1 | sed "s/^/  $name: /" || true
  echo "  $name: $((SECONDS - started)) s"
}

train gpu-fp32 --flagfile=experiments/baseline.flags --experiment=gpu_fp32
train gpu-mixed --flagfile=experiments/gpu.flags
train cpu --flagfile=experiments/cpu.flags

"$PYTHON" -m mnist_research.compare "$output/cpu" "$output/gpu-fp32" "$output/gpu-mixed" \
  "--output=$output/compare" || fail "compare failed"
echo "total: $SECONDS s; everything is under $output"
