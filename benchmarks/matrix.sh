#!/usr/bin/env bash
# The committed cross-dataset matrix (results/matrix/): two processes share one folder (--shard K/2);
# each step skips the cells already in rows.jsonl, so the script resumes and a step can be rerun with
# more seeds. Needs CROSSHAR_DATA; writes under $CROSSHAR_HOME/results/matrix. Every row has 3 seeds but
# oracle_full (1: with every label and every epoch its finetuning costs about 10x a row's).
# Pretraining: the CLI's default length (configs/pretrain.toml, 1 + 1 epochs, scaled to the same
# optimiser steps for larger sources). The matrix of the previous default (10 epochs) is kept in
# results/matrix-pretrain10/ (this script at commit 343f9e6, with --pretrain-epochs 10).
set -euo pipefail
common=(-d uci,motion,wisdm --name matrix)
step() {  # step METHODS SEEDS [more matrix options]
  local methods=$1 seeds=$2; shift 2
  for k in 0 1; do
    crosshar matrix "${common[@]}" --methods "$methods" --seeds "$seeds" "$@" --shard "$k/2" &
  done
  wait
}
step scratch,scratch_encoder 3 --heads din                               # no pretraining (independent of its length)
step crosshar 3 --heads din                                              # the method
step oracle,oracle_scratch 3 --heads din                                 # in-domain ceilings, trained to convergence
step oracle_full 1 --heads din                                           # the in-domain model with every label
step crosshar_nomirror,crosshar_device 3 --heads din                     # the mirror, the gravity frame
step mask,contrast 3 --heads din                                         # the stages alone
step multi 3 --heads din                                                 # leave one dataset out
step crosshar_paper 3 --heads din                                        # the published recipe
step scratch,crosshar 3 --heads din --targets-only hhar                  # an acc-only, z-normalised target
step scratch,crosshar 3 --heads transformer                              # CrossHAR's own head
step crosshar_upright,crosshar_full 3 --heads din                        # upright views; the encoder end to end
step crosshar_skip,crosshar_wide 3 --heads din                           # the window beside the embedding, more data
crosshar matrix "${common[@]}" --heads din,transformer --targets-only hhar --seeds 3 --report-only \
  --methods scratch,scratch_encoder,crosshar,crosshar_full,crosshar_skip,crosshar_wide,crosshar_upright,crosshar_nomirror,crosshar_device,mask,contrast,crosshar_paper,multi,oracle,oracle_scratch,oracle_full
