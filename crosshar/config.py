"""Frozen config dataclasses, one per concern, each mirrored by a TOML file in `configs/`.

Every field has a default equal to the shipped TOML, so a config can be built in code
(`PretrainConfig(stage1_epochs=2)`), from a file (`PretrainConfig.from_toml(path)`) or from the
packaged defaults (`load("pretrain")`). Unknown keys are an error, never silently ignored. The
resolved configs are written next to every checkpoint (`asdict`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Self

from crosshar.errors import ConfigError

# the input pipeline's options (crosshar.models.scaling.InputScaler reads these: one list, checked here)
INPUT_SCALINGS = ("physical", "source_stats", "instance", "amplitude_sqrt", "amplitude_equal")
INPUT_FRAMES = ("device", "gravity", "heading", "world", "vertical", "coupled", "world_vertical")


class _Config:
    """Mixin: construction from dicts / TOML with unknown-key checking, and every field's type checked
    (`_check_types`, called first by each subclass's __post_init__, whose range checks follow)."""

    def _check_types(self) -> None:
        """Each field holds its annotated type: an int an integer (not a bool, not 2.0), a float a finite
        number (an integer too: TOML's `lr = 1`), a bool true or false, a str a string."""
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v, t = getattr(self, f.name), f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            if t == "bool":
                _check(isinstance(v, bool), f"{f.name} must be true or false, got {v!r}")
            elif t == "int":
                _check(isinstance(v, numbers.Integral) and not isinstance(v, bool), f"{f.name} must be an integer, got {v!r}")
            elif t == "float":
                _check(isinstance(v, numbers.Real) and not isinstance(v, bool), f"{f.name} must be a number, got {v!r}")
                _check(math.isfinite(v), f"{f.name} must be a finite number, got {v!r}")
            elif t == "str":
                _check(isinstance(v, str), f"{f.name} must be a string, got {v!r}")

    def _range(self, name: str, lo: float | None = None, hi: float | None = None, *,
               lo_open: bool = False, hi_open: bool = False) -> None:
        """Field `name` lies in [lo, hi] (an end None: unbounded; `lo_open` / `hi_open`: that end excluded)."""
        v = getattr(self, name)
        ok = ((lo is None or (v > lo if lo_open else v >= lo)) and (hi is None or (v < hi if hi_open else v <= hi)))
        if lo is not None and hi is not None:
            want = f"in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
        elif lo is not None:
            want = f"{'>' if lo_open else '>='} {lo:g}"
        else:
            want = f"{'<' if hi_open else '<='} {hi:g}"
        _check(ok, f"{name} must be {want}, got {v!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "<dict>") -> Self:
        names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)} for [{cls.__name__}]; "
                f"known: {', '.join(names)}"
            )
        kw = {}
        for k, v in d.items():
            if isinstance(v, list):
                v = tuple(v)
            kw[k] = v
        try:
            obj = cls(**kw)  # type: ignore[call-arg]
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: {e}") from None
        return obj

    @classmethod
    def from_toml(cls, path: str | Path) -> Self:
        path = Path(path)
        _check_file(path, "config file")
        return cls.from_dict(_read_toml(path), source=str(path))

    def replace(self, **changes: Any) -> Self:
        changes = {k: v for k, v in changes.items() if v is not None}
        try:
            return dataclasses.replace(self, **changes)  # type: ignore[type-var]
        except (TypeError, ValueError) as e:  # an option out of range: one line, like a bad TOML value
            raise ConfigError(f"[{type(self).__name__}] {e}") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_saved(cls, d: dict[str, Any], source: str = "<checkpoint>") -> Self:
        """A config as written next to an older checkpoint: fields since removed (`REMOVED`) are
        dropped, anything else unknown is still an error; a field it lacks reads as what runs did before it
        existed (`BEFORE`, where that is not today's default), else as today's default."""
        kept = {k: v for k, v in d.items() if k not in getattr(cls, "REMOVED", ())}
        return cls.from_dict({**getattr(cls, "BEFORE", {}), **kept}, source)


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass(frozen=True)
class WindowConfig(_Config):
    """How recordings become canonical windows (defaults as CrossHAR: 20 Hz, 6 s, no overlap)."""

    rate_hz: float = 20.0  # target sampling rate after anti-aliased resampling
    window: int = 120  # samples per window
    stride: int = 120  # samples between window starts (120 = non-overlapping)
    channels: str = "acc+gyro"  # "acc+gyro" (6 channels) or "acc" (3 channels)
    normalize: str = "none"  # "none" (physical units) or "zscore_subject" (per subject and channel)

    def __post_init__(self) -> None:
        self._check_types()
        self._range("rate_hz", 0, lo_open=True)
        self._range("window", 2)
        self._range("stride", 1)
        _check(self.channels in ("acc+gyro", "acc"), f"channels must be 'acc+gyro' or 'acc', got {self.channels!r}")
        _check(self.normalize in ("none", "zscore_subject"), f"normalize must be 'none' or 'zscore_subject', got {self.normalize!r}")

    @property
    def n_channels(self) -> int:
        return 6 if self.channels == "acc+gyro" else 3


