"""`crosshar matrix`: every directed pair x method x head x seed, resumable, with a markdown report.

The rows it runs are in evaluate/methods.py (`METHODS`: every method runs the same input pipeline, the same
finetuning augmentation and the same head, each changing only the factor its name says); the report it writes
is evaluate/report.py's.

Each finished cell is appended to rows.jsonl (one line, written at once); a rerun skips what is
there. The work is grouped by pretraining run (`group_key`: the cells that share one stay in one
process) and processes sharing a matrix folder divide it dynamically: each claims the next group
nobody holds (`claims/`, one file per group, created exclusively; a claim whose process has died is
taken over), so the work stays balanced however unequal the groups are. `--jobs N` starts N such
workers; `--shard K/N` restricts a process to a fixed subset of the groups (e.g. one per machine).
"""

from __future__ import annotations

import contextlib
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
from crosshar.data.store import prepare
from crosshar.errors import ConfigError, CrossharError
from crosshar import guard
from crosshar.data.sources import in_label_space, load_sources, target_needs
from crosshar.inference import embed, load_encoder, predict_tta, run_augment, score
from crosshar.models.scaling import InputPipeline
from crosshar.train import finetune as finetuning
from crosshar.train import pretrain as pretraining
from crosshar.models import classifier as clf
from crosshar.evaluate.methods import DEFAULT_METHODS, METHODS, Method
from crosshar.evaluate.report import read_rows, read_timing, write_report


