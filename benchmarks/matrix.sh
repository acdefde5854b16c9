#!/usr/bin/env bash
# The committed cross-dataset matrix (results/matrix/): two processes share one folder (--shard),
# the core rows with 3 seeds first, then the one-seed ablations, then the report over all rows.
# Needs CROSSHAR_DATA; writes under $CROSSHAR_HOME/results/matrix. About 2 h on an idle 2-core CPU.
# (mask, contrast, crosshar_device and oracle_full are rows of `crosshar matrix` too; they did not
# fit this session's CPU time and are left out here.)
set -euo pipefail
common=(-d uci,motion,wisdm --heads din --pretrain-epochs 10 --name matrix)
core=(--methods scratch,crosshar,crosshar_paper,oracle --seeds 3)
extra=(--methods crosshar_nomirror,crosshar_full,multi --seeds 1)
for k in 0 1; do
  ( crosshar matrix "${common[@]}" "${core[@]}" --shard "$k/2" && crosshar matrix "${common[@]}" "${extra[@]}" --shard "$k/2" ) &
done
wait
crosshar matrix "${common[@]}" --seeds 3 --report-only \
  --methods scratch,crosshar,crosshar_full,crosshar_nomirror,crosshar_paper,multi,oracle