@dataclass(frozen=True)
class EncoderConfig(_Config):
    """LIMU-BERT-style transformer encoder (CrossHAR: hidden 72, feed-forward 144, 4 heads)."""

    d_model: int = 72  # embedding width D
    d_ff: int = 144  # feed-forward width
    n_heads: int = 4  # attention heads
    n_layers: int = 2  # transformer blocks
    share_weights: bool = False  # one block applied n_layers times, as in LIMU-BERT
    dropout: float = 0.1  # dropout inside the blocks
    norm: str = "pre"  # "pre" or "post" layer norm around attention and feed-forward
    input_scaling: str = "physical"  # "physical" (acc/g, gyro rad/s), "source_stats", "instance", "amplitude_sqrt", "amplitude_equal"
    input_frame: str = "gravity"  # "device" axes; "gravity": each window rotated so mean acc is +z; "heading"; "world"; "vertical"; "coupled"; "world_vertical"
    stem: str = "linear"  # input embedding: "linear" (each step alone, LIMU-BERT) or "conv" (a width-stem_kernel
    # convolution over time: each step's embedding sees its neighbours)
    stem_kernel: int = 5  # "conv" stem: steps per embedding (odd)

    def __post_init__(self) -> None:
        self._check_types()
        for name in ("d_model", "d_ff", "n_heads", "n_layers"):
            self._range(name, 1)
        self._range("dropout", 0, 1, hi_open=True)
        _check(self.d_model % self.n_heads == 0, "d_model must be divisible by n_heads")
        _check(self.stem in ("linear", "conv"), f"stem must be 'linear' or 'conv', got {self.stem!r}")
        _check(self.stem_kernel >= 1 and self.stem_kernel % 2 == 1, f"stem_kernel must be odd and >= 1, got {self.stem_kernel}")
        _check(self.norm in ("pre", "post"), f"norm must be 'pre' or 'post', got {self.norm!r}")
        _check(self.input_frame in INPUT_FRAMES,
               f"input_frame must be one of {INPUT_FRAMES}, got {self.input_frame!r}")
        _check(self.input_scaling in INPUT_SCALINGS,
               "input_scaling must be physical, source_stats, instance, amplitude_sqrt or amplitude_equal, "
               f"got {self.input_scaling!r}")


