#!/usr/bin/env bash
# The GPU measurements of docs/performance.md in one run: at most 8.5 minutes on one H100.
# Writes one JSON (or log) file per step into OUT (default ./gpu-measurements), eight files in all
# with steps.log (the device, then every step's errors), and goes on past a failing step, so one
# problem does not cost the rest. Needs the harness importable: installed (pip install -e .), or
# on the lent machine its dependencies from scripts/gpu-wheels.sh and the repository on PYTHONPATH:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
#   PYTHONPATH=/tmp/site:$PWD OUT=$OUT scripts/measure-gpu.sh
# A CPU dry run of the same steps, tiny:
#   DEVICE=cpu TINY=1 scripts/measure-gpu.sh
set -u
OUT="${OUT:-gpu-measurements}"
DEVICE="${DEVICE:-cuda}"
mkdir -p "$OUT"
if [ "${TINY:-0}" = 1 ]; then
  PERF=(--tiny); MODEL=cifar-resnet20; SEEDS=0,1,2; TRAIN=128
else
  PERF=(--steps 300 --warmup 30 --loader-workers 8); MODEL=cifar-resnet20; SEEDS=0,1,2,3,4,5,6,7,8,9; TRAIN=1000
fi
step() {  # step NAME SECONDS COMMAND...: run COMMAND with a time limit, its stdout to OUT/NAME
  local name=$1 limit=$2; shift 2
  echo "== $name: $*" >&2
  local started=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name" 2>>"$OUT/steps.log"
  echo "== $name: exit $? after $((SECONDS - started)) s" >&2
}
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available())"
} >"$OUT/steps.log" 2>&1
step cuda-tests.log 150 python3 -m pytest -q -p no:cacheprovider tests/test_fastpath.py tests/test_fusion.py \
  -k "cuda or separate"
step perf-graph.json 75 python3 -m harness perf --device "$DEVICE" "${PERF[@]}" --json
step perf-fused8.json 45 python3 -m harness perf --device "$DEVICE" --models cifar-resnet56 --fuse 8 "${PERF[@]}" --json
step perf-fused16.json 45 python3 -m harness perf --device "$DEVICE" --models cifar-resnet56 --fuse 16 "${PERF[@]}" --json
step perf-inflight2-fused8.json 60 python3 -m harness perf --device "$DEVICE" --models cifar-resnet56 --in-flight 2 --fuse 8 \
  "${PERF[@]}" --json
step equivalence-fused.json 60 python3 -m harness perf-equivalence --track cifar10-resnet56 --cifar-shaped --model "$MODEL" \
  --train-size "$TRAIN" --dense-epochs 2 --engine fused --seeds "$SEEDS" --schedule clr --budget 2 \
  --device "$DEVICE" --results "$OUT/results" --json
step perf-compile.json 75 python3 -m harness perf --device "$DEVICE" --models cifar-resnet56 --engine compile "${PERF[@]}" --json
rm -rf "$OUT/results"