@dataclass(frozen=True)
class MatrixConfig:
    """What to run. `datasets` form the directed pairs; `targets_only` are only ever transfer targets (e.g. hhar), and
    have their oracles (their ceiling, trained on their own training users) like the others."""

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
    recipe: str = "default"  # config recipe of every row whose method has none of its own (crosshar.config.recipe; "next":
                             # the candidate next defaults, measured on the whole matrix before they are shipped)

    def __post_init__(self) -> None:
        for option, values in (("--dataset", self.datasets), ("--head", self.heads), ("--methods", self.methods)):
            if not values:
                raise ConfigError(f"{option} names nothing: give at least one")
        for option, values in (("--head", self.heads), ("--methods", self.methods)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:  # each cell would run twice: its rows counted as two seeds
                raise ConfigError(f"{option} names {', '.join(twice)} twice")
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise ConfigError(f"unknown method(s) {bad}; known: {', '.join(METHODS)}")
        if not 0 <= self.shard[0] < self.shard[1]:
            raise ConfigError(f"--shard must be K/N with 0 <= K < N, got {self.shard[0]}/{self.shard[1]}")
        transfer = [m for m in self.methods if not METHODS[m].oracle]  # the oracles alone need no pair
        if transfer and not any(t != s for s in self.datasets for t in self.datasets + self.targets_only):
            raise ConfigError(f"--dataset {','.join(self.datasets)} forms no (source, target) pair for "
                              f"{', '.join(transfer)}: name at least two datasets (-d uci,motion) or a target "
                              "(--targets-only hhar)")
        if not self.seeds >= 1:
            raise ConfigError(f"--n-seeds must be >= 1 (how many seeds per cell), got {self.seeds}")
        if not 0 < self.label_rate <= 1:
            raise ConfigError(f"--label-rate must be in (0, 1], got {self.label_rate}")
        if self.recipe not in C.RECIPES:
            raise ConfigError(f"--recipe {self.recipe!r} is not a shipped recipe; known: {', '.join(C.RECIPES)}")
        for option, v in (("--pretrain-epochs", self.pretrain_epochs), ("--finetune-epochs", self.finetune_epochs)):
            if v is not None and not v >= 1:  # 0 would silently mean the default (`or` below)
                raise ConfigError(f"{option} must be >= 1, got {v}")

    def recipe_of(self, m: Method) -> str:
        """The recipe `m`'s configs are read with: its own (crosshar_paper's "paper"), else the matrix's."""
        return m.recipe if m.recipe != "default" else self.recipe


REF_WINDOWS = 1700  # the schedule in configs/pretrain.toml is sized for ~1,700 windows (UCI)


def method_configs(m: Method, window: C.WindowConfig, recipe: str | None = None) -> dict:
    """The resolved configs of a method: encoder, augment (pretraining), augment_finetune, pretrain,
    finetune (without the per-cell overrides). `recipe`: the one to read them with (MatrixConfig.recipe_of; None:
    the method's own)."""
    r = m.recipe if recipe is None else recipe
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
    if m.turn is not None:  # finetuning only
        aug_ft = aug_ft.replace(turn=m.turn)
    if m.turn_scale is not None:
        aug_ft = aug_ft.replace(turn_scale=m.turn_scale)
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
    pre = pre if m.mse_channels is None else pre.replace(mse_channels=m.mse_channels)
    pre = pre if m.activities is None else pre.replace(activities=m.activities)
    return {"encoder": enc, "augment": aug, "augment_finetune": aug_ft, "pretrain": pre,
            "finetune": C.load("finetune", recipe_name=r)}


def pretrain_cfg(m: Method, base: C.PretrainConfig, mc: MatrixConfig, seed: int, n_windows: int = REF_WINDOWS,
                 n_kept: int | None = None):
    """The method's pretraining config. Epochs shrink for larger sources so that every source gets
    about the same number of optimiser steps (WISDM has 6x UCI's windows). `n_kept`: the windows it pretrains on when
    PretrainConfig.activities leaves some of the source's `n_windows` out; its epochs (and warm-up) stretch by
    n_windows / n_kept, so that it takes the optimiser steps, and the schedule, of the whole source's run."""
    total = (mc.pretrain_epochs or (6 if mc.quick else C.load("pretrain").epochs)) * (m.pretrain_scale or 1.0)
    # the same number of optimiser steps for every recipe (CrossHAR's batch is twice ours) ...
    total *= base.batch_size / C.load("pretrain").batch_size
    # ... and for every source size
    total = max(2, round(total * min(1.0, REF_WINDOWS / max(n_windows, 1))))
    p = base.replace(seed=seed)
    if n_kept is not None and 0 < n_kept < n_windows:
        stretched = round(total * n_windows / n_kept)  # n_kept < n_windows: never fewer epochs
        p = p.replace(warmup_epochs=round(p.warmup_epochs * stretched / total))
        total = stretched
    if m.pretrain == "mask":
        return p.replace(stage1_epochs=total, stage2_epochs=0)
    if m.pretrain == "contrast":
        # stage 2 only, reconstruction weight 0: NT-Xent alone
        return p.replace(stage1_epochs=0, stage2_epochs=total, w_mse=0.0, w_contrast=1.0)
    s1 = total // 2
    return p.replace(stage1_epochs=s1, stage2_epochs=total - s1)


def _json_object(f: Path, what: str) -> dict:
    """The JSON object in `f`; CrossharError naming it (and `what` to do) when it is damaged."""
    try:
        d = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise CrossharError(f"{f}: not readable JSON ({str(e)[:120]}); {what}") from None
    if not isinstance(d, dict):
        raise CrossharError(f"{f}: not a JSON object (a {type(d).__name__}); {what}")
    return d


def _run_info(run_dir: Path) -> dict:
    """A matrix run's run.json (CrossharError naming it when damaged)."""
    return _json_object(run_dir / "run.json", f"remove the folder {run_dir} to train that run again")


def _done(path: Path) -> bool:
    f = path / "run.json"
    return f.is_file() and bool(_run_info(path).get("finished", False))


@contextlib.contextmanager
def _reading(run_dir: Path):
    """Around code that takes entries out of a run's run.json: a missing or mistyped one names the file."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as e:
        raise CrossharError(f"{run_dir / 'run.json'}: damaged ({type(e).__name__}: {str(e)[:120]}); remove the "
                            f"folder {run_dir} to train that run again") from None


SCHEDULE = "schedule.json"  # the options that set how every row of a matrix folder was trained


def schedule(mc: "MatrixConfig") -> dict:
    """What, besides the method, decides a row's training: one value per folder, so its report's command holds."""
    return {"quick": mc.quick, "pretrain_epochs": mc.pretrain_epochs, "finetune_epochs": mc.finetune_epochs,
            "label_rate": mc.label_rate, "preset": mc.preset, "recipe": mc.recipe}


def check_schedule(mc: "MatrixConfig", root: Path, report_only: bool) -> None:
    """The folder's rows were trained with these options (its schedule.json, when a run wrote one): a report whose
    command showed other options (`--report-only` without `--quick`), or rows of two schedules in one folder,
    would misstate what was measured."""
    f = root / SCHEDULE
    if not f.is_file():
        return
    have = _json_object(f, "remove it if the folder's rows were trained with the options given now")
    want = schedule(mc)
    have.setdefault("recipe", "default")  # a folder written before --recipe existed: the shipped configs
    diff = [f"{k} {have.get(k)!r} (asked: {want[k]!r})" for k in want if have.get(k) != want[k]]
    if diff:
        opts = "--quick, --pretrain-epochs, --finetune-epochs, --label-rate, --preset, --recipe"
        raise ConfigError(f"{root}: its rows were trained with {', '.join(diff)}; "
                          + ("report them with the same options" if report_only else
                             "rows of another schedule go in a folder of their own (--name)") + f" ({opts})")


def check_datasets(mc: "MatrixConfig") -> None:
    """Before any training: two body positions of one dataset are the same people at the same moments, so
    neither is an unseen target for the other (the leakage guard would refuse the pair after its cell trained)."""
    from crosshar.data.store import is_folder_spec, resolve, split_position

    seen: dict[str, str] = {}
    for spec in (*mc.datasets, *mc.targets_only):
        base = split_position(spec)[0]
        key = resolve(base).name if is_folder_spec(base) else str(base)
        if key in seen and seen[key] == spec:
            raise ConfigError(f"dataset {spec} is named twice")
        if key in seen:
            raise ConfigError(f"{seen[key]} and {spec} are two body positions of one dataset (the same people at the "
                              "same moments): neither is an unseen target for the other; give one of them")
        seen[key] = spec


def sources_tag(sources: tuple[str, ...] | list[str]) -> str:
    """The run-folder part naming datasets: registered names as they are, a folder of your own data by its
    descriptor's name ("./lab/mylog@wrist" -> "mylog@wrist"), never a path."""
    from crosshar.data.store import is_folder_spec, resolve, split_position

    return "+".join(resolve(s).name if is_folder_spec(split_position(s)[0]) else s for s in sources)


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
             + ([f"arrow{m.arrow:g}"] if m.arrow is not None else [])
             + ([f"mse{m.mse_channels}"] if m.mse_channels is not None else [])
             + ([f"act{m.activities}"] if m.activities is not None else [])
             + ([f"pre{m.pretrain_scale:g}x"] if m.pretrain_scale is not None else []))
    return "_".join(parts + ([m.recipe] if m.recipe != "default" else []))


