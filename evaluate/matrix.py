"""`crosshar matrix`: every directed pair x method x head x seed, resumable, with a markdown report.

Every method runs the same input pipeline (frame, scaling), the same finetuning augmentation and
the same head; each row changes only the factor its name says (`METHODS`):

  scratch            no pretraining: the head reads the input pipeline's windows directly
  scratch_encoder    no pretraining, but the encoder architecture (randomly initialised) under the head,
                     trained end to end: the exact counterpart of crosshar_full
  scratch_frozen     no pretraining, but a randomly initialised encoder, frozen, under the head: the exact
                     counterpart of crosshar (what the pretrained weights add to the architecture)
  mask               masked-reconstruction-only pretraining (LIMU-BERT-like), frozen encoder + head
  contrast           contrastive-only pretraining, frozen encoder + head
  crosshar           hierarchical pretraining (masked, then masked + contrastive): the method
  crosshar_nomirror  crosshar without the left/right mirror augmentation (pretraining and finetuning)
  crosshar_device    crosshar in the device frame instead of the gravity-aligned frame
  scratch_world, crosshar_world, scratch_encoder_world
                     those rows in the world frame instead of the gravity frame: every sample of a window
                     expressed in the device frame of its middle sample (the gyro integrated), then gravity up;
                     the device's turning within the window (a thigh pocket's swing) is removed
  scratch_vertical, crosshar_vertical
                     those rows in the vertical frame: the gravity frame, each sample's acc and gyro as its
                     horizontal magnitude and vertical component (no heading, no mirror image of acc left)
  scratch_vertical_long_last, crosshar_vertical_long_last
                     scratch_vertical and crosshar_vertical finetuned 3x as many epochs (120), the last kept:
                     scratch_long_last's and crosshar_long_last's schedule (crosshar_vertical's pretraining runs)
  scratch_coupled    scratch in the coupled frame: the vertical frame with (a_h x w_h)_z and a_h . w_h / g, the products of
                     each sample's horizontal acc and rotation, in its zero channels (crosshar.models.frame.coupled_align)
  scratch_worldvert  scratch in the world-vertical frame: the vertical frame in the world frame, whose vertical is the true
                     vertical at every sample (the gyro integrated), not the window's mean gravity direction: a pocket's
                     pitching with the thigh no longer leaks gravity into the channels (crosshar.models.frame.world_vertical_align)
  scratch_worldvert_mount
                     scratch_worldvert with the mount augmentation of scratch_vertical_mount
  crosshar_worldvert_mount
                     crosshar in that frame with that augmentation: pretrained (its own runs) and finetuned in the
                     world-vertical frame, the mount in finetuning: what pretraining adds to the best head on the raw window
  crosshar_wide_worldvert_mount
                     crosshar_worldvert_mount pretrained as crosshar_wide is: on every matrix dataset but the target
  scratch_mirrordev, crosshar_mirrordev
                     scratch and crosshar whose finetuning mirror reflects through a device-fixed vertical plane
                     (AugmentConfig.mirror_plane = "device") instead of one at a random heading; crosshar's own
                     pretraining runs (its SO(3) rotations draw every plane anyway)
  scratch_yaw45, crosshar_yaw45
                     scratch and crosshar with a random heading of up to 45 degrees (AugmentConfig.yaw_deg) on every
                     finetuning window: between the default (the mirrored half at a random heading, the rest at the
                     source's own) and a random heading everywhere; crosshar's own pretraining runs
  scratch_mount, scratch_vertical_mount
                     scratch and scratch_vertical with half of the finetuning windows seen through a spring-damper mount
                     (AugmentConfig.mount = 0.5: natural frequency 3-10 Hz, damping 0.3-1; crosshar.augment.mount):
                     a belt clip, a tight or a loose pocket filter the body's motion differently
  scratch_tta, crosshar_tta, scratch_vertical_tta, scratch_worldvert_mount_tta, crosshar_worldvert_mount_tta,
  scratch_multi_worldvert_mount_tta
                     those rows' own finetuned models (not retrained) scored with test-time views: each target window's
                     class probabilities averaged over the window as recorded and 8 draws of the run's finetuning
                     augmentation (crosshar.inference.predict_tta; `crosshar cross --tta 8`)
  scratch_tta_motion, crosshar_tta_motion, scratch_vertical_tta_motion, scratch_worldvert_mount_tta_motion, ...
                     the same with views of the motion only: the finetuning augmentation without the device's
                     orientation (no turn, mirror, heading or tilt; `crosshar cross --tta 8 --tta-views motion`)
  scratch_dual       scratch_vertical whose head also reads the window in the gravity frame beside it (one head, both frames:
                     head_input embedding+window with no encoder, skip_frame gravity): the frame pair in one model
  scratch_vertical_smooth, crosshar_smooth
                     scratch_vertical and crosshar with label smoothing 0.1 in finetuning (FinetuneConfig.label_smoothing;
                     crosshar_smooth finetunes on crosshar's own pretraining runs)
  crosshar_tstcc     crosshar whose stage-2 contrastive views are CrossHAR's weak / strong TS-TCC views of one
                     physical augmentation instead of two physical augmentations (PretrainConfig.views)
  crosshar_upright   crosshar whose pretraining views keep gravity upright: a tilt of up to ~10 degrees instead
                     of a random SO(3) orientation (the pretraining augmentation becomes the finetuning one)
  crosshar_full      crosshar with the encoder finetuned end to end instead of frozen
  crosshar_full_slow crosshar_full with the encoder learning at a tenth of the head's rate (the usual way to
                     finetune a pretrained encoder without erasing it; FinetuneConfig.encoder_lr_scale)
  scratch_swing, crosshar_swing, scratch_encoder_swing
                     those rows with the swing augmentation in pretraining and finetuning (AugmentConfig.swing = 1:
                     the window's own rotation 0.5-2x as fast, acc turned with it; a segment that swings more or
                     less, as a thigh pocket does against a waist belt)
  scratch_heading8, crosshar_heading8
                     those rows with a heading-invariant prediction: the saved model averages its class
                     probabilities over the window turned about gravity by 0, 45, ..., 315 degrees
                     (FinetuneConfig.heading_views = 8); training and model selection are unchanged
  scratch_ens5, crosshar_ens5, scratch_encoder_ens5
                     those rows with a deep ensemble of 5 heads (FinetuneConfig.ensemble = 5): initialised
                     independently, trained side by side on the same batches and labels, each on its own loss;
                     the model averages their class probabilities (selection reads the ensemble)
  crosshar_swingft   crosshar with the swing in finetuning only (crosshar's own pretrained encoder)
  scratch_last, crosshar_last, scratch_frozen_last, scratch_encoder_last, scratch_swing_last, crosshar_swingft_last,
  scratch_best, crosshar_best
                     those rows with the finetuned model chosen one way: "last", every epoch runs and the last is
                     kept (FinetuneConfig.select, the default since it was measured), or "best", the epoch with the
                     best source-validation macro-F1 (early stopping: the default before, so the scratch and crosshar
                     rows of every matrix committed until then)
  scratch_semi_last, crosshar_semi_last
                     scratch_last / crosshar_last with semi-supervised finetuning (FinetuneConfig.unlabelled = 1:
                     FixMatch on the source's training windows that the label rate left unlabelled)
  scratch_long_last, crosshar_long_last, scratch_long6_last, scratch_encoder_long_last
                     scratch_last / crosshar_last / scratch_encoder_last finetuned 3x as many epochs (FinetuneConfig.epochs
                     40 -> 120, the cosine schedule stretched with them): the finetuning length; scratch_long6_last: 6x (240)
  scratch_lever, crosshar_lever
                     those rows with the lever-arm augmentation in pretraining and finetuning (AugmentConfig.lever_arm
                     = 0.3: the sensor moved up to 0.3 m on its body segment, acc gaining alpha x r + w x (w x r))
  crosshar_leverft   crosshar with the lever arm in finetuning only (crosshar's own pretrained encoder)
  scratch_cadence, crosshar_cadence
                     those rows with a wider cadence change (AugmentConfig.cadence 0.1 -> 0.25: each window replayed
                     0.75-1.25x as fast) in pretraining and finetuning; walking steps at 1.77 Hz in UCI against 1.88
                     in MotionSense and WISDM, where WISDM's stairs step at 1.67
  crosshar_cadenceft crosshar with the wider cadence change in finetuning only (crosshar's own pretrained encoder)
  scratch_amp_sqrt, scratch_amp_equal, crosshar_amp_sqrt, crosshar_amp_equal
                     those rows with each window's motion amplitude compressed before the encoder or head
                     (EncoderConfig.input_scaling "amplitude_sqrt": the square root of its rms above 0.1 g and
                     0.3 rad/s; "amplitude_equal": every moving window brought to that rms): a thigh pocket moves
                     2x as much as a waist belt (results/body_position.md); crosshar pretrains on the same input
  scratch_amp_sqrt_long_last
                     scratch_amp_sqrt finetuned 3x as many epochs (120), the last kept: scratch_long_last's schedule
  scratch_lr3, crosshar_lr3
                     those rows finetuned at 3x the learning rate (FinetuneConfig.lr 1e-3 -> 3e-3): does a faster
                     head reach in 40 epochs what 120 epochs give?
  scratch_frozen_conv, crosshar_conv, crosshar_conv_arrow
                     scratch_frozen / crosshar / crosshar_arrow with a convolutional stem (EncoderConfig.stem = "conv":
                     each step's embedding a width-5 convolution over time instead of that step alone), in
                     pretraining and finetuning
  crosshar_arrow     crosshar whose pretraining also asks which way each window runs (PretrainConfig.arrow = 1:
                     half the windows played backwards, acc(-t) and -w(-t), a linear probe on the mean embedding
                     must tell which): up and down stairs differ in which way their steps run, a cue the mirror keeps
  scratch_mixup, crosshar_mixup
                     those rows finetuned with mixup on the head's input (FinetuneConfig.mixup = 0.4: each batch mixed
                     with a shuffled copy of itself, inputs and labels, weight ~ Beta(0.4, 0.4))
  scratch_avg, crosshar_avg, scratch_encoder_avg
                     those rows with the model selected and saved as a moving average of the weights over about
                     5 epochs (FinetuneConfig.average_epochs; weight averaging for robustness under shift)
  crosshar_skip      crosshar whose head reads the embedding and the input window side by side
                     (a skip connection past the frozen encoder)
  crosshar_skip_long_last
                     crosshar_skip finetuned 3x as many epochs (120), the last kept: crosshar_long_last's schedule
  crosshar_skip_vertical
                     crosshar_skip with the window beside the embedding in the vertical frame (FinetuneConfig.skip_frame;
                     the embedding still from crosshar's gravity-frame encoder): pretraining added to the best raw window
  crosshar_paper     CrossHAR as published (`configs/recipes/paper.toml`, with its own transformer
                     classifier whatever --heads says): the reference
  crosshar_wide      crosshar pretrained on every matrix dataset but the target (unlabelled windows), finetuned
                     on the source's labels only: what more unlabelled data buys, at the same labels as scratch
  multi              crosshar pretrained and finetuned on every other dataset (leave one dataset out)
  scratch_multi      multi without pretraining: the head on the raw window trained on every other dataset's labels
  scratch_multi_worldvert_mount
                     scratch_multi in the world-vertical frame with the mount: scratch_worldvert_mount on pooled sources
  multi_worldvert_mount
                     multi in that frame with the mount: pretrained and finetuned on the pooled sources (its pretraining
                     is crosshar_wide_worldvert_mount's run for the same target)
  scratch_multi_worldvert_mount_balanced, scratch_worldvert_mount_balanced
                     those rows with class-balanced cross-entropy (FinetuneConfig.class_weight = "balanced": each class
                     weighted n / (K n_k)): pooled with UCI or MotionSense, WISDM brings walking but no upstairs or downstairs
  oracle             in-domain ceiling: crosshar on the target's own training subjects, same label
                     rate, tested on its held-out subjects, trained to convergence (see Method)
  oracle_full        the same with 100 % of the target's training labels
  oracle_scratch     in-domain ceiling without pretraining (scratch on the target's training subjects,
                     same label rate)
  oracle_narrow, oracle_scratch_narrow
                     the two oracles finetuned with the narrow body amplitude (0.5, s in [0.67, 1.5]): in
                     domain there is no other body position to span, so a ceiling must not pay for it (the
                     check: results/matrix-oracle-narrow/). The ceiling is the best of the oracles run (CEILING)
  oracle_long, oracle_scratch_long
                     the two oracles finetuned 3x as many epochs (120): the schedule of the best transfer
                     recipe (scratch_long_last), so that the ceiling is not trained for less than a transfer row
  oracle_worldvert_mount
                     the in-domain model of the best transfer recipe, scratch_worldvert_mount (the head on the raw window
                     in the world-vertical frame, the mount in finetuning): a ceiling must hold the best recipe's own

Each finished cell is appended to rows.jsonl (one line, written at once); a rerun skips what is
there. The work is grouped by pretraining run (`group_key`: the cells that share one stay in one
process) and processes sharing a matrix folder divide it dynamically: each claims the next group
nobody holds (`claims/`, one file per group, created exclusively; a claim whose process has died is
taken over), so the work stays balanced however unequal the groups are. `--jobs N` starts N such
workers; `--shard K/N` restricts a process to a fixed subset of the groups (e.g. one per machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from crosshar import config as C
from crosshar.atomic import atomic_write_bytes
from crosshar.data.store import prepare
from crosshar.errors import ConfigError, CrossharError
from crosshar import guard
from crosshar.data.sources import target_needs
from crosshar.inference import embed, load_encoder, predict_tta, run_augment, score
from crosshar.models.scaling import InputPipeline
from crosshar.train import finetune as finetuning
from crosshar.train import pretrain as pretraining
from crosshar.models import classifier as clf


@dataclass(frozen=True)
class Method:
    """One row of the matrix: the default recipe with one named factor changed.

    Attributes:
        pretrain: "crosshar" (hierarchical), "mask", "contrast", or None (no pretraining).
        mirror: left/right mirror augmentation in pretraining and finetuning.
        upright: pretraining draws the finetuning augmentation's small tilt instead of a random SO(3)
            orientation, so the encoder learns from windows whose gravity points up, as it is used.
        frame: None (the encoder config's), "device", "gravity", "world", "vertical", "coupled" or "world_vertical".
        recipe: config recipe ("default" or "paper", see crosshar.config.recipe).
        full: finetune the encoder end to end.
        random_encoder: without pretraining, a randomly initialised encoder under the head.
        head_input: FinetuneConfig.head_input (None: the finetune config's).
        skip_frame: FinetuneConfig.skip_frame, the frame of the window a skip connection reads (None: the config's).
        wide: pretraining on every dataset of the matrix but the target; labels from the source only.
        multi: sources = every other dataset of the matrix.
        oracle: train on the target's own training subjects, test on its held-out subjects.
        label_rate: overrides the matrix's label rate (oracle_full: 1.0).
        amplitude: the finetuning augmentation's body_amplitude (None: configs/augment_finetune.toml's).
        encoder_lr: FinetuneConfig.encoder_lr_scale when the encoder is trained (None: the config's).
        average: FinetuneConfig.average_epochs (None: the config's).
        views: PretrainConfig.views, the stage-2 contrastive views (None: the config's).
        arrow: PretrainConfig.arrow, the weight of the arrow-of-time loss in pretraining (None: the config's).
        heading_views: FinetuneConfig.heading_views (None: the config's).
        ensemble: FinetuneConfig.ensemble, heads in the deep ensemble (None: the config's).
        epochs_scale: finetuning epochs x this (the schedule's, or the matrix's --finetune-epochs).
        scaling: EncoderConfig.input_scaling, in pretraining and finetuning (None: configs/encoder.toml's).
        stem: EncoderConfig.stem, the encoder's input embedding (None: configs/encoder.toml's).
        mixup: FinetuneConfig.mixup, mixup's alpha in finetuning (None: the config's).
        smoothing: FinetuneConfig.label_smoothing in finetuning (None: the config's).
        lr_scale: the finetuning learning rate x this (FinetuneConfig.lr; None: the config's).
        unlabelled: FinetuneConfig.unlabelled, the weight of FixMatch's loss on unlabelled source windows
            (None: the config's).
        select: FinetuneConfig.select, "best" (early stopping on the source) or "last" (None: the config's).
        lever: AugmentConfig.lever_arm in finetuning, and in pretraining unless `lever_pretrain` is False
            (None: the configs').
        swing: AugmentConfig.swing in finetuning, and in pretraining unless `swing_pretrain` is False
            (None: the configs').
        cadence: AugmentConfig.cadence (the time warp's half-width) in finetuning, and in pretraining
            unless `cadence_pretrain` is False (None: the configs').
        mirror_plane: AugmentConfig.mirror_plane in finetuning (None: the configs').
        yaw: AugmentConfig.yaw_deg in finetuning (None: the configs').
        mount: AugmentConfig.mount in finetuning (None: the configs').
        tta: test-time views: each target window is scored as the mean of the class probabilities of the window
            as recorded and `tta` draws of the run's finetuning augmentation (crosshar.inference.predict_tta);
            0 scores the window alone.
        tta_views: what the test-time views draw: "all" (the run's finetuning augmentation) or "motion" (without
            the device's orientation: crosshar.inference.view_augment).
        runs_of: the method whose finetuning (and pretraining) runs this row scores, instead of training its own:
            a row that changes only how the target is scored (`tta`) reuses the very models of its base row.

    Oracles are trained to convergence: every finetuning epoch runs (no early stopping) and, of the
    epochs with the best validation macro-F1, the last is kept (FinetuneConfig.ties), since the
    target's own validation subjects saturate (macro-F1 1.0) long before the head has converged.
    """

    name: str
    pretrain: str | None = "crosshar"
    mirror: bool = True
    upright: bool = False
    frame: str | None = None
    recipe: str = "default"
    full: bool = False
    random_encoder: bool = False
    head_input: str | None = None
    skip_frame: str | None = None
    wide: bool = False
    multi: bool = False
    oracle: bool = False
    label_rate: float | None = None
    amplitude: float | None = None
    encoder_lr: float | None = None
    average: float | None = None
    swing: float | None = None
    swing_pretrain: bool = True
    lever: float | None = None
    lever_pretrain: bool = True
    cadence: float | None = None
    cadence_pretrain: bool = True
    mirror_plane: str | None = None
    yaw: float | None = None
    mount: float | None = None
    views: str | None = None
    arrow: float | None = None
    heading_views: int | None = None
    ensemble: int | None = None
    select: str | None = None
    unlabelled: float | None = None
    epochs_scale: float | None = None
    mixup: float | None = None
    smoothing: float | None = None
    scaling: str | None = None
    stem: str | None = None
    lr_scale: float | None = None
    class_weight: str | None = None
    tta: int = 0
    tta_views: str = "all"
    runs_of: str | None = None


def tta_row(base: Method, views: int = 8, kind: str = "all") -> Method:
    """`base` scored with test-time views (`<base>_tta`, `<base>_tta_motion` for views of the motion only) on
    `base`'s own finetuned runs: the one factor changed is how each target window is scored."""
    return replace(base, name=f"{base.name}_tta" + ("" if kind == "all" else f"_{kind}"), tta=views, tta_views=kind,
                   runs_of=base.name)


METHODS: dict[str, Method] = {m.name: m for m in [
    Method("scratch", pretrain=None),
    Method("scratch_encoder", pretrain=None, random_encoder=True, full=True),
    Method("scratch_frozen", pretrain=None, random_encoder=True),
    Method("mask", pretrain="mask"),
    Method("contrast", pretrain="contrast"),
    Method("crosshar"),
    Method("crosshar_nomirror", mirror=False),
    Method("crosshar_device", frame="device"),
    Method("scratch_world", pretrain=None, frame="world"),
    Method("crosshar_world", frame="world"),
    Method("scratch_encoder_world", pretrain=None, random_encoder=True, full=True, frame="world"),
    Method("scratch_vertical", pretrain=None, frame="vertical"),
    Method("crosshar_vertical", frame="vertical"),
    Method("scratch_vertical_long_last", pretrain=None, frame="vertical", select="last", epochs_scale=3.0),
    Method("crosshar_vertical_long_last", frame="vertical", select="last", epochs_scale=3.0),
    Method("scratch_coupled", pretrain=None, frame="coupled"),
    Method("scratch_worldvert", pretrain=None, frame="world_vertical"),
    Method("scratch_worldvert_mount", pretrain=None, frame="world_vertical", mount=0.5),
    Method("crosshar_worldvert_mount", frame="world_vertical", mount=0.5),
    Method("crosshar_wide_worldvert_mount", wide=True, frame="world_vertical", mount=0.5),
    Method("scratch_mirrordev", pretrain=None, mirror_plane="device"),
    Method("crosshar_mirrordev", mirror_plane="device"),
    Method("scratch_yaw45", pretrain=None, yaw=45.0),
    Method("crosshar_yaw45", yaw=45.0),
    Method("scratch_mount", pretrain=None, mount=0.5),
    Method("scratch_vertical_mount", pretrain=None, frame="vertical", mount=0.5),
    Method("scratch_dual", pretrain=None, frame="vertical", head_input="embedding+window", skip_frame="gravity"),
    Method("crosshar_upright", upright=True),
    Method("crosshar_tstcc", views="tstcc"),
    Method("crosshar_arrow", arrow=1.0),
    Method("scratch_frozen_conv", pretrain=None, random_encoder=True, stem="conv"),
    Method("crosshar_conv", stem="conv"),
    Method("crosshar_conv_arrow", stem="conv", arrow=1.0),
    Method("crosshar_full", full=True),
    Method("crosshar_full_slow", full=True, encoder_lr=0.1),
    Method("scratch_swing", pretrain=None, swing=1.0),
    Method("crosshar_swing", swing=1.0),
    Method("scratch_encoder_swing", pretrain=None, random_encoder=True, full=True, swing=1.0),
    Method("crosshar_swingft", swing=1.0, swing_pretrain=False),
    Method("scratch_last", pretrain=None, select="last"),
    Method("crosshar_last", select="last"),
    Method("scratch_frozen_last", pretrain=None, random_encoder=True, select="last"),
    Method("scratch_encoder_last", pretrain=None, random_encoder=True, full=True, select="last"),
    Method("scratch_swing_last", pretrain=None, swing=1.0, select="last"),
    Method("crosshar_swingft_last", swing=1.0, swing_pretrain=False, select="last"),
    Method("scratch_semi_last", pretrain=None, select="last", unlabelled=1.0),
    Method("crosshar_semi_last", select="last", unlabelled=1.0),
    Method("scratch_long_last", pretrain=None, select="last", epochs_scale=3.0),
    Method("crosshar_long_last", select="last", epochs_scale=3.0),
    Method("scratch_long6_last", pretrain=None, select="last", epochs_scale=6.0),
    Method("scratch_encoder_long_last", pretrain=None, random_encoder=True, full=True, select="last", epochs_scale=3.0),
    Method("scratch_best", pretrain=None, select="best"),
    Method("crosshar_best", select="best"),
    Method("scratch_lever", pretrain=None, lever=0.3),
    Method("crosshar_lever", lever=0.3),
    Method("crosshar_leverft", lever=0.3, lever_pretrain=False),
    Method("scratch_cadence", pretrain=None, cadence=0.25),
    Method("crosshar_cadence", cadence=0.25),
    Method("crosshar_cadenceft", cadence=0.25, cadence_pretrain=False),
    Method("scratch_amp_sqrt", pretrain=None, scaling="amplitude_sqrt"),
    Method("scratch_amp_equal", pretrain=None, scaling="amplitude_equal"),
    Method("scratch_amp_sqrt_long_last", pretrain=None, scaling="amplitude_sqrt", select="last", epochs_scale=3.0),
    Method("crosshar_amp_sqrt", scaling="amplitude_sqrt"),
    Method("crosshar_amp_equal", scaling="amplitude_equal"),
    Method("scratch_lr3", pretrain=None, lr_scale=3.0),
    Method("crosshar_lr3", lr_scale=3.0),
    Method("scratch_mixup", pretrain=None, mixup=0.4),
    Method("crosshar_mixup", mixup=0.4),
    Method("scratch_vertical_smooth", pretrain=None, frame="vertical", smoothing=0.1),
    Method("crosshar_smooth", smoothing=0.1),
    Method("scratch_heading8", pretrain=None, heading_views=8),
    Method("crosshar_heading8", heading_views=8),
    Method("scratch_ens5", pretrain=None, ensemble=5),
    Method("crosshar_ens5", ensemble=5),
    Method("scratch_encoder_ens5", pretrain=None, random_encoder=True, full=True, ensemble=5),
    Method("scratch_avg", pretrain=None, average=5.0),
    Method("crosshar_avg", average=5.0),
    Method("scratch_encoder_avg", pretrain=None, random_encoder=True, full=True, average=5.0),
    Method("crosshar_skip", head_input="embedding+window"),
    Method("crosshar_skip_long_last", head_input="embedding+window", select="last", epochs_scale=3.0),
    Method("crosshar_skip_vertical", head_input="embedding+window", skip_frame="vertical"),
    Method("crosshar_paper", recipe="paper"),
    Method("crosshar_wide", wide=True),
    Method("multi", multi=True),
    Method("scratch_multi", pretrain=None, multi=True),
    Method("scratch_multi_worldvert_mount", pretrain=None, multi=True, frame="world_vertical", mount=0.5),
    Method("multi_worldvert_mount", multi=True, frame="world_vertical", mount=0.5),
    Method("scratch_multi_worldvert_mount_balanced", pretrain=None, multi=True, frame="world_vertical", mount=0.5,
           class_weight="balanced"),
    Method("scratch_worldvert_mount_balanced", pretrain=None, frame="world_vertical", mount=0.5, class_weight="balanced"),
    Method("oracle", oracle=True),
    Method("oracle_full", oracle=True, label_rate=1.0),
    Method("oracle_scratch", pretrain=None, oracle=True),
    Method("oracle_narrow", oracle=True, amplitude=0.5),
    Method("oracle_scratch_narrow", pretrain=None, oracle=True, amplitude=0.5),
    Method("oracle_long", oracle=True, epochs_scale=3.0),
    Method("oracle_scratch_long", pretrain=None, oracle=True, epochs_scale=3.0),
    Method("oracle_worldvert_mount", pretrain=None, oracle=True, frame="world_vertical", mount=0.5),
]}
# the rows scored with test-time views too (`<base>_tta`, `<base>_tta_motion`)
TTA_BASES = ("scratch", "crosshar", "scratch_vertical", "scratch_worldvert_mount", "crosshar_worldvert_mount",
             "scratch_multi_worldvert_mount")
METHODS |= {m.name: m for m in (tta_row(METHODS[b], kind=k) for k in ("all", "motion") for b in TTA_BASES)}
# the in-domain recipes at the matrix's label rate; the ceiling is the best of those run
CEILING = ("oracle", "oracle_scratch", "oracle_narrow", "oracle_scratch_narrow", "oracle_long", "oracle_scratch_long",
           "oracle_worldvert_mount")
DEFAULT_METHODS = ("scratch", "mask", "contrast", "crosshar", "crosshar_nomirror", "crosshar_device",
                   "crosshar_paper", "multi", "oracle", "oracle_full", "oracle_scratch")


@dataclass(frozen=True)
class MatrixConfig:
    """What to run. `datasets` form the directed pairs; `targets_only` are only ever targets (e.g. hhar)."""

    datasets: tuple[str, ...]
    heads: tuple[str, ...]
    seeds: int = 3
    label_rate: float = 0.1
    label_space: str = "crosshar4"
    methods: tuple[str, ...] = DEFAULT_METHODS
    quick: bool = False
    pretrain_epochs: int | None = None  # None: configs/pretrain.toml (quick: 6)
    finetune_epochs: int | None = None  # None: configs/finetune.toml (quick: 12)
    targets_only: tuple[str, ...] = ()
    shard: tuple[int, int] = (0, 1)  # (K, N): this process runs the K-th of N shards
    device: str = "cpu"  # where training and scoring run (crosshar.device.resolve_device)
    preset: str = "default"  # head preset of every finetune whose method has no recipe ("paper": docs/paper_presets.md)

    def __post_init__(self) -> None:
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ConfigError(f"unknown method(s) {bad}; known: {', '.join(METHODS)}")
        if not 0 <= self.shard[0] < self.shard[1]:
            raise ConfigError(f"--shard must be K/N with 0 <= K < N, got {self.shard[0]}/{self.shard[1]}")


REF_WINDOWS = 1700  # the schedule in configs/pretrain.toml is sized for ~1,700 windows (UCI)


def method_configs(m: Method, window: C.WindowConfig) -> dict:
    """The resolved configs of a method: encoder, augment (pretraining), augment_finetune, pretrain,
    finetune (without the per-cell overrides)."""
    r = m.recipe
    enc = C.load("encoder", recipe_name=r, input_frame=m.frame)
    aug = C.load("augment", recipe_name=r)
    aug_ft = C.load("augment_finetune", recipe_name=r)
    if m.upright:
        aug = aug.replace(rotation_p=0.0, tilt_deg=aug_ft.tilt_deg)
    if not m.mirror:
        aug, aug_ft = aug.replace(mirror_p=0.0), aug_ft.replace(mirror_p=0.0)
    if m.amplitude is not None:
        aug_ft = aug_ft.replace(body_amplitude=m.amplitude)
    if m.swing is not None:
        aug, aug_ft = aug.replace(swing=m.swing) if m.swing_pretrain else aug, aug_ft.replace(swing=m.swing)
    if m.lever is not None:
        aug, aug_ft = aug.replace(lever_arm=m.lever) if m.lever_pretrain else aug, aug_ft.replace(lever_arm=m.lever)
    if m.mirror_plane is not None:  # finetuning only: pretraining's SO(3) rotation draws every plane anyway
        aug_ft = aug_ft.replace(mirror_plane=m.mirror_plane)
    if m.yaw is not None:  # finetuning only: pretraining's SO(3) rotation draws every heading anyway
        aug_ft = aug_ft.replace(yaw_deg=m.yaw)
    if m.mount is not None:
        aug_ft = aug_ft.replace(mount=m.mount)
    if m.cadence is not None:
        aug, aug_ft = aug.replace(cadence=m.cadence) if m.cadence_pretrain else aug, aug_ft.replace(cadence=m.cadence)
    if m.scaling is not None:
        enc = enc.replace(input_scaling=m.scaling)
    if m.stem is not None:
        enc = enc.replace(stem=m.stem)
    if window.normalize != "none":  # z-normalised windows (hhar_sa_adatime) carry no gravity to align
        enc = enc.replace(input_frame="device")
    pre = C.load("pretrain", recipe_name=r)
    pre = pre if m.views is None else pre.replace(views=m.views)
    pre = pre if m.arrow is None else pre.replace(arrow=m.arrow)
    return {"encoder": enc, "augment": aug, "augment_finetune": aug_ft, "pretrain": pre,
            "finetune": C.load("finetune", recipe_name=r)}


def pretrain_cfg(m: Method, base: C.PretrainConfig, mc: MatrixConfig, seed: int, n_windows: int = REF_WINDOWS):
    """The method's pretraining config. Epochs shrink for larger sources so that every source gets
    about the same number of optimiser steps (WISDM has 6x UCI's windows)."""
    total = mc.pretrain_epochs or (6 if mc.quick else C.load("pretrain").epochs)
    # the same number of optimiser steps for every recipe (CrossHAR's batch is twice ours) ...
    total *= base.batch_size / C.load("pretrain").batch_size
    # ... and for every source size
    total = max(2, round(total * min(1.0, REF_WINDOWS / max(n_windows, 1))))
    p = base.replace(seed=seed)
    if m.pretrain == "mask":
        return p.replace(stage1_epochs=total, stage2_epochs=0)
    if m.pretrain == "contrast":
        # stage 2 only, reconstruction weight 0: NT-Xent alone
        return p.replace(stage1_epochs=0, stage2_epochs=total, w_mse=0.0, w_contrast=1.0)
    s1 = total // 2
    return p.replace(stage1_epochs=s1, stage2_epochs=total - s1)


def _done(path: Path) -> bool:
    f = path / "run.json"
    return f.is_file() and json.loads(f.read_text()).get("finished", False)


def window_tag(window: C.WindowConfig) -> str:
    """The run-folder suffix of a window config: "" for the default one, e.g. "-w128accz" for hhar's profile."""
    return "" if window == C.load("window") else f"-w{window.window}{window.channels.replace('+', '')}{window.normalize[:1]}"


def _pretrain_key(m: Method) -> str:
    """The pretraining run a method uses: methods that differ only after pretraining share one
    (crosshar_full, multi's and crosshar_wide's are per source set, the oracles reuse the target's crosshar run)."""
    if m.pretrain in ("mask", "contrast"):
        return m.pretrain
    parts = (["crosshar"] + (["nomirror"] if not m.mirror else []) + (["upright"] if m.upright else [])
             + ([m.frame] if m.frame else []) + ([m.scaling] if m.scaling else []) + ([f"swing{m.swing:g}"] if m.swing is not None and m.swing_pretrain else [])
             + ([f"lever{m.lever:g}"] if m.lever is not None and m.lever_pretrain else [])
             + ([f"cadence{m.cadence:g}"] if m.cadence is not None and m.cadence_pretrain else [])
             + ([m.views] if m.views is not None else []) + ([m.stem] if m.stem is not None else [])
             + ([f"arrow{m.arrow:g}"] if m.arrow is not None else []))
    return "_".join(parts + ([m.recipe] if m.recipe != "default" else []))


def pretrain_run(root: Path, sources: tuple[str, ...], m: Method, seed: int, mc: MatrixConfig, window, log) -> Path:
    key = _pretrain_key(m)
    d = root / "runs" / f"pretrain-{'+'.join(sources)}-{key}{window_tag(window)}-s{seed}"
    if _done(d):
        return d
    cfgs = method_configs(m, window)
    n = sum(len(prepare(s, None, window)) for s in sources)
    job = pretraining.PretrainJob(sources, window, cfgs["encoder"], cfgs["augment"], pretrain_cfg(m, cfgs["pretrain"], mc, seed, n))
    log(f"pretraining {key} on {'+'.join(sources)} (seed {seed})")
    return pretraining.run(job, out=d, resume=(d / "last.pt").is_file(), log=lambda *_: None, progress=False, device=mc.device)


def finetune_run(root: Path, sources: tuple[str, ...], m: Method, head: str, seed: int, mc: MatrixConfig, window,
                 encoder: Path | None, exclude: tuple[str, ...] = (), tag: str = "") -> Path:
    """The method's finetuning run (resumed when finished); `tag` names what else makes it unique
    (crosshar_wide: its pretraining sources)."""
    cfgs = method_configs(m, window)
    head_name = cfgs["finetune"].head if m.recipe != "default" else head  # a recipe brings its own head
    head_cfg = C.head_config(head_name, recipe_name=m.recipe)
    preset = mc.preset if m.recipe == "default" else "default"
    if preset != "default":  # the paper's model and finetuning recipe (crosshar finetune --preset)
        head_cfg, ft = C.head_preset(head_name, preset, cfgs["finetune"])
        cfgs["finetune"] = ft
    head_tag = head_name if preset == "default" else f"{head_name}@{preset}"
    d = root / "runs" / f"finetune-{'+'.join(sources)}-{m.name}-{head_tag}{tag}{window_tag(window)}-s{seed}"
    if _done(d) and (d / "best.pt").is_file():
        return d
    if d.exists():
        import shutil

        shutil.rmtree(d)  # an interrupted finetune is cheap: start it again
    epochs = mc.finetune_epochs or (12 if mc.quick else None)
    if epochs and m.recipe != "default":  # the recipe's own schedule, scaled like the default one
        epochs = max(1, round(epochs * cfgs["finetune"].epochs / C.load("finetune").epochs))
    if m.epochs_scale:
        epochs = max(1, round((epochs or cfgs["finetune"].epochs) * m.epochs_scale))
    fcfg = cfgs["finetune"].replace(head=head_name, label_rate=m.label_rate or mc.label_rate, seed=seed,
                                    freeze=not m.full, epochs=epochs,
                                    head_input=m.head_input or cfgs["finetune"].head_input,
                                    skip_frame=m.skip_frame or cfgs["finetune"].skip_frame,
                                    encoder_lr_scale=cfgs["finetune"].encoder_lr_scale if m.encoder_lr is None else m.encoder_lr,
                                    average_epochs=cfgs["finetune"].average_epochs if m.average is None else m.average,
                                    heading_views=cfgs["finetune"].heading_views if m.heading_views is None else m.heading_views,
                                    ensemble=cfgs["finetune"].ensemble if m.ensemble is None else m.ensemble,
                                    select=m.select or cfgs["finetune"].select,
                                    unlabelled=cfgs["finetune"].unlabelled if m.unlabelled is None else m.unlabelled,
                                    mixup=cfgs["finetune"].mixup if m.mixup is None else m.mixup,
                                    label_smoothing=cfgs["finetune"].label_smoothing if m.smoothing is None else m.smoothing,
                                    class_weight=m.class_weight or cfgs["finetune"].class_weight,
                                    lr=cfgs["finetune"].lr * (m.lr_scale or 1.0))
    if m.oracle:  # trained to convergence, selected on the target's own validation subjects (see Method)
        fcfg = fcfg.replace(patience=fcfg.epochs, ties="last", select="best")
    classes = finetuning.source_classes(mc.label_space, sources, window, None)
    enc_cfg = cfgs["encoder"]
    job = finetuning.FinetuneJob(sources, window, fcfg, cfgs["augment_finetune"], classes, mc.label_space,
                      None if encoder is None else str(encoder), head_cfg,
                      pipeline=InputPipeline.of_encoder(enc_cfg), exclude_subjects=exclude,
                      random_encoder=m.random_encoder, encoder=enc_cfg if m.random_encoder else None)
    return finetuning.run(job, out=d, log=lambda *_: None, progress=False, device=mc.device)


def wide_sources(mc: MatrixConfig, target: str) -> tuple[str, ...]:
    """crosshar_wide's pretraining data for `target`: every dataset of the matrix but the target."""
    return tuple(d for d in mc.datasets if d != target)


def target_profile(target: str) -> C.WindowConfig:
    """The window config a model must use to be scored on `target` (acc-only, pre-windowed data...)."""
    return target_needs(target, None) or C.load("window")


@dataclass(frozen=True)
class Cell:
    """One training unit: a model (sources, method, head, seed, window) and the targets it is scored on."""

    sources: tuple[str, ...]
    method: str
    head: str
    seed: int
    window: C.WindowConfig
    targets: tuple[str, ...]


def plan(mc: MatrixConfig) -> list[Cell]:
    """Every (model, targets) the matrix needs, for this shard."""
    cells: list[Cell] = []
    all_targets = tuple(mc.datasets) + tuple(mc.targets_only)
    profiles = {t: target_profile(t) for t in all_targets}
    for seed in range(mc.seeds):
        for name in mc.methods:
            m = METHODS[name]
            for head in mc.heads:
                if m.oracle:
                    for t in mc.datasets:
                        cells.append(Cell((t,), name, head, seed, profiles[t], (t,)))
                    continue
                if m.multi:
                    for t in all_targets:
                        srcs = tuple(s for s in mc.datasets if s != t)
                        if len(srcs) >= 2:
                            cells.append(Cell(srcs, name, head, seed, profiles[t], (t,)))
                    continue
                if m.wide:  # one pretraining per target: each (source, target) is its own model
                    for s in mc.datasets:
                        cells += [Cell((s,), name, head, seed, profiles[t], (t,)) for t in all_targets if t != s]
                    continue
                for s in mc.datasets:
                    by_window: dict[C.WindowConfig, list[str]] = {}
                    for t in all_targets:
                        if t != s:
                            by_window.setdefault(profiles[t], []).append(t)
                    for w, ts in by_window.items():
                        cells.append(Cell((s,), name, head, seed, w, tuple(ts)))
    k, n = mc.shard
    return [c for c in cells if zlib.crc32(group_key(mc, c).encode()) % n == k]


def group_key(mc: MatrixConfig, c: Cell) -> str:
    """The unit of work a process claims: cells that share a pretraining run share a key, so one process
    trains it and the others never wait for it or train it twice. The oracles share the target's crosshar
    run (its split names their held-out subjects); a row without pretraining is a group of its own."""
    m = METHODS[c.method]
    m = METHODS[m.runs_of] if m.runs_of else m  # a row scoring another row's runs shares its group
    pre = wide_sources(mc, c.targets[0]) if m.wide else c.sources
    if m.pretrain:
        run = _pretrain_key(m)
    elif m.oracle:
        run = _pretrain_key(METHODS["crosshar"])
    else:
        run = f"{m.name}|{c.head}|{'+'.join(c.targets)}"
    return f"s{c.seed}|{'+'.join(pre)}|{run}{window_tag(c.window)}"


def groups(mc: MatrixConfig, cells: list[Cell]) -> list[list[Cell]]:
    """`cells` by group_key, the groups with more cells first (the longest work first balances best)."""
    by_key: dict[str, list[Cell]] = {}
    for c in cells:
        by_key.setdefault(group_key(mc, c), []).append(c)
    return sorted(by_key.values(), key=len, reverse=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(root: Path, key: str) -> Path | None:
    """Claim group `key` for this process: the claim file's path, or None when another living process
    holds it. A claim left by a process that has died on this host is taken over; one from another host
    is respected (remove `claims/` by hand when that host's run is known to be dead)."""
    d = root / "claims"
    d.mkdir(parents=True, exist_ok=True)
    path = d / (hashlib.sha1(key.encode()).hexdigest()[:16] + ".json")
    me = {"key": key, "pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                held = json.loads(path.read_text())
            except (OSError, ValueError):  # being written this instant, or garbage: a living claim either way
                return None
            if held.get("host") == me["host"] and isinstance(held.get("pid"), int) and not _alive(held["pid"]):
                path.unlink(missing_ok=True)  # its process died: take it over
                continue
            return None
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me))
        return path
    return None


def run_matrix(mc: MatrixConfig, root: Path, log: Callable[[str], None] = print, report_only: bool = False,
               jobs: int = 1, threads: int | None = None) -> Path:
    """Run every missing cell of this shard, then write report.md, rows.jsonl and plots under `root`.
    With `report_only`, train nothing: rewrite report.md from the rows already there. With `jobs` > 1,
    that many worker processes share the work (`work`), each with `threads` PyTorch threads (default:
    the machine's cores divided among them)."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    root.mkdir(parents=True, exist_ok=True)
    if not report_only:
        if jobs > 1:
            _spawn_workers(mc, root, jobs, threads, log)
        else:
            work(mc, root, log)
    _plot(mc, root, log)  # first: the report names the plot only when it was written
    write_report(mc, read_rows(root / "rows.jsonl"), root)
    return root / "report.md"


def exit_with_parent(parent: int, period_s: float = 1.0) -> None:
    """Exit this process as soon as `parent` is no longer its parent (killed, even with SIGKILL): a
    `--jobs N` worker must not go on training after its `crosshar matrix` is gone. What it leaves is what
    any interruption leaves: a finetuning run restarted, a pretraining run resumed, its claim taken over."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period_s)
        os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _worker(mc: MatrixConfig, root: Path, worker: int, jobs: int, threads: int, parent: int | None = None) -> None:
    from crosshar.device import set_threads

    if parent is not None:
        exit_with_parent(parent)
    set_threads(threads)
    work(mc, root, lambda msg: print(f"[{worker + 1}/{jobs}] {msg}", flush=True), label=(worker, jobs))


def _spawn_workers(mc: MatrixConfig, root: Path, jobs: int, threads: int | None, log: Callable[[str], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    log(f"{jobs} workers, {threads} thread(s) each")
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        for f in [pool.submit(_worker, mc, root, i, jobs, threads, os.getpid()) for i in range(jobs)]:
            f.result()


def work(mc: MatrixConfig, root: Path, log: Callable[[str], None] = print, label: tuple[int, int] | None = None) -> None:
    """Train and score every missing cell of this shard's groups that no other process holds, one group
    at a time (`claim`); append each row to rows.jsonl and this invocation's time to timing.jsonl."""
    root.mkdir(parents=True, exist_ok=True)
    rows_path = root / "rows.jsonl"
    t_start, cpu_start = time.time(), time.process_time()
    windows: dict[tuple[str, C.WindowConfig], object] = {}

    def ws_of(name: str, w: C.WindowConfig):
        if (name, w) not in windows:
            windows[(name, w)] = prepare(name, None, w)
        return windows[(name, w)]

    for group in groups(mc, plan(mc)):
        have = read_keys(rows_path)
        if not any(missing(c, have) for c in group):
            continue
        held = claim(root, group_key(mc, group[0]))
        if held is None:
            continue  # another process is on it
        try:
            have = read_keys(rows_path)  # the group may have been finished between the check and the claim
            for cell in group:
                _run_cell(mc, root, cell, missing(cell, have), ws_of, log)
        finally:
            held.unlink(missing_ok=True)
    append_timing(root, label or mc.shard, {"wall_s": time.time() - t_start, "cpu_s": time.process_time() - cpu_start})


def read_keys(rows_path: Path) -> set[tuple]:
    """(source, target, method, head, seed) of every row already in rows.jsonl."""
    return {(r["source"], r["target"], r["method"], r["head"], r["seed"]) for r in read_rows(rows_path)}


def missing(cell: Cell, have: set[tuple]) -> list[str]:
    """The targets of `cell` that have no row in `have` (read_keys)."""
    return [t for t in cell.targets if ("+".join(cell.sources), t, cell.method, cell.head, cell.seed) not in have]


def _run_cell(mc: MatrixConfig, root: Path, cell: Cell, todo: list[str], ws_of: Callable, log: Callable[[str], None]) -> None:
    """Train (or resume) one cell's model and score it on the targets `todo`, a row each in rows.jsonl."""
    if not todo:
        return
    rows_path = root / "rows.jsonl"
    scored = METHODS[cell.method]
    m = METHODS[scored.runs_of] if scored.runs_of else scored  # the method whose models are scored
    src_tag = "+".join(cell.sources)
    t0, c0 = time.time(), time.process_time()
    pre_sources = wide_sources(mc, cell.targets[0]) if m.wide else cell.sources
    enc = pretrain_run(root, pre_sources, m, cell.seed, mc, cell.window, log) if m.pretrain else None
    exclude: tuple[str, ...] = ()
    if m.oracle:  # the target's held-out subjects (its crosshar run's split): out of pretraining and finetuning
        split_run = enc or pretrain_run(root, cell.sources, METHODS["crosshar"], cell.seed, mc, cell.window, log)
        exclude = tuple(json.loads((split_run / "run.json").read_text())["split"]["val_subjects"])
    ft = finetune_run(root, cell.sources, m, cell.head, cell.seed, mc, cell.window, enc, exclude,
                      tag=f"-pre{'+'.join(pre_sources)}" if m.wide else "")
    model, meta = clf.load(ft)
    model.to(mc.device)
    tta = None  # a *_tta row: each window scored with views of the run's own finetuning augmentation
    if scored.tta:
        aug = run_augment(meta, ft)
        tta = lambda X: predict_tta(model, X, aug, scored.tta, seed=cell.seed, rate_hz=cell.window.rate_hz,  # noqa: E731
                                    kind=scored.tta_views)
    for target in todo:
        tws = ws_of(target, cell.window)
        if m.oracle:
            tws = tws.by_subjects(exclude)
        else:
            for s in dict.fromkeys(cell.sources + pre_sources):  # labelled and unlabelled training data
                guard.check_names([s], target)
                guard.check_windows(ws_of(s, cell.window), tws)
        rep, *_ = score(model, meta, tws, logits_fn=tta)
        row = {"source": src_tag, "target": target, "method": cell.method, "head": cell.head, "preset": mc.preset,
               "seed": cell.seed,
               "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "weighted_f1": rep["weighted_f1"],
               "classes": rep["classes"], "per_class_f1": {c: v["f1"] for c, v in rep["per_class"].items()},
               "confusion": rep["confusion"],
               "n": rep["n"], "source_val_f1": json.loads((ft / "run.json").read_text())["best"]["macro_f1"],
               "seconds": round(time.time() - t0, 1), "cpu_seconds": round(time.process_time() - c0, 1)}
        with open(rows_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        log(f"{src_tag:>12} -> {target:<6} {cell.method:<17} {cell.head:<12} seed {cell.seed}: "
            f"macro-F1 {rep['macro_f1']:.3f} acc {rep['accuracy']:.3f}")


def _plot(mc: MatrixConfig, root: Path, log: Callable[[str], None]) -> None:
    try:
        embedding_plot(mc, root, {d: prepare(d, None, C.load("window")) for d in mc.datasets})
    except Exception as e:  # noqa: BLE001  (the plot is a nicety; the report is written)
        log(f"embedding plot skipped: {e}")


def _numbered_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, JSON object) of each non-blank line (none if the file is absent); CrossharError
    naming the line that is not a JSON object."""
    if not path.is_file():
        return []
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise CrossharError(f"{path}:{i}: not a JSON row ({e})") from None
        if not isinstance(obj, dict):
            raise CrossharError(f"{path}:{i}: not a JSON object")
        out.append((i, obj))
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [obj for _, obj in _numbered_jsonl(path)]


def read_rows(path: Path) -> list[dict]:
    """rows.jsonl's rows; CrossharError naming the line of a row whose method this version does not know
    (a file written by another version of crosshar) rather than a traceback in the report."""
    rows = _numbered_jsonl(path)
    for i, row in rows:
        if row.get("method") not in METHODS:
            raise CrossharError(f"{path}:{i}: unknown method {row.get('method')!r} (known: {', '.join(METHODS)}); "
                                f"was the file written by another version of crosshar?")
    return [row for _, row in rows]


def append_timing(root: Path, label: tuple[int, int], timing: dict) -> None:
    """One line per invocation (shard, or worker of --jobs) in timing.jsonl: wall and process CPU seconds."""
    with open(root / "timing.jsonl", "a") as f:
        f.write(json.dumps({"shard": list(label), **{k: round(v, 1) for k, v in timing.items()},
                            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}) + "\n")


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------

def _vals(rows: list[dict], key: str = "macro_f1", **match) -> list[float]:
    return [r[key] for r in rows if all(r[k] == v for k, v in match.items())]


def _ms(v: list[float]) -> str:
    if not v:
        return "-"
    if len(v) == 1:  # one seed has no spread to show
        return f"{100 * v[0]:.1f} (1)"
    return f"{100 * np.mean(v):.1f} ± {100 * np.std(v):.1f}" + (f" ({len(v)})" if len(v) != 3 else "")


def _pair_means(rows: list[dict], head: str, method: str, pairs: list[tuple[str, str]]) -> list[float]:
    return [float(np.mean(v)) if (v := _vals(rows, source=s, target=t, method=method, head=head)) else np.nan
            for s, t in pairs]


def coarsened_macro_f1(confusion: list[list[int]], classes: list[str], coarser: list[str], space: str) -> float:
    """Macro-F1 of a confusion matrix over `classes` re-read in the `coarser` classes (e.g. upstairs and
    downstairs both counted as "stairs"): merging classes of a confusion matrix is exact. True classes
    with no coarser counterpart are dropped; predictions into them count as errors."""
    from crosshar.data.labels import LabelSpace

    proj = LabelSpace(tuple(classes), space).project_to(LabelSpace(tuple(coarser), space))
    k = len(coarser)
    cm = np.zeros((k, k + 1))  # last column: predicted a class the coarser space does not have
    for i, row in enumerate(np.asarray(confusion)):
        if proj[i] >= 0:
            for j, n in enumerate(row):
                cm[proj[i], proj[j] if proj[j] >= 0 else k] += n
    tp = np.diag(cm[:, :k])
    support, predicted = cm.sum(1), cm[:, :k].sum(0)
    f1 = 2 * tp / np.maximum(support + predicted, 1)
    return float(f1[support > 0].mean()) if (support > 0).any() else np.nan


def _oracle(rows: list[dict], head: str, target: str, method: str = "oracle", classes: list[str] | None = None,
            space: str = "crosshar4") -> float:
    """The in-domain ceiling on `target`, mean over seeds; with `classes`, scored in those classes
    (a pair's label space) from the oracle's confusion matrix, so that it is compared like with like."""
    rs = [r for r in rows if r["target"] == target and r["method"] == method and r["head"] == head]
    if classes is None or any(list(r["classes"]) == list(classes) for r in rs):
        v = [r["macro_f1"] for r in rs if classes is None or list(r["classes"]) == list(classes)]
    else:
        v = [coarsened_macro_f1(r["confusion"], r["classes"], classes, space) for r in rs if "confusion" in r]
    return float(np.mean(v)) if v else np.nan


def ceiling(hr: list[dict], head: str, s: str, t: str, space: str) -> float:
    """The in-domain ceiling of pair s -> t: the best of the CEILING oracles on t, in the pair's classes."""
    v = [_oracle(hr, head, t, o, _pair_classes(hr, s, t), space) for o in CEILING]
    return float(np.nanmax(v)) if not np.all(np.isnan(v)) else np.nan


def _oracle_cell(hr: list[dict], head: str, s: str, t: str, o: str, space: str) -> str:
    """The oracle's table cell for a pair: as scored, or re-read in the pair's classes (marked *)."""
    classes = _pair_classes(hr, s, t)
    rs = [r for r in hr if r["target"] == t and r["method"] == o]
    if classes is None or not rs or list(rs[0]["classes"]) == classes:
        return _ms([r["macro_f1"] for r in rs])
    v = [coarsened_macro_f1(r["confusion"], r["classes"], classes, space) for r in rs if "confusion" in r]
    return f"{_ms(v)}*" if v else "-"


def _pair_classes(rows: list[dict], source: str, target: str) -> list[str] | None:
    """The classes a pair is scored in (its transfer rows'), or None when it has none."""
    return next((list(r["classes"]) for r in rows if (r["source"], r["target"]) == (source, target)
                 and not METHODS[r["method"]].oracle and "classes" in r), None)


def write_report(mc: MatrixConfig, rows: list[dict], root: Path) -> None:
    """report.md: per head, the pair x method table, the averages, leave-one-out, the targets and the
    stairs; then the time the rows took and the command that made them."""
    methods = [m for m in mc.methods if not METHODS[m].oracle and not METHODS[m].multi]
    oracles = [m for m in mc.methods if METHODS[m].oracle]
    L = [f"# Cross-dataset matrix: {', '.join(mc.datasets)}"
         + (f" (+ {', '.join(mc.targets_only)} as target)" if mc.targets_only else ""), "",
         f"Heads {', '.join(mc.heads)}; label rate {mc.label_rate:.0%} of the source training windows; label space "
         f"{mc.label_space} (intersected per pair; stairs merged whenever wisdm is involved). Macro-F1 in %, "
         f"mean ± std over seeds (the number of seeds in brackets where it is not 3). Every target window is "
         f"scored; no target data touches training or model selection (the oracles excepted, by definition). "
         f"{'QUICK setting (short schedules). ' if mc.quick else ''}", "",
         "Methods (each changes one factor of `crosshar`; `evaluate/matrix.py`): " + ", ".join(f"`{m}`" for m in mc.methods) + ".", ""]
    if oracles:
        L += ["Oracle cells marked * are the target's in-domain model re-read in the pair's classes (from its "
              "confusion matrix: e.g. upstairs and downstairs merged into stairs when the source is wisdm).", ""]
    for head in mc.heads:
        L += _head_section(mc, [r for r in rows if r["head"] == head], head, methods, oracles)
    L += _time_section(rows, read_jsonl(root / "timing.jsonl"))
    if (root / "embeddings.png").exists():  # drawn by _plot when the runs hold crosshar's seed-0 pretraining
        L += ["", "Embedding plot (PCA of mean-pooled embeddings, coloured by dataset and by class, random vs "
              "pretrained encoder, same input pipeline): `embeddings.png`."]
    L += ["", f"Command: `{_command(mc, root)}` (with `--jobs N` for N worker processes).", ""]
    atomic_write_bytes(root / "report.md", "\n".join(L).encode())


def _head_section(mc: MatrixConfig, hr: list[dict], head: str, methods: list[str], oracles: list[str]) -> list[str]:
    """One head's table (pairs x methods, oracles), averages, leave-one-out table, targets and stairs."""
    pairs = sorted({(r["source"], r["target"]) for r in hr if not METHODS[r["method"]].oracle and not METHODS[r["method"]].multi})
    if not pairs and oracles:  # oracles alone (e.g. `-d wisdm`): each on its own held-out subjects, in its own classes
        return [f"## Head: {head}", "", "| target | " + " | ".join(oracles) + " |", "|---|" + "---|" * len(oracles)] + [
            f"| {t} | " + " | ".join(_ms(_vals(hr, source=t, target=t, method=o)) for o in oracles) + " |"
            for t in sorted({r["target"] for r in hr if METHODS[r["method"]].oracle})] + [""]
    L = [f"## Head: {head}", "", "| source → target | " + " | ".join(methods) + "".join(f" | {o} (target)" for o in oracles) + " |",
         "|---|" + "---|" * (len(methods) + len(oracles))]
    for s, t in pairs:
        cells = [_ms(_vals(hr, source=s, target=t, method=m)) for m in methods]
        cells += [_oracle_cell(hr, head, s, t, o, mc.label_space) for o in oracles]
        L.append(f"| {s} → {t} | " + " | ".join(cells) + " |")
    L.append("")
    six = [(s, t) for s, t in pairs if t in mc.datasets]
    avg6 = {m: _pair_means(hr, head, m, six) for m in methods}
    if six:
        L += _averages(mc, six, avg6)
    if multis := [m for m in mc.methods if METHODS[m].multi]:
        L += _multi_table(hr, pairs, multis, head)
    return L + _targets(mc, hr, head, six, avg6) + _differences(hr, head, six, methods) + _stairs(hr, head)


def _averages(mc: MatrixConfig, six: list, avg6: dict) -> list[str]:
    def avg_text(m: str, v: list[float]) -> str:
        n = int(np.sum(~np.isnan(v)))
        return f"{m} {100 * np.nanmean(v):.1f}" + ("" if n == len(six) else f" (over {n} pairs only)")

    L = [f"Average macro-F1 over the {len(six)} pairs among {', '.join(mc.datasets)}: "
         + ", ".join(avg_text(m, v) for m, v in avg6.items() if not np.all(np.isnan(v)))]
    same = [i for i in range(len(six)) if all(not np.isnan(v[i]) for v in avg6.values())]
    if 0 < len(same) < len(six) and len(avg6) > 1:
        L.append(f"On the {len(same)} pairs where every method has a cell: "
                 + ", ".join(f"{m} {100 * np.mean([v[i] for i in same]):.1f}" for m, v in avg6.items()))
    return L + [""]


def single_source(m: str) -> str:
    """The single-source row of the recipe of a multi row (`m` without pooling its sources): the row equal to it
    but for `multi` (and for whose runs a `_tta` row scores), else scratch or crosshar."""
    row = replace(METHODS[m], multi=False)
    for name, other in METHODS.items():
        if replace(other, name=row.name, runs_of=None) == replace(row, runs_of=None):
            return name
    return "scratch" if row.pretrain is None else "crosshar"


def _multi_table(hr: list[dict], pairs: list, multis: list[str], head: str) -> list[str]:
    """Leave one dataset out: each multi row (`multis`) per target, beside the best single source of the
    same recipe (`single_source`: crosshar for multi, scratch for scratch_multi), and the MULTI_COMPARISONS
    (and each `X_tta` against `X`) paired by seed."""
    mt = sorted({r["target"] for r in hr if r["method"] in multis})
    if not mt:
        return []
    singles = [b for b in dict.fromkeys(single_source(m) for m in multis) if any(r["method"] == b for r in hr)]
    what = "pretrain and finetune on every other dataset" + (
        "; `scratch_multi`: the head on the raw window trained on them, no pretraining" if "scratch_multi" in multis else "")
    L = [f"Leave one dataset out (`multi`: {what}):", "",
         "| sources → target | " + " | ".join(multis) + "".join(f" | best single source ({b})" for b in singles) + " |",
         "|---|" + "---|" * (len(multis) + len(singles))]
    srcs = {t: next(r["source"] for r in hr if r["method"] in multis and r["target"] == t) for t in mt}
    merged = False
    for t in mt:
        classes = _pair_classes(hr, srcs[t], t)
        best = []
        for b in singles:  # the single source in the multi row's classes; else (*) in the pair's own, fewer ones
            single = {s: np.mean(v) for s, tt in pairs if tt == t and (v := _vals(hr, source=s, target=t, method=b))}
            same = {s: f for s, f in single.items() if _pair_classes(hr, s, t) == classes}
            pick, mark = (same, "") if same else (single, "*")
            merged |= bool(mark and pick)
            s = max(pick, key=pick.get) if pick else None
            best.append(f"{100 * pick[s]:.1f}{mark} ({s})" if s else "-")
        L.append(f"| {srcs[t]} → {t} | " + " | ".join(_ms(_vals(hr, target=t, method=m)) for m in multis)
                 + "".join(f" | {b}" for b in best) + " |")
    L.append("")
    if merged:
        L += ["\\* no single source has the multi row's classes: its best in its pair's own, fewer classes (WISDM "
              "merges upstairs and downstairs into stairs), an easier task than the multi row's", ""]
    comps = [c for c in MULTI_COMPARISONS if set(c) <= set(multis)]
    comps += [(m, m[: -len(x)]) for m in multis for x in ("_tta", "_tta_motion") if m.endswith(x) and m[: -len(x)] in multis]
    for a, b in comps:
        r = paired_difference(hr, head, a, b, [(srcs[t], t) for t in mt])
        if r is not None:
            d, h, n = r
            why = " (what pretraining adds to the pooled sources)" if (a, b) == ("multi", "scratch_multi") else ""
            L += [f"{a} − {b}{why}, paired by seed over the {len(mt)} targets: {100 * d:+.1f} points, 95 % interval "
                  f"{100 * (d - h):+.1f} to {100 * (d + h):+.1f} ({n} cells)", ""]
    return L


def _span_minutes(timing: list[dict], union: bool = True) -> float | None:
    """Minutes during which at least one of timing.jsonl's processes ran (the union of their
    [finished - wall, finished] intervals: rows added later by another invocation add their own time,
    not the hours in between), or with `union=False` from the first start to the last end."""
    import datetime as dt

    try:
        ends = [dt.datetime.strptime(t["finished"], "%Y-%m-%d %H:%M:%S").timestamp() for t in timing]
    except (KeyError, ValueError):
        return None
    spans = sorted((e - t["wall_s"], e) for e, t in zip(ends, timing))
    if not union:
        return (max(e for _, e in spans) - spans[0][0]) / 60
    total, reach = 0.0, -np.inf
    for start, end in spans:
        total += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    return total / 60


def _time_section(rows: list[dict], timing: list[dict]) -> list[str]:
    import os
    import platform

    L = ["## Time", ""]
    if timing:
        L += ["| process (worker K/N of --jobs N, or --shard K/N) | wall | process CPU | finished |", "|---|---|---|---|"]
        L += [f"| {t['shard'][0]}/{t['shard'][1]} | {t['wall_s'] / 60:.1f} min | {t['cpu_s'] / 60:.1f} min | {t['finished']} |"
              for t in timing]
        span, elapsed = _span_minutes(timing), _span_minutes(timing, union=False)
        if span is not None:
            L += ["", f"Wall time with at least one process running: **{span:.1f} min** (first start to last end: "
                      f"{elapsed:.1f} min; {sum(t['cpu_s'] for t in timing) / 60:.1f} min of process CPU)."]
        L.append("")
    L.append(f"Cells: {len(rows)}; sum of per-cell process CPU {sum(r.get('cpu_seconds', 0) for r in rows) / 60:.1f} min "
             f"(a cell's CPU includes its pretraining when it ran it); machine {platform.node() or '?'}, "
             f"{os.cpu_count()} CPU cores.")
    return L


def _command(mc: MatrixConfig, root: Path) -> str:
    return (f"crosshar matrix --datasets {','.join(mc.datasets)}"
            f"{f' --targets-only {chr(44).join(mc.targets_only)}' if mc.targets_only else ''} --heads {','.join(mc.heads)} "
            f"--seeds {mc.seeds} --methods {','.join(mc.methods)} --label-rate {mc.label_rate}{' --quick' if mc.quick else ''}"
            f"{f' --pretrain-epochs {mc.pretrain_epochs}' if mc.pretrain_epochs else ''}"
            f"{f' --finetune-epochs {mc.finetune_epochs}' if mc.finetune_epochs else ''}"
            f"{f' --preset {mc.preset}' if mc.preset != 'default' else ''} --name {root.name}")


# (method, reference) pairs the report compares cell by cell; "X_avg", "X_swing", "X_swingft", "X_lever", "X_leverft", "X_world", "X_vertical",
# "X_heading8", "X_mirrordev", "X_yaw45", "X_mount", "X_tta", "X_tta_motion", "X_balanced", "X_ens5", "X_cadence", "X_cadenceft", "X_mixup", "X_lr3", "X_amp_sqrt", "X_amp_equal", "X_last" and "X_best" against "X" are added where both ran
COMPARISONS = (("crosshar", "scratch"), ("crosshar", "crosshar_paper"), ("crosshar", "scratch_frozen"),
               ("crosshar_full", "scratch_encoder"), ("scratch_encoder", "scratch"), ("crosshar", "scratch_encoder"),
               ("crosshar", "crosshar_nomirror"), ("crosshar", "crosshar_device"), ("crosshar", "mask"),
               ("crosshar", "contrast"), ("crosshar_full_slow", "crosshar_full"), ("crosshar_wide", "crosshar"),
               ("crosshar_upright", "crosshar"), ("crosshar_skip", "crosshar"), ("crosshar_skip", "scratch"),
               ("crosshar_skip_long_last", "crosshar_long_last"), ("crosshar_skip_long_last", "scratch_long_last"),
               ("crosshar_tstcc", "crosshar"), ("crosshar_conv", "scratch_frozen_conv"), ("crosshar_conv", "scratch"),
               ("crosshar_last", "scratch_last"), ("crosshar_best", "scratch_best"),
               ("scratch_vertical_long_last", "scratch_long_last"), ("scratch_vertical_long_last", "scratch_vertical"),
               ("crosshar_vertical", "scratch_vertical"), ("scratch_vertical", "scratch_long_last"),
               ("crosshar_vertical_long_last", "crosshar_vertical"), ("crosshar_vertical_long_last", "scratch_vertical_long_last"),
               ("crosshar_vertical_long_last", "crosshar_long_last"),
               ("crosshar_skip_vertical", "scratch_vertical"), ("scratch_coupled", "scratch_vertical"), ("scratch_worldvert", "scratch_vertical"), ("scratch_worldvert_mount", "scratch_vertical"),
               ("scratch_dual", "scratch_vertical"), ("scratch_dual", "scratch"),
               ("scratch_vertical_smooth", "scratch_vertical"), ("crosshar_smooth", "crosshar"),
               ("scratch_swing_last", "scratch_last"), ("crosshar_swingft_last", "crosshar_last"),
               ("crosshar_last", "scratch_frozen_last"), ("crosshar_last", "scratch_encoder_last"),
               ("scratch_semi_last", "scratch_last"), ("crosshar_semi_last", "crosshar_last"),
               ("crosshar_semi_last", "scratch_semi_last"), ("scratch_long_last", "scratch_last"),
               ("crosshar_long_last", "crosshar_last"), ("crosshar_long_last", "scratch_long_last"),
               ("crosshar_last", "scratch_long_last"), ("scratch_long6_last", "scratch_long_last"),
               ("scratch_encoder_long_last", "scratch_encoder_last"), ("scratch_encoder_long_last", "scratch_long_last"),
               ("scratch_amp_sqrt", "scratch_last"), ("scratch_amp_sqrt_long_last", "scratch_long_last"),
               ("scratch_amp_sqrt_long_last", "scratch_amp_sqrt"), ("crosshar_amp_sqrt", "scratch_amp_sqrt"),
               ("crosshar_worldvert_mount", "scratch_worldvert_mount"), ("crosshar_worldvert_mount", "crosshar"),
               ("crosshar_wide_worldvert_mount", "crosshar_worldvert_mount"),
               ("crosshar_wide_worldvert_mount", "scratch_worldvert_mount"),
               *((f"{b}_tta_motion", f"{b}_tta") for b in TTA_BASES))
# the leave-one-dataset-out rows compared on their common targets (`_multi_table`), the `_tta` suffixes besides
MULTI_COMPARISONS = (("multi", "scratch_multi"), ("scratch_multi_worldvert_mount", "scratch_multi"),
                     ("scratch_multi_worldvert_mount_balanced", "scratch_multi_worldvert_mount"),
                     ("multi_worldvert_mount", "scratch_multi_worldvert_mount"))


def paired_difference(hr: list[dict], head: str, a: str, b: str, pairs: list[tuple[str, str]]
                      ) -> tuple[float, float, int] | None:
    """Macro-F1 of `a` minus `b`, averaged over `pairs`, with the half-width of its 95 % confidence
    interval over seeds, and the number of cells compared; None unless every pair has >= 2 seeds of both.

    Cells are paired by seed (a seed fixes the labelled windows and the subject split for every method).
    The pairs are a fixed set, so the noise is the seeds': per pair the mean d_p of its n_p seed
    differences, with variance v_p = s_p^2 / n_p; the average D = mean_p d_p has variance sum_p v_p / P^2,
    and the interval uses Student's t with Welch-Satterthwaite degrees of freedom.
    """
    from scipy import stats

    d, v, nu, n = [], [], [], 0
    for s, t in pairs:
        fa, fb = ({r["seed"]: r["macro_f1"] for r in hr if r["method"] == m and (r["source"], r["target"], r["head"])
                   == (s, t, head)} for m in (a, b))
        x = np.array([fa[k] - fb[k] for k in sorted(fa.keys() & fb.keys())])
        if len(x) < 2:
            return None
        d.append(x.mean())
        v.append(x.var(ddof=1) / len(x))
        nu.append(len(x) - 1)
        n += len(x)
    var = sum(v) / len(d) ** 2
    if var == 0:
        return float(np.mean(d)), 0.0, n
    df = sum(v) ** 2 / sum(vi ** 2 / k for vi, k in zip(v, nu) if vi > 0)
    return float(np.mean(d)), float(stats.t.ppf(0.975, df) * np.sqrt(var)), n


def _differences(hr: list[dict], head: str, six: list, methods: list[str]) -> list[str]:
    """The COMPARISONS that ran, each as a mean difference with its 95 % interval over seeds."""
    comps = [c for c in COMPARISONS if c[0] in methods and c[1] in methods]
    comps += [(m, base) for m in methods for suffix in ("_avg", "_swing", "_swingft", "_lever", "_leverft", "_world", "_vertical",
                                                            "_heading8", "_ens5", "_cadence", "_cadenceft", "_mixup", "_lr3", "_amp_sqrt",
                                                            "_amp_equal", "_arrow", "_conv", "_mirrordev", "_yaw45", "_mount", "_tta", "_tta_motion", "_balanced", "_last", "_best")
              if m.endswith(suffix) and (base := m[: -len(suffix)]) in methods]
    L = []
    for a, b in comps:
        r = paired_difference(hr, head, a, b, six)
        if r is not None:
            d, h, n = r
            sure = "" if abs(d) > h else " (the interval includes 0)"
            L.append(f"| {a} − {b} | {100 * d:+.1f} | {100 * (d - h):+.1f} to {100 * (d + h):+.1f}{sure} | {n} |")
    if not L:
        return []
    return ([f"Differences, cell by cell (paired by seed), averaged over the {len(six)} pairs, with the 95 % "
             "interval over seeds (`paired_difference`): where it includes 0, these seeds cannot tell the two apart.", "",
             "| comparison | points | 95 % interval | cells |", "|---|---|---|---|"] + L + [""])


def _pair_interval(hr: list[dict], head: str, s: str, t: str) -> str:
    """"; crosshar − scratch D, 95 % interval lo to hi[, inside the noise]" for one pair (paired by seed), or ""
    with fewer than 2 seeds of both: whether a pair below scratch is below beyond the seeds' noise."""
    r = paired_difference(hr, head, "crosshar", "scratch", [(s, t)])
    if r is None:
        return ""
    d, h, _ = r
    return (f"; {100 * d:+.1f}, 95 % interval {100 * (d - h):+.1f} to {100 * (d + h):+.1f}"
            f"{', inside the noise' if abs(d) <= h else ''}")


def _targets(mc: MatrixConfig, hr: list[dict], head: str, six: list, avg6: dict) -> list[str]:
    """The accuracy issue's targets, checked against this head's rows, and the defects found."""
    L = ["Targets (averaged over the pairs among the matrix datasets):", ""]
    mean = {m: float(np.nanmean(v)) for m, v in avg6.items() if not np.all(np.isnan(v))}
    if "crosshar" in mean and "crosshar_paper" in mean:
        d = 100 * (mean["crosshar"] - mean["crosshar_paper"])
        L.append(f"- crosshar − crosshar_paper: **{d:+.1f} points** (target ≥ +5): {'met' if d >= 5 else 'not met'}")
    if "crosshar" in mean and "scratch" in mean:
        d = 100 * (mean["crosshar"] - mean["scratch"])
        L.append(f"- crosshar − scratch (same input pipeline): **{d:+.1f} points** (target ≥ +10): {'met' if d >= 10 else 'not met'}")
    orc = np.array([ceiling(hr, head, s, t, mc.label_space) for s, t in six]) if any(o in mc.methods for o in CEILING) else None
    if "scratch" in mean and orc is not None and not np.any(np.isnan(orc)):
        room = round(100 * (float(orc.mean()) - mean["scratch"]), 1)  # as printed
        L.append(f"  - headroom: the in-domain ceiling averages {100 * orc.mean():.1f} over these pairs, {room:+.1f} points "
                 f"over scratch: +10 {'fits under' if room >= 10 else 'would put crosshar above'} the ceiling")
    if "crosshar" in avg6 and orc is not None:
        r = np.array(avg6["crosshar"]) / orc
        ratio = float(np.nanmean(r)) if not np.all(np.isnan(r)) else np.nan
        if not np.isnan(ratio):
            L.append(f"- crosshar / oracle (the best of {', '.join(o for o in CEILING if o in mc.methods)} per target, in each pair's classes): "
                     f"**{100 * ratio:.1f} %** (target ≥ 90 %): {'met' if ratio >= 0.9 else 'not met'}")
    if "scratch_frozen" in mean and "crosshar" in mean:
        d = 100 * (mean["crosshar"] - mean["scratch_frozen"])
        L.append(f"- what pretraining gives the frozen encoder (crosshar − scratch_frozen, same architecture, both frozen): "
                 f"**{d:+.1f} points**")
    if "crosshar_full" in mean and "scratch_encoder" in mean:
        d = 100 * (mean["crosshar_full"] - mean["scratch_encoder"])
        L.append(f"- what pretraining gives the encoder (crosshar_full − scratch_encoder, both trained end to end): "
                 f"**{d:+.1f} points**")
    if "crosshar" in avg6 and "scratch" in avg6:
        below = [f"{s} → {t} ({100 * a:.1f} < {100 * b:.1f}{_pair_interval(hr, head, s, t)})"
                 for (s, t), a, b in zip(six, avg6["crosshar"], avg6["scratch"]) if a < b]
        L.append(f"- pairs where crosshar is below scratch: {', '.join(below) if below else 'none'}")
    defects = []
    transfer = [m for m in mc.methods if not METHODS[m].oracle]  # single-source and pooled (multi) rows alike
    pooled = sorted({(r["source"], r["target"]) for r in hr if r["method"] in transfer and METHODS[r["method"]].multi})
    for o in ("ceiling", "oracle_full"):
        for s, t in list(six) + pooled:  # like with like: the oracle re-read in the pair's classes
            orc = (ceiling(hr, head, s, t, mc.label_space) if o == "ceiling"
                   else _oracle(hr, head, t, o, _pair_classes(hr, s, t), mc.label_space))
            best = max([np.mean(v) for m in transfer if (v := _vals(hr, source=s, target=t, method=m, head=head))] or [np.nan])
            if not np.isnan(orc) and best > orc:
                defects.append(f"{'oracle' if o == 'ceiling' else o} on {t} ({100 * orc:.1f}) is below {s} → {t} "
                               f"({100 * best:.1f})")
    L.append(f"- **defects**: {'; '.join(defects)}" if defects else "- defects: no oracle below a transfer result")
    return L + [""]


def _stairs(hr: list[dict], head: str) -> list[str]:
    """Per-class F1 of upstairs and downstairs wherever both are scored."""
    rows = [r for r in hr if "upstairs" in r.get("per_class_f1", {})]
    if not rows:
        return []
    L = ["Upstairs / downstairs F1 (target ≥ 0.75 on uci → motion and motion → uci):", "",
         "| source → target | method | upstairs | downstairs |", "|---|---|---|---|"]
    for key in sorted({(r["source"], r["target"], r["method"]) for r in rows}):
        rs = [r for r in rows if (r["source"], r["target"], r["method"]) == key]
        up = [r["per_class_f1"]["upstairs"] for r in rs]
        down = [r["per_class_f1"]["downstairs"] for r in rs]
        L.append(f"| {key[0]} → {key[1]} | {key[2]} | {np.mean(up):.2f} | {np.mean(down):.2f} |")
    return L + [""]


def embedding_plot(mc: MatrixConfig, root: Path, windows: dict) -> None:
    """PCA of mean-pooled embeddings, random-init vs pretrained encoder (crosshar, seed 0, first source),
    both behind the same input pipeline (the pretraining run's scaler and frame)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch
    from sklearn.decomposition import PCA

    from crosshar.data.labels import LabelSpace
    from crosshar.models.encoder import Encoder

    src = mc.datasets[0]
    d = root / "runs" / f"pretrain-{src}-crosshar-s0"
    if not _done(d):
        return
    enc, scaler, jd = load_encoder(d)
    torch.manual_seed(0)
    rand = Encoder(C.EncoderConfig.from_dict(jd["encoder"]), n_channels=6).eval()
    rng = np.random.default_rng(0)
    space = LabelSpace.named(mc.label_space)
    Xs, ds, ys = [], [], []
    for name, ws in windows.items():
        idx = rng.choice(len(ws), min(400, len(ws)), replace=False)
        Xs.append(ws.X[idx])
        ds += [name] * len(idx)
        ys += [space.classes[c] if c >= 0 else "other" for c in space.encode(ws.labels[idx])]
    X = np.concatenate(Xs)
    fig, axes = plt.subplots(2, 2, figsize=(11, 9))
    for row, (title, e) in enumerate([("random encoder", rand), (f"pretrained on {src} (crosshar)", enc)]):
        Z = PCA(2, random_state=0).fit_transform(embed(e, scaler, X).mean(1))
        for col, (lab, keyname) in enumerate([(np.array(ds), "dataset"), (np.array(ys), "class")]):
            ax = axes[row, col]
            for v in sorted(set(lab)):
                msk = lab == v
                ax.scatter(Z[msk, 0], Z[msk, 1], s=4, alpha=0.5, label=v)
            ax.set_title(f"{title}: coloured by {keyname}", fontsize=9)
            ax.legend(markerscale=3, fontsize=7)
    fig.tight_layout()
    fig.savefig(root / "embeddings.png", dpi=90)
    plt.close(fig)
