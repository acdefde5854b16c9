#!/usr/bin/env bash
# The committed cross-dataset matrix (results/matrix/): `--jobs 2` runs two worker processes that share the
# work dynamically (each claims the next pretraining run's group of cells nobody holds, so neither waits on
# an unlucky split); every invocation skips the cells already in rows.jsonl, so the script resumes and a step
# can be rerun with more seeds. Needs CROSSHAR_DATA; writes under $CROSSHAR_HOME/results/matrix. Every row has
# 3 seeds but oracle_full (1: with every label and every epoch its finetuning costs about 10x a row's).
# Pretraining: the CLI's default length (configs/pretrain.toml, 1 + 1 epochs, scaled to the same
# optimiser steps for larger sources). The matrix of the previous default (10 epochs) is kept in
# results/matrix-pretrain10/ (this script at commit 343f9e6, with --pretrain-epochs 10).
# MATRIX_RECIPE=next MATRIX_NAME=matrix-next: the same matrix under a config recipe (`crosshar matrix --recipe`; next:
# configs/recipes/next.toml, the candidate next defaults), into a folder of its own.
set -euo pipefail
common=(-d uci,motion,wisdm --name "${MATRIX_NAME:-matrix}" --recipe "${MATRIX_RECIPE:-default}" --jobs 2)
# every DIN row at 3 seeds in one invocation: no barrier between rows (oracle_long, oracle_scratch_long: the two
# oracles at the best transfer recipe's schedule, 3x the epochs, so that the ceiling is never trained for less;
# scratch_worldvert_mount, the best single recipe measured, beside the default, scored with 8 test-time views and
# with the 5 fixed cadence views its exported model can carry, `finetune --cadence-views 5`)
crosshar matrix "${common[@]}" --heads din --seeds 3 --methods \
  scratch,scratch_frozen,crosshar,oracle,oracle_scratch,oracle_long,oracle_scratch_long,oracle_worldvert_mount,crosshar_nomirror,crosshar_device,mask,contrast,multi,scratch_multi,crosshar_paper,\
scratch_worldvert_mount,scratch_worldvert_mount_tta,scratch_worldvert_mount_cadviews5
# the in-domain models with every label: crosshar's pipeline and the best transfer recipe's (the report's 100 %-label ceiling)
crosshar matrix "${common[@]}" --heads din --seeds 1 --methods oracle_full,oracle_worldvert_mount_full --targets-only hhar
# hhar (acc-only, z-normalised windows) as a target, with its own ceiling: the oracles trained on its training users
crosshar matrix "${common[@]}" --heads din --seeds 3 --methods scratch,crosshar,oracle,oracle_scratch,oracle_long,oracle_scratch_long --targets-only hhar
crosshar matrix "${common[@]}" --heads transformer --seeds 3 --methods scratch,crosshar --targets-only hhar  # CrossHAR's own head, at its own schedule (120 epochs)
crosshar matrix "${common[@]}" --heads din,transformer --targets-only hhar --seeds 3 --report-only \
  --methods scratch,scratch_frozen,scratch_worldvert_mount,scratch_worldvert_mount_tta,scratch_worldvert_mount_cadviews5,crosshar,crosshar_nomirror,crosshar_device,\
mask,contrast,crosshar_paper,multi,scratch_multi,oracle,oracle_scratch,oracle_long,oracle_scratch_long,oracle_worldvert_mount,oracle_full,oracle_worldvert_mount_full