@dataclass(frozen=True)
class AugmentConfig(_Config):
    """Physics-based augmentation applied on the fly to training batches only (0 disables one)."""

    rotation_p: float = 1.0  # probability of a random SO(3) device rotation (acc and gyro together)
    axis_permute_p: float = 0.0  # probability of a proper signed axis permutation (det = +1)
    mirror_p: float = 0.5  # probability of a left/right mirror image (reflection; gyro as an axial vector)
    mirror_plane: str = "random"  # the mirror's vertical plane: "random" heading, or "device" (normal along a device axis)
    yaw_deg: float = 0.0  # random heading: rotation about gravity by U(-yaw_deg, yaw_deg) degrees
    tilt_deg: float = 0.0  # std of a small extra tilt (degrees), applied to both sensors
    gain_std: float = 0.1  # per-axis sensor gain ~ 1 + N(0, gain_std)
    bias_acc: float = 0.2  # per-axis accelerometer bias std (m/s^2)
    bias_gyro: float = 0.02  # per-axis gyroscope bias std (rad/s)
    noise_acc: float = 0.05  # additive white noise std on acc (m/s^2)
    noise_gyro: float = 0.01  # additive white noise std on gyro (rad/s)
    cadence: float = 0.1  # time-warp: speed factor ~ U(1 - cadence, 1 + cadence)
    body_amplitude: float = 1.5  # motion (not gravity) scaled by s in [1/(1+a), 1+a]: another body position
    gyro_amplitude: float = 0.0  # gyro further scaled by r in [1/(1+a), 1+a]: another lever arm (rotation per motion)
    swing: float = 0.0  # the window's own rotation k times as fast, acc turned with it, k in [1/(1+a), 1+a]
    lever_arm: float = 0.0  # the sensor moved by |r| ~ U(0, this) metres on its segment: acc + alpha x r + w x (w x r)
    mount: float = 0.0  # probability of seeing the motion through a spring-damper mount (crosshar.augment.mount)
    turn: float = 0.0  # the body turning about gravity at a further W ~ U(-turn, turn) rad/s (crosshar.augment.turn)
    turn_scale: float = 0.0  # the window's own turn rate about gravity x k, k in [1/(1+a), 1+a] (crosshar.augment.turn)

    MIRROR_PLANES: ClassVar[tuple[str, ...]] = ("random", "device")

    def __post_init__(self) -> None:
        self._check_types()
        for f in dataclasses.fields(self):
            if f.name != "mirror_plane":
                _check(getattr(self, f.name) >= 0, f"{f.name} must be >= 0, got {getattr(self, f.name)!r}")
        for name in ("rotation_p", "axis_permute_p", "mirror_p", "mount"):
            _check(getattr(self, name) <= 1, f"{name} is a probability and must be <= 1, got {getattr(self, name)}")
        self._range("cadence", 0, 1, hi_open=True)  # a speed factor in (0, 2): 1 - cadence must stay > 0
        _check(self.mirror_plane in self.MIRROR_PLANES,
               f"mirror_plane must be one of {', '.join(self.MIRROR_PLANES)}, got {self.mirror_plane!r}")