def pretrain_run(root: Path, sources: tuple[str, ...], m: Method, seed: int, mc: MatrixConfig, window, log) -> Path:
    key = _pretrain_key(m)
    d = root / "runs" / f"pretrain-{sources_tag(sources)}-{key}{window_tag(window)}-s{seed}"
    if _done(d):
        return d
    cfgs = method_configs(m, window, mc.recipe_of(m))
    ws = load_sources(list(sources), None, window)
    kept = len(in_label_space(ws, cfgs["pretrain"].activities))  # PretrainConfig.activities may leave windows out
    pcfg = pretrain_cfg(m, cfgs["pretrain"], mc, seed, len(ws), kept)
    job = pretraining.PretrainJob(sources, window, cfgs["encoder"], cfgs["augment"], pcfg)
    log(f"pretraining {key} on {'+'.join(sources)} (seed {seed})")
    return pretraining.run(job, out=d, resume=(d / "last.pt").is_file(), log=lambda *_: None, progress=False, device=mc.device)


def finetune_run(root: Path, sources: tuple[str, ...], m: Method, head: str, seed: int, mc: MatrixConfig, window,
                 encoder: Path | None, exclude: tuple[str, ...] = (), tag: str = "") -> Path:
    """The method's finetuning run (resumed when finished); `tag` names what else makes it unique
    (crosshar_wide: its pretraining sources). A method with `init_from` starts from that method's run (trained
    first when the folder lacks it)."""
    init = (finetune_run(root, sources, METHODS[m.init_from], head, seed, mc, window, encoder, exclude, tag)
            if m.init_from else None)
    cfgs = method_configs(m, window, mc.recipe_of(m))
    head_name = cfgs["finetune"].head if m.recipe != "default" else head  # a recipe brings its own head
    head_cfg = C.head_config(head_name, recipe_name=mc.recipe_of(m)) | dict(m.head_options)
    preset = mc.preset if m.recipe == "default" else "default"
    if preset != "default":  # the paper's model and finetuning recipe (crosshar finetune --preset)
        head_cfg, ft = C.head_preset(head_name, preset, cfgs["finetune"])
        cfgs["finetune"] = ft
    elif m.recipe == "default" and m.head_schedule:  # the head's own schedule where its file has one (the GRU's, the
        # transformer's), as finetune's
        cfgs["finetune"] = C.head_preset(head_name, "default", cfgs["finetune"])[1]
    head_tag = head_name if preset == "default" else f"{head_name}@{preset}"
    d = root / "runs" / f"finetune-{sources_tag(sources)}-{m.name}-{head_tag}{tag}{window_tag(window)}-s{seed}"
    if _done(d) and (d / "best.pt").is_file():
        return d
    resume = (d / "last.pt").is_file()  # interrupted after a checkpoint: continued (the weights of a run never cut)
    if d.exists() and not resume:
        import shutil

        shutil.rmtree(d)  # cut before its first checkpoint: started again
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
                                    sam=cfgs["finetune"].sam if m.sam is None else m.sam,
                                    style_mix=cfgs["finetune"].style_mix if m.style_mix is None else m.style_mix,
                                    label_smoothing=cfgs["finetune"].label_smoothing if m.smoothing is None else m.smoothing,
                                    class_weight=m.class_weight or cfgs["finetune"].class_weight,
                                    lr=cfgs["finetune"].lr * (m.lr_scale or 1.0),
                                    batch_size=m.batch_size or cfgs["finetune"].batch_size)
    if m.oracle:  # trained to convergence, selected on the target's own validation subjects (see Method)
        fcfg = fcfg.replace(patience=fcfg.epochs, ties="last", select="best")
    classes = finetuning.source_classes(mc.label_space, sources, window, None)
    enc_cfg = cfgs["encoder"]
    job = finetuning.FinetuneJob(sources, window, fcfg, cfgs["augment_finetune"], classes, mc.label_space,
                      None if encoder is None else str(encoder), head_cfg,
                      pipeline=InputPipeline.of_encoder(enc_cfg), exclude_subjects=exclude,
                      random_encoder=m.random_encoder, encoder=enc_cfg if m.random_encoder else None,
                      init_run=None if init is None else str(init))
    return finetuning.run(job, out=d, log=lambda *_: None, progress=False, device=mc.device, resume=resume)


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
                if m.oracle:  # every target has its ceiling, a target-only one (hhar) too
                    for t in all_targets:
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
    check_datasets(mc)
    rows = read_rows(root / "rows.jsonl", mc.preset)  # a damaged row or timing line is refused now, not after training
    read_timing(root / "timing.jsonl")
    if report_only and not rows:  # before the folder is made: no empty report
        raise ConfigError(f"--report-only: no rows in {root / 'rows.jsonl'}, nothing to report; "
                          "run the matrix without --report-only first (or check --name)")
    if report_only and not any(r["method"] in mc.methods and r["head"] in mc.heads and r["seed"] < mc.seeds for r in rows):
        raise ConfigError(f"--report-only: none of the {len(rows)} rows in {root / 'rows.jsonl'} is of methods "
                          f"{', '.join(mc.methods)}, heads {', '.join(mc.heads)}, seeds 0 to {mc.seeds - 1}; "
                          "nothing to report (check --methods, --heads and --name)")
    if not report_only and not plan(replace(mc, shard=(0, 1))):
        raise ConfigError(f"nothing to run: methods {', '.join(mc.methods)} make no cell of datasets "
                          f"{', '.join(mc.datasets + mc.targets_only)} (a pooled-sources row such as multi needs two "
                          "sources besides each target); add datasets (-d) or targets (--targets-only)")
    check_schedule(mc, root, report_only)
    root.mkdir(parents=True, exist_ok=True)
    if not report_only:
        from crosshar.atomic import atomic_write_json

        atomic_write_json(root / SCHEDULE, schedule(mc))
        if jobs > 1:
            _spawn_workers(mc, root, jobs, threads, log)
        else:
            work(mc, root, log)
    _plot(mc, root, log)  # first: the report names the plot only when it was written
    write_report(mc, read_rows(root / "rows.jsonl", mc.preset), root)
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
    try:
        work(mc, root, lambda msg: print(f"[{worker + 1}/{jobs}] {msg}", flush=True), label=(worker, jobs))
    except KeyboardInterrupt:  # Ctrl-C reaches the workers too: `work` wrote its time; exit rather than go back to
        os._exit(130)  # the pool's queue for more (the pool would return the interrupt and keep the process waiting)


