#!/usr/bin/env bash
# The committed cross-dataset matrix (results/matrix/): two processes share one folder (--shard K/2);
# each step skips the cells already in rows.jsonl, so the script resumes and a step can be rerun with
# more seeds. Needs CROSSHAR_DATA; writes under $CROSSHAR_HOME/results/matrix. Every row has 3 seeds but
# oracle_full (1: with every label its finetuning costs about 10x a row's; see the report's Time section).
# Pretraining: 10 epochs (more than the CLI's default 1 + 1, see README).
set -euo pipefail
common=(-d uci,motion,wisdm --pretrain-epochs 10 --name matrix)
step() {  # step METHODS SEEDS [more matrix options]
  local methods=$1 seeds=$2; shift 2
  for k in 0 1; do
    crosshar matrix "${common[@]}" --methods "$methods" --seeds "$seeds" "$@" --shard "$k/2" &
  done
  wait
}
step scratch,crosshar,oracle,oracle_scratch 3 --heads din                # the method against its baselines
step crosshar_paper 3 --heads din                                        # the published recipe
step scratch_encoder,crosshar_full 3 --heads din                         # what pretraining buys the encoder
step crosshar_device,crosshar_nomirror,mask,contrast 3 --heads din       # the frame, the mirror, the stages alone
step crosshar_upright 3 --heads din                                      # pretraining views with gravity kept upright
step crosshar_skip,crosshar_wide 3 --heads din                           # the window beside the embedding, more data
step multi 3 --heads din                                                 # leave one dataset out
step oracle_full 1 --heads din                                           # the in-domain model with every label
step scratch,crosshar 3 --heads din --targets-only hhar                  # an acc-only, z-normalised target
step scratch,crosshar 3 --heads transformer                              # CrossHAR's own head
crosshar matrix "${common[@]}" --heads din,transformer --targets-only hhar --seeds 3 --report-only \
  --methods scratch,scratch_encoder,crosshar,crosshar_full,crosshar_skip,crosshar_wide,crosshar_upright,crosshar_nomirror,crosshar_device,mask,contrast,crosshar_paper,multi,oracle,oracle_scratch,oracle_full