@dataclass(frozen=True)
class PretrainConfig(_Config):
    """Hierarchical pretraining: stage 1 masked reconstruction, stage 2 masked + contrastive."""

    REMOVED: ClassVar[tuple[str, ...]] = ("num_workers",)  # in checkpoints written before it went
    # what a run did before an option existed, where today's default differs: a checkpoint without the key ran so
    BEFORE: ClassVar[dict[str, Any]] = {"mse_channels": "raw"}

    stage1_epochs: int = 1  # masked reconstruction only (configs/pretrain.toml says why so few)
    stage2_epochs: int = 1  # masked reconstruction + NT-Xent
    batch_size: int = 256
    lr: float = 2e-3  # peak learning rate (AdamW, linear warm-up then cosine decay)
    warmup_epochs: int = 2
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    mask_ratio: float = 0.15  # fraction of time steps masked
    span_max: int = 10  # longest masked span
    span_p: float = 0.2  # geometric parameter of the span length
    mask_prob: float = 0.8  # a masked step is zeroed with this probability (else kept)
    temperature: float = 0.2  # NT-Xent temperature
    w_mse: float = 6.0  # stage 2 weight of the masked MSE
    w_contrast: float = 1.0  # stage 2 weight of NT-Xent
    proj_dim: int = 64  # width of the contrastive projection
    lr_schedule: str = "cosine"  # "cosine" (linear warm-up, cosine decay) or "constant" (CrossHAR's Adam)
    mask_per_window: bool = False  # one zeroing coin per window (LIMU-BERT / CrossHAR) instead of per step
    views: str = "physical"  # stage-2 views: "physical" (two augmentations) or "tstcc" (CrossHAR's weak/strong)
    arrow: float = 0.0  # weight of the arrow-of-time loss (which way each window runs; half are played
    # backwards, crosshar.models.frame.reverse_time), in both stages; 0 = off
    mse_channels: str = "equal"  # masked MSE: "raw" (every channel's squared error as it is) or "equal" (each channel's
    # divided by its variance over the batch, crosshar.losses.equal_channel_weights)
    activities: str = ""  # pretrain only on the source windows whose activity lies in this label space (a name of
    # crosshar.data.labels.SPACES, e.g. "crosshar4"; crosshar.data.sources.in_label_space); "" every window
    val_fraction: float = 0.2  # fraction of source training subjects held out for validation
    seed: int = 0

    def __post_init__(self) -> None:
        self._check_types()
        self._range("stage1_epochs", 0)
        self._range("stage2_epochs", 0)
        _check(self.epochs >= 1, "epochs (stage1_epochs + stage2_epochs) must be >= 1, "
               f"got {self.stage1_epochs} + {self.stage2_epochs}")
        self._range("batch_size", 1)
        self._range("lr", 0, lo_open=True)
        self._range("warmup_epochs", 0)
        self._range("weight_decay", 0)
        self._range("grad_clip", 0)
        self._range("span_max", 1)
        self._range("span_p", 0, 1, lo_open=True)
        self._range("mask_prob", 0, 1)
        self._range("w_mse", 0)
        self._range("w_contrast", 0)
        self._range("proj_dim", 1)
        self._range("seed", 0)
        _check(0 < self.mask_ratio < 1, "mask_ratio must be in (0, 1)")
        _check(self.views in ("physical", "tstcc"), f"views must be 'physical' or 'tstcc', got {self.views!r}")
        _check(self.lr_schedule in ("cosine", "constant"), f"lr_schedule must be cosine or constant, got {self.lr_schedule!r}")
        _check(0 < self.val_fraction < 1, "val_fraction must be in (0, 1)")
        _check(self.temperature > 0, "temperature must be > 0")
        _check(self.arrow >= 0, f"arrow must be >= 0, got {self.arrow}")
        _check(self.mse_channels in ("raw", "equal"), f"mse_channels must be 'raw' or 'equal', got {self.mse_channels!r}")

    @property
    def epochs(self) -> int:
        return self.stage1_epochs + self.stage2_epochs


HEAD_INPUTS = ("embedding", "embedding+window")


