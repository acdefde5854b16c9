"""The rows of `crosshar matrix`: the default recipe with one named factor changed (`METHODS`).

Every method runs the same input pipeline (frame, scaling), the same finetuning augmentation and
the same head; each row changes only the factor its name says:

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
  scratch_turn, crosshar_turnft, scratch_worldvert_mount_turn
                     scratch, crosshar (its own pretraining runs) and scratch_worldvert_mount with every finetuning window
                     turned about gravity at a further rate of up to 0.5 rad/s (AugmentConfig.turn; crosshar.augment.turn):
                     the datasets' stairs turn in stairwells, walking hardly, so how much a window turns must stop
                     telling the class (results/turning.md)
  scratch_worldvert_mount_amp_sqrt
                     scratch_worldvert_mount with each window's motion amplitude square-rooted above 0.1 g / 0.3 rad/s in
                     that frame (EncoderConfig.input_scaling = "amplitude_sqrt", as scratch_amp_sqrt): a thigh pocket's
                     larger swing (its rotation 2.8x a waist belt's) made closer to the waist's
  scratch_turnscale, scratch_worldvert_mount_turnscale
                     scratch and scratch_worldvert_mount with each finetuning window's own turn rate about gravity
                     multiplied by k in [0.5, 2] (AugmentConfig.turn_scale = 1): the amount of turning spanned, as the
                     stairwells differ (UCI's stairs turn ~100 degrees a window, MotionSense's ~170), not erased
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
  scratch_worldvert_mount_tta_mount, _tta_amplitude, _tta_cadence, _tta_sensor
                     the best recipe's 8 test-time views drawn from one of its finetuning augmentations alone (the mount;
                     the body amplitude; the cadence; the sensor's gain, bias and noise): which carry the views' gain
  scratch_tta_mirror, crosshar_tta_mirror, scratch_worldvert_mount_tta_mirror, ...
                     the same models scored as the mean of the window and its mirror image, one view (`crosshar cross --tta 1
                     --tta-views mirror`): blind by construction to the handedness, and so to which way a stairwell turns
                     (results/turning.md)
  scratch_cadviews3, _cadviews5, _cadviews9, crosshar_cadviews3, ..., scratch_vertical_cadviews3, ...,
  scratch_worldvert_mount_cadviews3, ...
                     those rows' own models with K fixed cadence views: each target window replayed at K speeds evenly
                     spaced over the finetuning cadence range (0.9-1.1x), the probabilities averaged inside the model
                     (`crosshar cross/export --cadence-views K`): the deterministic views an exported model carries
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
  crosshar_lpft      LP-FT (Kumar et al., ICLR 2022): crosshar's own finetuned model (the frozen encoder's head,
                     "linear probing") trained on end to end for half the epochs at a tenth of the learning rate
                     (FinetuneJob.init_run): full finetuning from a random head distorts the pretrained features
                     (crosshar_full is below crosshar), from the probed head it should not
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
  crosshar_stats, oracle_stats, scratch_stats
                     crosshar, its oracle and scratch with each channel standardised by the source's training statistics
                     in the model's frame (EncoderConfig.input_scaling "source_stats") instead of physical units divided
                     by g: HHAR's windows come z-normalised, so "physical" scaling shrinks them by 9.8
                     (results/matrix-hhar-stats/); on the six pairs: results/matrix-stats/
  scratch_worldvert_mount_stats, crosshar_worldvert_mount_stats
                     scratch_worldvert_mount and crosshar_worldvert_mount with source statistics (results/matrix-stats/)
  oracle_scratch_frozen
                     the target's oracle with scratch_frozen's model (a randomly initialised encoder, frozen, under the
                     head): what crosshar's pretrained weights add in domain (results/matrix-hhar-frozen/)
  scratch_instance   scratch with each window z-normalised per channel (EncoderConfig.input_scaling "instance", CrossHAR's
                     published input): on a target shipped z-normalised per user (hhar), a per-window normalisation
                     would not care how each dataset's per-user statistics were taken (results/matrix-hhar-inst/)
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
  crosshar_mseeq     crosshar whose masked MSE weighs every channel equally (PretrainConfig.mse_channels = "equal":
                     each channel's squared error divided by its variance over the batch), so that the vertical acc
                     no longer dominates the reconstruction: the loss half of what source statistics changed
  crosshar_worldvert_mount_mseeq
                     crosshar_worldvert_mount with that loss
  crosshar_inspace   crosshar pretrained only on the source windows whose activity lies in the matrix's label space
                     (PretrainConfig.activities = "crosshar4"; crosshar.data.sources.in_label_space): WISDM's 18
                     activities include 14 outside it (eating, typing, sports: 78 % of its windows), UCI's and
                     MotionSense's one each (lying, jogging); the epochs keep the optimiser steps (pretrain_cfg). The
                     source's activity labels choose the windows, beyond the 10 % that finetuning reads: a diagnostic
                     of what the encoder is pretrained on, not a label-free method
  crosshar_combo     crosshar with the three small changes measured best on it alone, together: the equal-weight
                     masked MSE (crosshar_mseeq, +0.5 at 6 seeds), label smoothing 0.1 (crosshar_smooth, +0.7 at 3) and
                     DIN's attention weights undropped (crosshar_attn0, +0.3 at 6): do they add up? (They became
                     the defaults once the whole matrix had measured them, results/matrix/: crosshar_combo is now
                     crosshar itself.)
  scratch_v1, crosshar_v1
                     scratch and crosshar under the defaults before results/matrix/: the masked MSE over the channels
                     as they are, no label smoothing, DIN's attention weights dropped at 0.1 (results/matrix-v1/ holds
                     that matrix): what the change of defaults gained
  scratch_attn0, crosshar_attn0
                     those rows with the head's attention weights undropped (the head option attn_dropout = 0; the rest
                     of its dropout kept): the dropout mask is a quarter of a CPU finetuning step, is it worth its time?
                     DIN's default since results/matrix-attn0/, the transformer's since results/matrix-tfattn0/ (on
                     both heads these rows are scratch and crosshar now)
  scratch_attndrop, crosshar_attndrop
                     those rows with the head's attention weights dropped at 0.1 (CrossHAR's, the transformer's default
                     before results/matrix-tfattn0/): results/matrix/'s transformer cells before that change
  scratch_sched50, crosshar_sched50, scratch_sched67, crosshar_sched67
                     those rows finetuned for half or two thirds of their head's epochs (the transformer's 120: 60 or 80;
                     DIN's 40: 20 or 27), the cosine schedule fitted to the shorter run: what the head's schedule costs
                     against what it buys, chosen on the sources' validation subjects (the speed issue's time to accuracy)
  crosshar_pre3x, crosshar_pre10x
                     crosshar pretrained 3x or 10x as many epochs (a ~1,700-window source's 1 + 1 become 3 + 3, 10 + 10;
                     larger sources get fewer, as in every row, and never under 1 + 1; the warm-up's 2 epochs kept, then
                     the cosine decay): the speed issue's epoch curve, measured again at today's defaults
                     (results/train_speed.md's was measured before the equal-weight masked MSE): flat, 1 + 1 stays
                     (results/matrix-precurve/)
  scratch_b16, crosshar_b16
                     those rows finetuned in batches of 16 instead of 32: twice the optimiser steps for the same
                     windows and about the same CPU (10 % of UCI's labels is ~6 steps an epoch at 32); the 120-epoch
                     rows gained on a 3x longer schedule, is it the steps?
  scratch_tok5, crosshar_tok5, scratch_tok1, crosshar_tok1
                     those rows with the transformer head's tokens projected from 5 neighbouring time steps (TransformerHead's
                     token_kernel = 5, DIN's local kernel; the default since results/matrix-tok5/ measured it, so these
                     equal scratch and crosshar now) or from one (token_kernel = 1, CrossHAR's and the default before);
                     the transformer head alone: `--heads transformer`
  scratch_shared, crosshar_shared
                     those rows at the shared finetuning schedule (configs/finetune.toml: lr 1e-3, 40 epochs) instead of
                     the head's own (the [finetune] table of configs/heads/<head>.toml): the GRU at 1e-3 instead of 1e-2
                     and 40 epochs instead of 240, the transformer 40 instead of 120; DIN has no table of its own, so
                     for DIN they equal scratch and crosshar
  scratch_chunk20, crosshar_chunk20
                     those rows with LIMU-BERT's GRU head reading 20-step sub-windows (GRUHead's chunk = 20, LIMU-BERT's
                     and the paper preset's) and averaging their last-step features, instead of one recurrence over the
                     whole window (chunk = 0, the default); the GRU head alone: `--heads gru`
  scratch_mixup, crosshar_mixup
                     those rows finetuned with mixup on the head's input (FinetuneConfig.mixup = 0.4: each batch mixed
                     with a shuffled copy of itself, inputs and labels, weight ~ Beta(0.4, 0.4))
  scratch_sam, crosshar_sam
                     those rows finetuned with sharpness-aware minimisation (FinetuneConfig.sam = 0.05: each step's
                     gradient taken at the batch's worst weights within 0.05 of the current ones, a flat minimum
                     sought for robustness under shift; twice the head's passes per step)
  scratch_mixstyle, crosshar_mixstyle
                     those rows with MixStyle in the DIN head (head option mixstyle = 0.5: in half the training
                     batches, after the first interactive block, each sequence's per-channel mean and std over time
                     mixed with another's of the batch; Zhou et al. 2021, domain generalisation by new styles)
  scratch_stylemix, crosshar_stylemix
                     those rows finetuned with MixStyle within each class (FinetuneConfig.style_mix = 0.5: half the
                     labelled windows have the per-channel mean and std over time of the head's input mixed with
                     another window's of their class in the batch: another subject's intensity for the same activity)
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
  oracle_worldvert_mount_full
                     the best transfer recipe's in-domain model (oracle_worldvert_mount) with 100 % of the labels: the
                     report's 100 %-label ceiling is the best of the two (FULL)
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
                     in-domain model

The matrix runs them (evaluate/matrix.py); its report compares them (evaluate/report.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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
        mse_channels: PretrainConfig.mse_channels, how the masked MSE weighs the channels (None: the config's).
        activities: PretrainConfig.activities, the label space whose activities alone are pretrained on ("": every
            window; None: the config's).
        heading_views: FinetuneConfig.heading_views (None: the config's).
        ensemble: FinetuneConfig.ensemble, heads in the deep ensemble (None: the config's).
        epochs_scale: finetuning epochs x this (the schedule's, or the matrix's --finetune-epochs).
        pretrain_scale: pretraining epochs x this (configs/pretrain.toml's, or the matrix's --pretrain-epochs; each
            source's epochs then sized as for every row, evaluate.matrix.pretrain_cfg); None: x 1.
        scaling: EncoderConfig.input_scaling, in pretraining and finetuning (None: configs/encoder.toml's).
        stem: EncoderConfig.stem, the encoder's input embedding (None: configs/encoder.toml's).
        mixup: FinetuneConfig.mixup, mixup's alpha in finetuning (None: the config's).
        smoothing: FinetuneConfig.label_smoothing in finetuning (None: the config's).
        sam: FinetuneConfig.sam, sharpness-aware minimisation's radius in finetuning (None: the config's).
        style_mix: FinetuneConfig.style_mix, the chance of a window's statistics mixed within its class (None: the config's).
        lr_scale: the finetuning learning rate x this (FinetuneConfig.lr; None: the config's).
        batch_size: FinetuneConfig.batch_size in finetuning (None: the config's).
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
        turn: AugmentConfig.turn in finetuning, the largest added turn rate about gravity (None: the configs').
        turn_scale: AugmentConfig.turn_scale in finetuning, the spread of the factor on a window's own turn rate
            (None: the configs').
        tta: test-time views: each target window is scored as the mean of the class probabilities of the window
            as recorded and `tta` draws of the run's finetuning augmentation (crosshar.inference.predict_tta);
            0 scores the window alone.
        tta_views: what the test-time views draw: "all" (the run's finetuning augmentation) or "motion" (without
            the device's orientation: crosshar.inference.view_augment).
        cadence_views: K fixed cadence views in the scored model (classifier.with_cadence_views: each target window
            replayed at K speeds over the finetuning cadence range, the probabilities averaged; the deterministic,
            exportable counterpart of `tta_views = "cadence"`); None: the model's own.
        head_options: head constructor options over the head's config (("attn_dropout", 0.0), ...); () none.
        init_from: the method whose finetuned model (same sources, head and seed) this row's finetuning starts from
            (FinetuneJob.init_run; LP-FT), trained and scored on its own.
        runs_of: the method whose finetuning (and pretraining) runs this row scores, instead of training its own:
            a row that changes only how the target is scored (`tta`) reuses the very models of its base row.
        head_schedule: the head's own finetuning schedule (the [finetune] table of configs/heads/<head>.toml, where it
            has one: the GRU's, the transformer's) over the shared one; False: the shared one (configs/finetune.toml).

    Oracles are trained to convergence: every finetuning epoch runs (no early stopping) and, of the
    epochs with the best validation macro-F1, the last is kept (FinetuneConfig.ties), since the
    target's own validation subjects saturate (macro-F1 1.0) long before the head has converged.
    """

    name: str
    pretrain: str | None = "crosshar"
    head_schedule: bool = True
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
    turn: float | None = None
    turn_scale: float | None = None
    views: str | None = None
    arrow: float | None = None
    mse_channels: str | None = None
    activities: str | None = None
    heading_views: int | None = None
    ensemble: int | None = None
    select: str | None = None
    unlabelled: float | None = None
    epochs_scale: float | None = None
    pretrain_scale: float | None = None
    mixup: float | None = None
    smoothing: float | None = None
    sam: float | None = None
    style_mix: float | None = None
    scaling: str | None = None
    stem: str | None = None
    lr_scale: float | None = None
    batch_size: int | None = None
    class_weight: str | None = None
    tta: int = 0
    tta_views: str = "all"
    cadence_views: int | None = None
    head_options: tuple = ()
    init_from: str | None = None
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
    # the frozen random encoder (scratch_frozen) in the best recipe's frame: is the frozen architecture's gain over the raw
    # window in the gravity frame (results/matrix-seeds6-today/) a gain in that frame too?
    Method("scratch_frozen_worldvert_mount", pretrain=None, random_encoder=True, frame="world_vertical", mount=0.5),
    Method("scratch_turn", pretrain=None, turn=0.5),
    Method("crosshar_turnft", turn=0.5),
    Method("scratch_worldvert_mount_turn", pretrain=None, frame="world_vertical", mount=0.5, turn=0.5),
    Method("scratch_turnscale", pretrain=None, turn_scale=1.0),
    Method("scratch_worldvert_mount_turnscale", pretrain=None, frame="world_vertical", mount=0.5, turn_scale=1.0),
    Method("scratch_worldvert_mount_amp_sqrt", pretrain=None, frame="world_vertical", mount=0.5, scaling="amplitude_sqrt"),
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
    Method("crosshar_mseeq", mse_channels="equal"),
    # pretraining on the label space's activities alone: WISDM's windows are 18 activities, 14 of them outside crosshar4
    # (eating, typing, sports: 78 % of its windows), UCI's and MotionSense's one each (lying, jogging)
    Method("crosshar_inspace", activities="crosshar4"),
    Method("scratch_attn0", pretrain=None, head_options=(("attn_dropout", 0.0),)),
    Method("crosshar_attn0", head_options=(("attn_dropout", 0.0),)),
    Method("scratch_attndrop", pretrain=None, head_options=(("attn_dropout", 0.1),)),
    Method("crosshar_attndrop", head_options=(("attn_dropout", 0.1),)),
    *(Method(f"{base}_sched{pc}", pretrain=pre, epochs_scale=f) for base, pre in (("scratch", None), ("crosshar", "crosshar"))
      for pc, f in ((50, 1 / 2), (67, 2 / 3))),
    *(Method(f"crosshar_pre{k}x", pretrain_scale=float(k)) for k in (3, 10)),
    Method("crosshar_combo", mse_channels="equal", smoothing=0.1, head_options=(("attn_dropout", 0.0),)),
    Method("scratch_b16", pretrain=None, batch_size=16),
    Method("crosshar_b16", batch_size=16),
    Method("scratch_tok5", pretrain=None, head_options=(("token_kernel", 5),)),
    Method("crosshar_tok5", head_options=(("token_kernel", 5),)),
    Method("scratch_tok1", pretrain=None, head_options=(("token_kernel", 1),)),
    Method("crosshar_tok1", head_options=(("token_kernel", 1),)),
    # DIN's size (DIN's options: a head without them rejects the row; results/matrix-dinsize/): cheaper for the speed
    # issue's matrix time, one interactive block instead of two (_d1) or width 32 instead of 64 (_w32); larger, three
    # blocks (_d3) or width 96 (_w96), also on the best recipe
    *(Method(f"{base}_{tag}", pretrain=pre, head_options=((opt, v),))
      for base, pre in (("scratch", None), ("crosshar", "crosshar"))
      for tag, opt, v in (("d1", "depth", 1), ("w32", "dim", 32), ("d3", "depth", 3), ("w96", "dim", 96))),
    Method("scratch_worldvert_mount_w96", pretrain=None, frame="world_vertical", mount=0.5, head_options=(("dim", 96),)),
    Method("scratch_shared", pretrain=None, head_schedule=False),
    Method("crosshar_shared", head_schedule=False),
    Method("scratch_chunk20", pretrain=None, head_options=(("chunk", 20),)),
    Method("crosshar_chunk20", head_options=(("chunk", 20),)),
    Method("scratch_v1", pretrain=None, smoothing=0.0, head_options=(("attn_dropout", 0.1),)),
    Method("crosshar_v1", mse_channels="raw", smoothing=0.0, head_options=(("attn_dropout", 0.1),)),
    Method("crosshar_worldvert_mount_mseeq", frame="world_vertical", mount=0.5, mse_channels="equal"),
    Method("scratch_frozen_conv", pretrain=None, random_encoder=True, stem="conv"),
    Method("crosshar_conv", stem="conv"),
    Method("crosshar_conv_arrow", stem="conv", arrow=1.0),
    Method("crosshar_full", full=True),
    Method("crosshar_full_slow", full=True, encoder_lr=0.1),
    Method("crosshar_lpft", full=True, lr_scale=0.1, epochs_scale=0.5, init_from="crosshar"),
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
    Method("scratch_instance", pretrain=None, scaling="instance"),
    Method("scratch_amp_equal", pretrain=None, scaling="amplitude_equal"),
    Method("scratch_amp_sqrt_long_last", pretrain=None, scaling="amplitude_sqrt", select="last", epochs_scale=3.0),
    Method("crosshar_amp_sqrt", scaling="amplitude_sqrt"),
    Method("crosshar_amp_equal", scaling="amplitude_equal"),
    Method("scratch_lr3", pretrain=None, lr_scale=3.0),
    Method("crosshar_lr3", lr_scale=3.0),
    Method("scratch_mixup", pretrain=None, mixup=0.4),
    Method("crosshar_mixup", mixup=0.4),
    Method("scratch_sam", pretrain=None, sam=0.05),
    Method("crosshar_sam", sam=0.05),
    Method("scratch_mixstyle", pretrain=None, head_options=(("mixstyle", 0.5),)),
    Method("crosshar_mixstyle", head_options=(("mixstyle", 0.5),)),
    Method("scratch_stylemix", pretrain=None, style_mix=0.5),
    Method("crosshar_stylemix", style_mix=0.5),
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
    Method("oracle_worldvert_mount_full", pretrain=None, oracle=True, frame="world_vertical", mount=0.5, label_rate=1.0),
    Method("oracle_stats", oracle=True, scaling="source_stats"),
    Method("oracle_scratch_frozen", pretrain=None, random_encoder=True, oracle=True),
    Method("crosshar_stats", scaling="source_stats"),
    Method("scratch_stats", pretrain=None, scaling="source_stats"),
    Method("scratch_worldvert_mount_stats", pretrain=None, frame="world_vertical", mount=0.5, scaling="source_stats"),
    Method("crosshar_worldvert_mount_stats", frame="world_vertical", mount=0.5, scaling="source_stats"),
]}
# the rows scored with test-time views too (`<base>_tta`, `<base>_tta_motion`)
TTA_BASES = ("scratch", "crosshar", "scratch_vertical", "scratch_worldvert_mount", "crosshar_worldvert_mount",
             "scratch_multi_worldvert_mount", "scratch_worldvert_mount_amp_sqrt")