def _spawn_workers(mc: MatrixConfig, root: Path, jobs: int, threads: int | None, log: Callable[[str], None]) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    log(f"{jobs} workers, {threads} thread(s) each")
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_worker, mc, root, i, jobs, threads, os.getpid()) for i in range(jobs)]
        try:
            for f in futures:
                f.result()
        except KeyboardInterrupt:  # the pool's shutdown would wait for workers that never end: stop them first
            stop_workers(list((pool._processes or {}).values()))
            raise


def stop_workers(procs: list, grace_s: float = 5.0) -> None:
    """After Ctrl-C: give the workers (which got it too, and exit once their time is written) `grace_s` seconds, then
    terminate those still running (the interrupt reached this process alone), like `exit_with_parent` would."""
    deadline = time.time() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.time()))
    for p in procs:
        if p.is_alive():
            p.terminate()
            p.join(grace_s)


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

    cells = plan(mc)
    wanted = {("+".join(c.sources), t, c.method, c.head, c.seed) for c in cells for t in c.targets}

    def progress() -> str:  # every process's rows count: the folder's progress, not this worker's
        return f"row {len(wanted & read_keys(rows_path))} of {len(wanted)}, {(time.time() - t_start) / 60:.1f} min in"

    invocation = f"{os.getpid()}-{time.time_ns()}"  # its timing line is appended anew as each later group starts

    def timing(done: bool) -> None:
        append_timing(root, label or mc.shard, {"wall_s": time.time() - t_start, "cpu_s": time.process_time() - cpu_start},
                      invocation, done)

    ran = False  # a group finished since the last timing line: its time is written when the next group starts
    try:
        for group in groups(mc, cells):
            have = read_keys(rows_path)
            if not any(missing(c, have) for c in group):
                continue
            held = claim(root, group_key(mc, group[0]))
            if held is None:
                continue  # another process is on it
            if ran:  # so far: a process killed in this group still counts the groups it finished
                timing(False)  # (not after the last group: the final line would repeat it)
            try:
                have = read_keys(rows_path)  # the group may have been finished between the check and the claim
                for cell in group:
                    _run_cell(mc, root, cell, missing(cell, have), ws_of, log, progress)
            finally:
                held.unlink(missing_ok=True)
            ran = True
    except BaseException:
        timing(False)  # interrupted (Ctrl-C, an error): its time up to here counts
        raise
    timing(True)


