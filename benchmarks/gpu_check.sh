#!/usr/bin/env bash
# The GPU checks of issue 11 in one short run, for a machine with a CUDA GPU (the lent accelerator):
#   1. the CUDA tests (tests/test_device.py: `--device cuda` training, autocast, NCCL for torchrun);
#   2. the default pipeline on the GPU, each stage timed on the wall clock:
#      crosshar pretrain -d uci && crosshar finetune -lr 0.1 && crosshar cross -d uci -td $TARGET;
#   3. pretraining throughput (windows/s per stage) at a longer schedule (benchmarks/pretrain_speed.py);
#   4. a slice of the matrix on the GPU (per-cell times in its timing.jsonl, to set against results/matrix/);
#   5. the whole test suite with the GPU visible (so every `--device auto` path runs on CUDA).
# Every step is time-boxed (and cut to what is left of DEADLINE_S seconds for the whole script) and none
# stops the others; logs go to $LOGS (default results/gpu_check/), also packed after every step into
# $ARCHIVE when set (a .tgz, for a machine that hands back few files); the summary is printed last.
# Needs CROSSHAR_DATA holding uci_hapt and $TARGET's raw folder.
#
#   DEVICE=cuda TARGET=motion bash benchmarks/gpu_check.sh
# On a CPU-only machine, DEVICE=cpu runs the same commands (a dry run of this script).
set -u
DEVICE=${DEVICE:-cuda}
TARGET=${TARGET:-motion}
LOGS=${LOGS:-results/gpu_check}
ARCHIVE=${ARCHIVE:-}
DEADLINE_S=${DEADLINE_S:-900}
PY=${PY:-python3}
SUITE_S=${SUITE_S:-150}
MATRIX_S=${MATRIX_S:-150}
SPEED_EPOCHS=${SPEED_EPOCHS:-20}
export CROSSHAR_HOME=${CROSSHAR_HOME:-$(mktemp -d)}
export PYTHONUNBUFFERED=1
mkdir -p "$LOGS"
start=$EPOCHREALTIME
summary="$LOGS/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
# step NAME LIMIT_S CMD...: runs CMD under `timeout`, logs to $LOGS/NAME.log, notes exit code and wall seconds
step() {
  local name=$1 limit=$2; shift 2
  local t0 rc left
  left=$(awk -v a="$start" -v b="$EPOCHREALTIME" -v d="$DEADLINE_S" 'BEGIN { printf "%d", d - (b - a) }')
  if (( left < 15 )); then note "$name: skipped, the script's DEADLINE_S is spent"; return; fi
  (( limit > left )) && limit=$left
  t0=$EPOCHREALTIME
  timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1; rc=$?
  note "$(awk -v a="$t0" -v b="$EPOCHREALTIME" -v n="$name" -v r="$rc" -v c="$*" \
    'BEGIN { printf "%-14s rc=%-3s wall %7.1f s   %s", n, r, b - a, c }')"
  [[ -n $ARCHIVE ]] && tar czf "$ARCHIVE" -C "$LOGS" .
}

note "== machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$summary"
$PY -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'visible', torch.cuda.is_available())" 2>&1 | tee -a "$summary"
note "CROSSHAR_HOME=$CROSSHAR_HOME CROSSHAR_DATA=${CROSSHAR_DATA:-unset} DEVICE=$DEVICE"

note "== 1. CUDA tests"
step test_device 120 $PY -m pytest -q -rs -p no:cacheprovider tests/test_device.py
tail -3 "$LOGS/test_device.log" | tee -a "$summary"

note "== 2. default pipeline on $DEVICE (seed 0)"
step pretrain 150 $PY -m crosshar pretrain -d uci --device "$DEVICE" --seed 0 -q
step finetune 150 $PY -m crosshar finetune -lr 0.1 --device "$DEVICE" --seed 0
step cross 90 $PY -m crosshar cross -d uci -td "$TARGET" --device "$DEVICE"
grep -i "macro" "$LOGS/cross.log" | head -3 | tee -a "$summary"

note "== 3. pretraining throughput, $SPEED_EPOCHS epochs"
step pretrain_speed 150 $PY benchmarks/pretrain_speed.py -d uci --epochs "$SPEED_EPOCHS" --device "$DEVICE" --threads 4
tail -4 "$LOGS/pretrain_speed.log" | tee -a "$summary"

note "== 4. matrix slice on $DEVICE: uci -> $TARGET and the uci oracle, 3 seeds"
step matrix "$MATRIX_S" $PY -m crosshar matrix -d uci --targets-only "$TARGET" --heads din --seeds 3 \
  --methods scratch,crosshar,oracle --device "$DEVICE" --name gpu --jobs 1
cp "$CROSSHAR_HOME"/results/gpu/timing.jsonl "$LOGS/matrix_timing.jsonl" 2>/dev/null
cp "$CROSSHAR_HOME"/results/gpu/rows.jsonl "$LOGS/matrix_rows.jsonl" 2>/dev/null
note "matrix cells done: $(cat "$LOGS/matrix_rows.jsonl" 2>/dev/null | wc -l)"

note "== 5. the whole test suite with the GPU visible"
if $PY -c "import xdist" 2>/dev/null; then par=(-n 12); else par=(); fi
step suite "$SUITE_S" env -u CROSSHAR_DATA $PY -m pytest -q -p no:cacheprovider "${par[@]}" tests
tail -15 "$LOGS/suite.log" | grep -E "passed|failed|error|FAILED|ERROR" | tee -a "$summary"

note "== summary"
cat "$summary"