METHODS |= {m.name: m for m in (tta_row(METHODS[b], kind=k) for k in ("all", "motion") for b in TTA_BASES)}
# ... and with the mirror image alone, one view (`<base>_tta_mirror`: the window and its mirror image averaged)
METHODS |= {m.name: m for m in (tta_row(METHODS[b], views=1, kind="mirror") for b in TTA_BASES)}
# ... and the best recipe's 8 views drawn from one of its augmentations at a time (`<base>_tta_mount`, ...)
METHODS |= {m.name: m for m in (tta_row(METHODS["scratch_worldvert_mount"], kind=k)
                                for k in ("mount", "amplitude", "cadence", "sensor"))}
# ... and with K fixed cadence views, the exportable views (`<base>_cadviews<K>`)
METHODS |= {m.name: m for m in (replace(METHODS[b], name=f"{b}_cadviews{k}", cadence_views=k, runs_of=b)
                                for b in ("scratch", "crosshar", "scratch_vertical", "scratch_worldvert_mount")
                                for k in (3, 5, 9))}
# the in-domain recipes at the matrix's label rate; the ceiling is the best of those run
# the 100 %-label in-domain rows: crosshar's pipeline and the best transfer recipe's; the report flags a transfer
# result above the best of them
FULL = ("oracle_full", "oracle_worldvert_mount_full")
CEILING = ("oracle", "oracle_scratch", "oracle_narrow", "oracle_scratch_narrow", "oracle_long", "oracle_scratch_long",
           "oracle_worldvert_mount")
DEFAULT_METHODS = ("scratch", "mask", "contrast", "crosshar", "crosshar_nomirror", "crosshar_device",
                   "crosshar_paper", "multi", "oracle", "oracle_full", "oracle_scratch")

