#!/usr/bin/env bash
# The committed cross-dataset matrix (results/matrix/): two processes share one folder (--shard); the
# core rows first, then the one-seed ablations, then the report over all rows. Needs CROSSHAR_DATA;
# writes under $CROSSHAR_HOME/results/matrix. SEEDS=3 for the full protocol (this session's CPU time
# allowed 2; the third seed is added by rerunning with SEEDS=3: finished cells are skipped).
# (mask, contrast, crosshar_device and oracle_full are rows of `crosshar matrix` too; they did not
# fit this session's CPU time and are left out here.)
set -euo pipefail
SEEDS=${SEEDS:-2}
common=(-d uci,motion,wisdm --heads din --pretrain-epochs 10 --name matrix)
core=(--methods scratch,crosshar,crosshar_paper,oracle --seeds "$SEEDS")
extra=(--methods crosshar_nomirror,crosshar_full,multi --seeds 1)
for k in 0 1; do
  ( crosshar matrix "${common[@]}" "${core[@]}" --shard "$k/2" && crosshar matrix "${common[@]}" "${extra[@]}" --shard "$k/2" ) &
done
wait
crosshar matrix "${common[@]}" --seeds "$SEEDS" --report-only \
  --methods scratch,crosshar,crosshar_full,crosshar_nomirror,crosshar_paper,multi,oracle