def read_keys(rows_path: Path) -> set[tuple]:
    """(source, target, method, head, seed) of every row already in rows.jsonl."""
    return {(r["source"], r["target"], r["method"], r["head"], r["seed"]) for r in read_rows(rows_path)}


def missing(cell: Cell, have: set[tuple]) -> list[str]:
    """The targets of `cell` that have no row in `have` (read_keys)."""
    return [t for t in cell.targets if ("+".join(cell.sources), t, cell.method, cell.head, cell.seed) not in have]


def _run_cell(mc: MatrixConfig, root: Path, cell: Cell, todo: list[str], ws_of: Callable, log: Callable[[str], None],
              progress: Callable[[], str] | None = None) -> None:
    """Train (or resume) one cell's model and score it on the targets `todo`, a row each in rows.jsonl; each row's
    log line ends with `progress()` (`work`: how many of the matrix's rows the folder holds)."""
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
        with _reading(split_run):
            exclude = tuple(map(str, _run_info(split_run)["split"]["val_subjects"]))
    ft = finetune_run(root, cell.sources, m, cell.head, cell.seed, mc, cell.window, enc, exclude,
                      tag=f"-pre{'+'.join(pre_sources)}" if m.wide else "")
    model, meta = clf.load(ft)
    if scored.cadence_views is not None:
        meta = clf.with_cadence_views(model, meta, scored.cadence_views)
    model.to(mc.device)
    tta = None  # a *_tta row: each window scored with views of the run's own finetuning augmentation
    if scored.tta:
        aug = run_augment(meta, ft)
        tta = lambda X: predict_tta(model, X, aug, scored.tta, seed=cell.seed, rate_hz=cell.window.rate_hz,  # noqa: E731
                                    kind=scored.tta_views)
    with _reading(ft):
        source_val_f1 = float(_run_info(ft)["best"]["macro_f1"])
    for target in todo:
        tws = ws_of(target, cell.window)
        if m.oracle:
            tws = tws.by_subjects(exclude)
        else:
            for s in dict.fromkeys(cell.sources + pre_sources):  # labelled and unlabelled training data
                guard.check_names([s], target)
                guard.check_windows(ws_of(s, cell.window), tws)
        rep, *_ = score(model, meta, tws, logits_fn=tta, name=ft)
        row = {"source": src_tag, "target": target, "method": cell.method, "head": cell.head, "preset": mc.preset,
               "seed": cell.seed, "window": window_tag(cell.window),  # the cell's: the report counts its CPU once
               "accuracy": rep["accuracy"], "macro_f1": rep["macro_f1"], "weighted_f1": rep["weighted_f1"],
               "classes": rep["classes"], "per_class_f1": {c: v["f1"] for c, v in rep["per_class"].items()},
               "confusion": rep["confusion"],
               "n": rep["n"], "source_val_f1": source_val_f1,
               # since the cell's start: its pretraining (when it ran it), finetuning and the targets scored so far
               "seconds": round(time.time() - t0, 1), "cpu_seconds": round(time.process_time() - c0, 1)}
        append_line(rows_path, json.dumps(row))
        log(f"{src_tag:>12} -> {target:<6} {cell.method:<17} {cell.head:<12} seed {cell.seed}: "
            f"macro-F1 {rep['macro_f1']:.3f} acc {rep['accuracy']:.3f}" + (f" ({progress()})" if progress else ""))


