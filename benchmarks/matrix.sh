#!/usr/bin/env bash
# The committed cross-dataset matrix (results/matrix/): two processes share one folder (--shard),
# the core rows with 3 seeds first, then the one-seed ablations, then the report over all rows.
# Needs CROSSHAR_DATA; writes under $CROSSHAR_HOME/results/matrix. About 1.5-2 h on an idle 2-core CPU.
set -euo pipefail
common=(-d uci,motion,wisdm --heads din --pretrain-epochs 10 --name matrix)
core=(--methods scratch,crosshar,crosshar_full,crosshar_paper,oracle --seeds 3)
extra=(--methods mask,contrast,crosshar_nomirror,crosshar_device,multi,oracle_full --seeds 1)
for k in 0 1; do
  ( crosshar matrix "${common[@]}" "${core[@]}" --shard "$k/2" && crosshar matrix "${common[@]}" "${extra[@]}" --shard "$k/2" ) &
done
wait
crosshar matrix "${common[@]}" --seeds 3 --report-only \
  --methods scratch,mask,contrast,crosshar,crosshar_full,crosshar_nomirror,crosshar_device,crosshar_paper,multi,oracle,oracle_full