@dataclass(frozen=True)
class FinetuneConfig(_Config):
    """Supervised training of a head on the encoder's embeddings with a fraction of labels."""

    # what a run did before an option existed, where today's default differs (see PretrainConfig.BEFORE)
    BEFORE: ClassVar[dict[str, Any]] = {"label_smoothing": 0.0}

    label_rate: float = 0.1  # fraction of source training windows that keep their labels
    head: str = "din"  # registered head name (best on the cross-dataset and UCI-HAR benchmarks)
    freeze: bool = True  # freeze the encoder (False: finetune it end to end)
    encoder_lr_scale: float = 1.0  # an encoder trained end to end learns at lr x this (the head at lr)
    head_input: str = "embedding"  # what the head reads: the encoder's "embedding", or "embedding+window"
    # (the embedding concatenated with the scaled, framed input window: a skip connection past the encoder)
    skip_frame: str = "encoder"  # "embedding+window": the window in the encoder's own frame, or in one of INPUT_FRAMES
    epochs: int = 40
    batch_size: int = 32  # small: 10 % of a dataset is a few hundred windows; steps, not epochs, train the head
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # "adamw", "adam" (no weight decay unless set) or "lion"
    lr_schedule: str = "cosine"  # "cosine" annealing over the epochs, "constant", or "step" (x step_gamma every step_epochs)
    step_epochs: int = 50  # "step" schedule: epochs between learning-rate drops
    step_gamma: float = 0.1  # "step" schedule: factor of each drop
    grad_clip: float = 5.0  # gradient-norm clipping (0 = off)
    augment: bool = True  # physics-based augmentation of training windows
    center_loss: float = 0.0  # weight of the center loss (MAG-Res2Net recipe)
    center_on: str = "features"  # center loss on the head's "features" or on its "logits" (MAG-Res2Net's notebook)
    smote: bool = False  # Borderline-SMOTE oversampling of training windows (MAG-Res2Net recipe)
    val_fraction: float = 0.2
    patience: int = 15  # early stopping on validation macro-F1
    ties: str = "first"  # equal validation macro-F1: keep the "first" epoch's model, or the "last" (more trained) one
    select: str = "last"  # "last": every epoch runs, the last is kept (no selection); "best": the best source-validation epoch (early stopping)
    val_every: int = 5  # select = "last": source validation (history, TensorBoard) every this many epochs and at the last; "best": every epoch
    coarse_labels: bool = False  # windows labelled coarser than the classes (WISDM's stairs) train on their sum
    average_epochs: float = 0.0  # > 0: select and save a moving average of the weights over about this many epochs
    heading_views: int = 1  # K > 1: the saved model averages its probabilities over K turns about gravity (one in selection)
    cadence_views: int = 1  # K > 1: the saved model averages its probabilities over the window replayed at K fixed speeds spanning the augmentation's cadence range (one in selection)
    ensemble: int = 1  # K > 1: K heads from independent initialisations train side by side; their probabilities are averaged
    unlabelled: float = 0.0  # > 0: weight of the consistency loss on the source's unlabelled training windows (FixMatch)
    unlabelled_ratio: int = 2  # unlabelled windows per labelled window in each step (FixMatch's mu)
    threshold: float = 0.95  # confidence above which an unlabelled window's prediction becomes its pseudo-label
    label_smoothing: float = 0.1  # > 0: this share of each label's probability spread evenly over the classes
    mixup: float = 0.0  # > 0: mixup's alpha: each batch's head inputs and labels mixed with a shuffled copy, weight ~ Beta(alpha, alpha)
    sam: float = 0.0  # > 0: sharpness-aware minimisation's radius rho: each step's gradient taken at the batch's worst weights within rho
    style_mix: float = 0.0  # > 0: each labelled window's chance to have its per-channel mean and std over time mixed with another window's of its class
    class_weight: str = "none"  # "balanced": each class's cross-entropy weighted by n / (K n_k) over the training labels
    seed: int = 0

    def __post_init__(self) -> None:
        self._check_types()
        _check(0 < self.label_rate <= 1, f"label_rate must be in (0, 1], got {self.label_rate}")
        self._range("epochs", 1)
        self._range("batch_size", 1)
        self._range("lr", 0, lo_open=True)
        self._range("weight_decay", 0)
        self._range("center_loss", 0)
        self._range("val_fraction", 0, 1, lo_open=True, hi_open=True)
        self._range("seed", 0)
        _check(self.optimizer in ("adamw", "adam", "lion"), f"optimizer must be adamw, adam or lion, got {self.optimizer!r}")
        _check(self.lr_schedule in ("cosine", "constant", "step"),
               f"lr_schedule must be cosine, constant or step, got {self.lr_schedule!r}")
        self._range("step_epochs", 1)
        self._range("step_gamma", 0, 1, lo_open=True)
        _check(self.center_on in ("features", "logits"), f"center_on must be features or logits, got {self.center_on!r}")
        _check(self.grad_clip >= 0, f"grad_clip must be >= 0, got {self.grad_clip}")
        _check(self.head_input in HEAD_INPUTS, f"head_input must be one of {HEAD_INPUTS}, got {self.head_input!r}")
        _check(self.skip_frame == "encoder" or self.skip_frame in INPUT_FRAMES,
               f"skip_frame must be 'encoder' or one of {INPUT_FRAMES}, got {self.skip_frame!r}")
        _check(self.ties in ("first", "last"), f"ties must be first or last, got {self.ties!r}")
        _check(self.select in ("best", "last"), f"select must be best or last, got {self.select!r}")
        _check(self.patience >= 1, f"patience must be >= 1, got {self.patience}")
        _check(self.val_every >= 1, f"val_every must be >= 1, got {self.val_every}")
        _check(self.average_epochs >= 0, f"average_epochs must be >= 0, got {self.average_epochs}")
        _check(self.heading_views >= 1, f"heading_views must be >= 1, got {self.heading_views}")
        _check(1 <= self.cadence_views <= MAX_CADENCE_VIEWS, f"cadence_views must be 1..{MAX_CADENCE_VIEWS} (each view is a "
               f"whole forward pass per window), got {self.cadence_views}")
        _check(self.ensemble >= 1, f"ensemble must be >= 1, got {self.ensemble}")
        _check(self.ensemble == 1 or self.center_loss == 0,
               "center_loss needs one head (its features): set ensemble = 1 or center_loss = 0")
        _check(0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _check(self.class_weight in ("none", "balanced"), f"class_weight must be none or balanced, got {self.class_weight!r}")
        _check(self.class_weight == "none" or not self.coarse_labels,
               "class_weight = \"balanced\" weighs fine labels only: set coarse_labels = false")
        _check(self.unlabelled >= 0, f"unlabelled must be >= 0, got {self.unlabelled}")
        _check(self.unlabelled_ratio >= 1, f"unlabelled_ratio must be >= 1, got {self.unlabelled_ratio}")
        _check(0 <= self.threshold < 1, f"threshold must be in [0, 1), got {self.threshold}")
        _check(self.unlabelled == 0 or self.augment, "unlabelled needs augment = true (its strong view is the augmentation)")
        _check(self.cadence_views == 1 or self.augment, "cadence_views > 1 needs augment = true (the views replay the "
               "finetuning augmentation's cadence range, which a model finetuned without it never saw)")
        _check(self.mixup >= 0, f"mixup must be >= 0, got {self.mixup}")
        _check(self.mixup == 0 or self.center_loss == 0, "mixup mixes labels, the center loss needs one: set one of them to 0")
        _check(self.sam >= 0, f"sam must be >= 0, got {self.sam}")
        _check(0 <= self.style_mix <= 1, f"style_mix must be a probability in [0, 1], got {self.style_mix}")
        _check(self.style_mix == 0 or (self.mixup == 0 and self.sam == 0),
               "style_mix changes the head's inputs, which mixup mixes again and sam must see unchanged: set style_mix = 0 "
               "or mixup and sam to 0")
        _check(self.sam == 0 or (self.mixup == 0 and self.unlabelled == 0),
               "sam takes each step's gradient twice on the same batch; mixup and unlabelled draw theirs anew: set sam = 0 "
               "or both of them to 0")
        _check(0 < self.encoder_lr_scale <= 10, f"encoder_lr_scale must be in (0, 10], got {self.encoder_lr_scale}")


@dataclass(frozen=True)
class CrossConfig(_Config):
    """Source-to-target evaluation."""

    label_space: str = "crosshar4"  # named label space, intersected with both datasets'
    head: str = "din"
    label_rate: float = 0.1

    def __post_init__(self) -> None:
        self._check_types()
        self._range("label_rate", 0, 1, lo_open=True)


def config_dir() -> Path:
    """The packaged `configs/` folder (installed as crosshar.configs; the source tree's otherwise)."""
    try:
        return Path(str(resources.files("crosshar.configs")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "configs"


RECIPES = ("default", "paper", "next")


def recipe(name: str | None) -> dict[str, dict[str, Any]]:
    """The overrides a named recipe puts on top of the defaults, one table per config kind.

    "default" is the shipped configs as they are; "paper" (`configs/recipes/paper.toml`) is
    CrossHAR as published, reproduced in crosshar's code; "next" (`configs/recipes/next.toml`) the candidate
    next defaults, measured on the whole matrix before they are shipped (`crosshar matrix --recipe next`).
    Tables: encoder, augment, augment_finetune, pretrain, finetune, head (the options of the recipe's own head),
    heads.NAME (the options of head NAME, whichever head a run uses); `head_preset = NAME` takes the head options
    and the [finetune] table of the recipe's head's preset file (`preset_path`) under the recipe's own.
    """
    if name in (None, "default"):
        return {}
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    p = config_dir() / "recipes" / f"{name}.toml"
    try:
        d = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"{p}: {e}") from None
    heads = d.get("heads", {})
    if not isinstance(heads, dict) or not all(isinstance(v, dict) for v in heads.values()):
        raise ConfigError(f"recipe {name!r}: [heads] must hold one table per head ([heads.din] ...)")
    preset = d.pop("head_preset", None)
    if preset is not None:  # the head's preset file is the one home of the classifier's recipe
        head = d.get("finetune", {}).get("head") or FinetuneConfig().head
        pd = _read_toml(preset_path(head, preset))
        ft = pd.pop("finetune", {})
        d["head"] = pd | d.get("head", {})
        d["finetune"] = ft | d.get("finetune", {})
    return d


def load(kind: str, path: str | Path | None = None, recipe_name: str | None = None, **overrides: Any) -> Any:
    """Load the packaged default (or `path`) for a concern, then a recipe's table for it, then
    non-None overrides. What a file the user names (`path`) sets explicitly wins over the recipe's table (a recipe
    overrode `--encoder-config F` with `--preset paper` silently); the recipe fills the rest.

    Args:
        kind: "window", "encoder", "augment" (pretraining), "augment_finetune", "pretrain", "finetune"
            or "cross".
        recipe_name: None / "default", or a shipped recipe: "paper", "next" (see `recipe`).
    """
    classes = {
        "window": WindowConfig, "encoder": EncoderConfig, "augment": AugmentConfig, "augment_finetune": AugmentConfig,
        "pretrain": PretrainConfig, "finetune": FinetuneConfig, "cross": CrossConfig,
    }
    if kind not in classes:
        raise ConfigError(f"unknown config kind {kind!r}")
    cls = classes[kind]
    p = Path(path) if path is not None else config_dir() / f"{kind}.toml"
    if path is not None:
        _check_file(p, "config file")
    cfg = cls.from_toml(p) if p.is_file() else cls()
    table = recipe(recipe_name).get(kind, {})
    if table and path is not None:  # the user's file is the later word on what it sets
        table = {k: v for k, v in table.items() if k not in _read_toml(p)}
    if table:
        merged = cfg.to_dict() | table
        cfg = cls.from_dict(merged, source=f"recipe {recipe_name!r} [{kind}]")
    return cfg.replace(**overrides)


def keys_set(path: str | Path | None) -> set[str]:
    """The keys a config file sets at its top level (what a user said explicitly); none for no file."""
    if path is None:
        return set()
    _check_file(Path(path), "config file")
    return set(_read_toml(Path(path)))


def _check_file(p: Path, what: str) -> None:
    """`p` is a file: a missing path or a folder in its place is a one-line error naming it."""
    if p.is_dir():
        raise ConfigError(f"{what} {p}: is a directory, not a TOML file")
    if not p.is_file():
        raise ConfigError(f"{what} not found: {p}")


def _read_toml(p: Path) -> dict[str, Any]:
    """A TOML file's tables; a file that is not UTF-8 TOML, or cannot be read, is a one-line error naming it."""
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot be read: {e.strerror or e}") from None


def head_config(name: str, path: str | Path | None = None, recipe_name: str | None = None) -> dict[str, Any]:
    """Keyword arguments for a head's constructor from `configs/heads/<name>.toml`, then the
    recipe's [head] table when the recipe's head is this one.

    A head preset file's `[finetune]` table is not a head option; `head_preset` reads it.
    """
    p = Path(path) if path is not None else config_dir() / "heads" / f"{name}.toml"
    if path is not None:
        _check_file(p, "head config file")
    kw: dict[str, Any] = _read_toml(p) if p.is_file() else {}
    kw.pop("finetune", None)
    r = recipe(recipe_name)
    if r.get("finetune", {}).get("head") == name:
        kw |= r.get("head", {})
    return kw | r.get("heads", {}).get(name, {})


def preset_path(name: str, preset: str = "default") -> Path:
    """`configs/heads/<name>.toml` for the default preset, `configs/heads/<name>.<preset>.toml` otherwise."""
    return config_dir() / "heads" / (f"{name}.toml" if preset == "default" else f"{name}.{preset}.toml")


def list_presets(name: str) -> list[str]:
    """The presets shipped for a head: "default" and every `configs/heads/<name>.<preset>.toml`."""
    found = sorted(p.name[len(name) + 1:-len(".toml")] for p in (config_dir() / "heads").glob(f"{name}.*.toml"))
    return ["default"] + found


def head_preset(name: str, preset: str = "default", finetune: FinetuneConfig | None = None,
                path: str | Path | None = None, keep: Iterable[str] = ()) -> tuple[dict[str, Any], FinetuneConfig]:
    """A head preset: the head's options and the finetune config with the preset's recipe applied.

    A preset file holds the head's options at the top level and, optionally, a `[finetune]` table
    of `FinetuneConfig` fields (optimiser, schedule, epochs, batch size, losses, oversampling) that
    replace those of `finetune` (default: the packaged finetune config), except the fields in `keep` (what the
    user set: a `--config` file's keys, command-line options). The default preset's file
    (`configs/heads/<name>.toml`) may hold one too: the schedule a head needs to train at all (LIMU-BERT's GRU),
    applied wherever that head is finetuned (`crosshar finetune`, `cross`, `matrix`). Unknown keys in that table
    are an error naming the file, and so are an unknown head and unknown or bad head options (`check_head`).

    Args:
        name: registered head name.
        preset: "default" (today's `configs/heads/<name>.toml`, no recipe change) or a shipped
            preset name such as "paper" (`configs/heads/<name>.paper.toml`, docs/paper_presets.md).
        finetune: the config the recipe is applied to.
        path: an explicit head config file (replaces the preset's file).

    Raises:
        ConfigError: an unknown head, a preset that is not shipped for this head, a missing `path`, invalid TOML,
            unknown keys or bad head options.
    """
    check_head(name)
    base = finetune if finetune is not None else load("finetune")
    p = Path(path) if path is not None else preset_path(name, preset)
    if path is not None:
        _check_file(p, "head config file")
    elif not p.is_file():
        if preset == "default":
            return {}, base
        raise ConfigError(f"no preset {preset!r} for head {name!r} ({p} not found); "
                          f"presets: {', '.join(list_presets(name))}")
    d = _read_toml(p)
    recipe = d.pop("finetune", {})
    if not isinstance(recipe, dict):
        raise ConfigError(f"{p}: [finetune] must be a table")
    if "head" in recipe:
        raise ConfigError(f"{p}: [finetune] must not set head (the preset belongs to {name!r})")
    check_head(name, d, str(p))
    recipe = {k: v for k, v in recipe.items() if k not in set(keep)}
    return d, FinetuneConfig.from_dict(base.to_dict() | recipe, source=f"{p} [finetune]")


def check_head(name: str, options: dict[str, Any] | None = None, source: str = "overrides") -> None:
    """`name` is a registered head and `options` (a head config file's, `source`) are options it takes, each of its
    kind: checked before any data is read or model trained (`create_head` checks them again when it builds it).

    Raises:
        ConfigError: an unknown head (listing the known ones), an unknown option or a bad value, naming `source`.
    """
    from crosshar.models import heads  # torch: imported only when a head is checked

    heads.HEADS.get(name)
    if options:
        heads._check_options(name, options, source)
        heads._check_values(name, options, source)


MAX_CADENCE_VIEWS = 64  # cadence views a model may carry: K forward passes per window (5 measured best: README)
ON_BAD = ("error", "skip")  # --on-bad: stop at the first bad row, or skip bad rows and report each


def check_at_least(option: str, value: int | float | None, lo: int) -> None:
    """A command-line number (None: not given) is >= lo: checked before any work, one line."""
    if value is not None and not value >= lo:
        raise ConfigError(f"{option} must be >= {lo}, got {value}")


def check_choice(option: str, value: str, choices: tuple[str, ...]) -> None:
    """A command-line word is one of `choices`: checked before any work, one line."""
    if value not in choices:
        raise ConfigError(f"{option} must be one of {', '.join(choices)}, got {value!r}")


__all__ = [
    "WindowConfig", "EncoderConfig", "AugmentConfig", "PretrainConfig", "FinetuneConfig",
    "CrossConfig", "load", "keys_set", "head_config", "head_preset", "check_head", "list_presets", "preset_path", "config_dir", "field",
    "recipe", "RECIPES", "ON_BAD", "check_at_least", "check_choice",
]