def _plot(mc: MatrixConfig, root: Path, log: Callable[[str], None]) -> None:
    try:
        embedding_plot(mc, root, {d: prepare(d, None, C.load("window")) for d in mc.datasets})
    except Exception as e:  # noqa: BLE001  (the plot is a nicety; the report is written)
        log(f"embedding plot skipped: {e}")



def append_timing(root: Path, label: tuple[int, int], timing: dict, invocation: str | None = None,
                  done: bool = True) -> None:
    """A line of timing.jsonl for an invocation (shard, or worker of --jobs): its wall and process CPU seconds so far,
    and whether it ended (`done`). An invocation appends one as each group after its first starts, when it stops and
    at its end; the report reads the last line of each (`invocation`), so one killed midway still counts the time of
    the groups it finished, and one that ends writes its final time once."""
    append_line(root / "timing.jsonl", json.dumps({"shard": list(label), **{k: round(v, 1) for k, v in timing.items()},
                                                   "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
                                                   **({"invocation": invocation, "done": done} if invocation else {})}))


def append_line(path: Path, line: str) -> None:
    """Append `line` to a .jsonl file as a line of its own, in one write: after a file whose last line has no newline
    (cut by hand, or saved so by an editor) too, which it would otherwise be glued to (both lines then unreadable)."""
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        glued = f.tell() > 0 and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n"
        f.write(("\n" if glued else "").encode() + line.encode() + b"\n")


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
    d = root / "runs" / f"pretrain-{sources_tag([src])}-crosshar-s0"
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
