"""Cross-dataset evaluation: a source model scored on every window of an unseen target dataset."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from crosshar import config as C
from crosshar import paths
from crosshar.config import WindowConfig
from crosshar.atomic import atomic_write_bytes, atomic_write_json
from crosshar.data.store import check_specs, is_folder_spec, kept_dropped, prepare, resolve, split_position
from crosshar.device import resolve_device
from crosshar.errors import CrossharError, ResumeError
from crosshar import guard
from crosshar.data.sources import load_sources, target_needs
from crosshar.inference import TTA_VIEWS, predict_tta, run_augment, score, score_groups
from crosshar.train import finetune as finetuning
from crosshar.train import pretrain as pretraining
from crosshar.metrics import classification_report
from crosshar.models import classifier as clf
from crosshar.train.runs import find_runs, git_commit, lock_folder

_LOCKED: dict[str, int] = {}  # results folder (resolved) -> the descriptor holding this process's lock on it


def finetuned_runs(source: str) -> list[tuple[Path, dict]]:
    """(folder, run.json) of finished finetuning runs of a source that have a best.pt, newest first."""
    return [(p, d) for p, d in find_runs("finetune", source) if (p / "best.pt").is_file()]


def confusion_png(report: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.array(report["confusion"], dtype=float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    k = len(report["classes"])
    fig, ax = plt.subplots(figsize=(1.4 * k + 2, 1.2 * k + 1.5))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{int(cm[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(k), report["classes"], rotation=30, ha="right")
    ax.set_yticks(range(k), report["classes"])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title}\nacc {report['accuracy']:.3f}  macro-F1 {report['macro_f1']:.3f}", fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())  # an interrupted cross leaves no half-written picture


def estimate_seconds(job, n_windows: int, finetune_epochs: int, label_rate: float) -> tuple[float, float, str]:
    """(pretraining s, finetuning s, how measured) for `job` on `n_windows` source windows.

    Throughput comes from the newest earlier pretraining run on this machine with the same encoder
    and batch size, else from timing two training steps of each stage now (a few seconds).
    """
    cfg = job.pretrain
    for _, d in find_runs("pretrain", None, finished=None):
        hist = d.get("history") or []
        if hist and d["configs"].get("encoder") == job.encoder.to_dict() and \
                d["configs"]["pretrain"].get("batch_size") == cfg.batch_size:
            wps = float(np.median([h["windows_per_s"] for h in hist]))
            how = f"{wps:,.0f} windows/s measured in an earlier run"
            break
    else:
        from crosshar.augment import Augmenter

        model, aug = pretraining.Model(job), Augmenter(job.augment, job.window.n_channels, job.window.rate_hz)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        g = torch.Generator().manual_seed(0)
        x = torch.randn(cfg.batch_size, job.window.window, job.window.n_channels) + 3.0
        times = []
        for stage in (1, 1, 2, 2):  # the first step of each stage warms up
            t0 = time.perf_counter()
            out = model(aug(x, g), None, 1, g) if stage == 1 else model(*aug.two_views(x, g), 2, g)
            opt.zero_grad()
            out["loss"].backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        per_step = (times[1] * cfg.stage1_epochs + times[3] * (cfg.epochs - cfg.stage1_epochs)) / max(cfg.epochs, 1)
        wps = cfg.batch_size / max(per_step, 1e-6)
        how = f"{wps:,.0f} windows/s timed just now"
    pre = cfg.epochs * n_windows * (1 - cfg.val_fraction) / wps
    fine = finetune_epochs * n_windows * label_rate / (wps * 1.5)  # a head step costs about 2/3 of a pretraining one
    return pre, fine, how


def _minutes(s: float) -> str:
    return f"{s / 60:.0f} min" if s >= 90 else f"{s:.0f} s"


def train_default(source: list[str], window: WindowConfig, head: str, label_space: str, label_rate: float,
                  data_dir, log: Callable[[str], None], pretrain_epochs: int | None = None,
                  finetune_epochs: int | None = None, device: str | torch.device = "cpu") -> Path:
    """Pretrain (unless a matching pretraining run exists) and finetune with the default configs.

    An interrupted pretraining (a run with last.pt but not finished, same configs) is resumed, and so is an
    interrupted finetuning of the same job (finetune.resumable).
    """
    tag = "+".join(source)
    enc = None
    for p, d in find_runs("pretrain", tag):
        if d["configs"]["window"] == window.to_dict():
            enc = str(p)
            break
    head_cfg, fcfg = C.head_preset(head, "default", C.load("finetune", head=head, label_rate=label_rate))
    fcfg = fcfg.replace(epochs=finetune_epochs)  # the head's own schedule (configs/heads/<head>.toml [finetune]), then the caller's
    if enc is None:
        pcfg = pretraining.split_epochs(C.load("pretrain"), pretrain_epochs)
        job = pretraining.PretrainJob(tuple(source), window, C.load("encoder"), C.load("augment"), pcfg,
                          None if data_dir is None else str(data_dir))
        want = {"window": window.to_dict(), "encoder": job.encoder.to_dict(), "augment": job.augment.to_dict(),
                "pretrain": job.pretrain.to_dict()}
        resume = next((p for p, d in find_runs("pretrain", tag, finished=False)
                       if (p / "last.pt").is_file() and d.get("configs") == want), None)
        n = len(load_sources(list(source), data_dir, window))
        pre_s, fine_s, how = estimate_seconds(job, n, fcfg.epochs, label_rate)
        done = 0
        if resume is not None:
            done = len(json.loads((resume / "run.json").read_text()).get("history") or [])
            done = max(done, _epochs_done(resume))
        left = pre_s * (1 - done / max(job.pretrain.epochs, 1))
        log(f"no finished pretraining run of {tag} with windows {window.to_dict()}: "
            + (f"resuming the interrupted one in {resume} at epoch {done + 1}/{job.pretrain.epochs}"
               if resume is not None else f"pretraining an encoder with the default configs "
               f"({job.pretrain.epochs} epochs on the training subjects' share of {n:,} windows, "
               f"{job.pretrain.val_fraction:.0%} of the subjects held out for validation)")
            + f", then finetuning head {head} ({fcfg.epochs} epochs at most, {label_rate:.0%} of the labels); "
            f"about {_minutes(left + fine_s)} in all ({how}). Ctrl-C is safe: rerunning the same "
            f"command resumes the pretraining from its last finished epoch and the finetuning from its last checkpoint")
        enc = str(pretraining.run(job, out=resume, resume=resume is not None, log=log, device=device))
    else:
        log(f"using pretraining run {enc}")
    # the target's label set plays no part in training: predictions are mapped to it at evaluation
    classes = finetuning.source_classes(label_space, tuple(source), window, data_dir)
    fjob = finetuning.FinetuneJob(tuple(source), window, fcfg, C.load("augment_finetune"), classes, label_space, enc,
                       head_cfg, data_dir=None if data_dir is None else str(data_dir))
    cut = finetuning.resumable(fjob)  # an interrupted finetuning of this very job: continued
    if cut is not None:
        log(f"resuming the interrupted finetuning in {cut}")
        try:
            return finetuning.run(fjob, out=cut, log=log, progress=True, device=device, resume=True)
        except ResumeError as e:  # its data differ (the dataset changed since): a new run, never a stuck cross
            log(f"{e}; finetuning anew")
    return finetuning.run(fjob, log=log, progress=True, device=device)


def _epochs_done(run_dir: Path) -> int:
    """Finished epochs of an interrupted pretraining run (from last.pt)."""
    from crosshar import checkpoint

    try:
        return int(checkpoint.load(run_dir / "last.pt")["epoch"]) + 1
    except Exception:  # an unreadable last.pt: the pretraining run reports it when it resumes
        return 0


def results_dir(source: list[str], target: str, head: str, out: Path | None, name: str | None) -> Path:
    """--out, else results/cross/<--name>, else results/cross/<source>_to_<target>_<head> (under $CROSSHAR_HOME)."""
    if out is not None:
        return Path(out)
    return paths.home() / "results" / "cross" / (name or f"{'+'.join(source)}_to_{target}_{head}")


def refuse_overwrite(out: Path, force: bool) -> None:
    if (out / "results.json").exists() and not force:
        raise CrossharError(f"{out / 'results.json'} holds an earlier result; pass --force to replace it, "
                            "or --name NAME (or --out DIR) to keep both")


def hold_results_dir(out: Path, force: bool) -> list[Path]:
    """Create the results folder `out` and lock it for this process (lock_results_dir), then check it again; returns
    the folders this call created, in the order made, `out` last (empty when `out` was there), for
    release_results_dir. The path is made one component at a time, as the system reads it: a folder reached on the
    way and left by `..` (`a` of a/../b/res) is one this call made too.

    Two `crosshar cross` writing one folder at once both scored, both printed their own metrics, and the folder held
    one's confusion.png beside the other's results.json. The folder is named by the command (source, target and
    head, or --name / --out), and a result is never filed under a name nobody asked for, so the second is refused
    rather than sent to a folder of its own. Locked before the target is scored, and without --run before any
    training (cross), so the second is refused before it trains or scores. The second check catches a result
    another command finished there since the first one (made before any training)."""
    made: list[Path] = []
    try:
        p = Path(out.anchor) if out.anchor else Path()
        for part in out.parts[1 if out.anchor else 0:]:
            p = p / part
            if part == "..":  # above a folder reached (found or made): there
                continue
            try:
                p.mkdir()
                made.append(p)
            except OSError:  # there before (or made by a command beside this one): never removed by this one
                if not p.is_dir():
                    raise
    except OSError as e:  # a file where a folder goes, a link to nowhere, no permission
        release_results_dir(made)
        raise CrossharError(f"results folder {out}: cannot be made ({e.strerror or e}: "
                            f"{e.filename or out}); pass --out a folder path") from None
    lock_results_dir(out)
    try:
        refuse_overwrite(out, force)
    except BaseException:
        unlock_results_dir(out)
        raise
    return made


def release_results_dir(made: list[Path]) -> None:
    """Remove the folders hold_results_dir made (`made`, removed last made first) while they are still empty: a cross
    that fails after taking its folder (the target cannot be read, no class in common, Ctrl-C) leaves no empty
    results folder that was not there before. A folder that was there before, or that holds a file, stays, and so do
    its parents. The lock goes with unlock_results_dir."""
    for p in reversed(made):
        try:
            p.rmdir()
        except OSError:  # not empty (or gone already): kept
            continue


def lock_results_dir(out: Path) -> None:
    """Lock the results folder `out` for this process (train.runs.lock_folder) until unlock_results_dir; another
    process's lock on it is a CrossharError. Not train.runs.hold: a process holds one run folder there, and the
    training a cross starts before scoring holds its run folders, which released a results folder held that way."""
    key = str(out.resolve())
    if key in _LOCKED:
        return
    fd = lock_folder(out, f"results folder {out} is being written by another running crosshar cross; wait for it "
                          "to finish, or pass --name NAME (or --out DIR) to write elsewhere")
    if fd is not None:
        _LOCKED[key] = fd


def unlock_results_dir(out: Path) -> None:
    """Drop this process's lock on the results folder `out` (lock_results_dir); a no-op when it holds none."""
    fd = _LOCKED.pop(str(out.resolve()), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases its lock


def matching_run(source: list[str], window: WindowConfig, head: str | None, log: Callable[[str], None]) -> Path | None:
    """The latest finished finetuning run of the sources with this window (and head, when given)."""
    for c, d in finetuned_runs("+".join(source)):  # run.json holds window and head: no weights loaded
        if d["configs"]["window"] == window.to_dict() and (head is None or d["head"] == head):
            log(f"using the latest matching finetuned run of {'+'.join(source)}: {c}")
            return c
    return None


def cross(source: list[str], target: str, head: str | None = None, run: str | Path | list | None = None,
          data_dir=None, out: Path | None = None, log: Callable[[str], None] = print,
          force: bool = False, name: str | None = None, pretrain_epochs: int | None = None,
          finetune_epochs: int | None = None, device: str | torch.device = "cpu", on_bad: str = "error",
          tta: int = 0, tta_views: str = "all", cadence_views: int | None = None) -> dict:
    """Evaluate a source model on every window of `target`; write results JSON and confusion PNG.

    `run` is a finetuned run (folder or best.pt), or several: their class probabilities are averaged
    (classifier.load_runs: same source, window and classes), e.g. the head on the raw window and crosshar,
    which together scored highest of everything measured (results/pair_ensemble.md).

    `target` is a registered dataset (read from `data_dir`) or a folder holding crosshar.toml
    (read in place, named after its descriptor's `name` in results and reports); `on_bad` is how bad
    rows of either are handled ("error" or "skip", each skipped row reported). Training (when no
    run matches) and prediction run on `device` (crosshar.device.resolve_device). `tta` > 0 scores each
    target window as its class probabilities averaged over the window as recorded and `tta` draws of the
    (first) run's finetuning augmentation (crosshar.inference.predict_tta, seed 0; `tta_views` "motion": without
    the device's orientation): no target label or statistic is used. `cadence_views` K gives the model (every
    model averaged) K fixed cadence views (classifier.with_cadence_views: the deterministic views `crosshar export
    --cadence-views` puts in the graph); None keeps the model's own.
    """
    device = resolve_device(device)
    if tta_views not in TTA_VIEWS:
        raise CrossharError(f"--tta-views must be one of {', '.join(TTA_VIEWS)}, got {tta_views!r}")
    check_specs([*source, target], data_dir)  # before anything is announced or trained
    if any(is_folder_spec(split_position(s)[0]) for s in source):
        raise CrossharError("a folder of your own data is a target (-td); sources are registered datasets")
    tname = resolve(target, data_dir).name
    guard.check_names(source, tname)
    ccfg = C.load("cross", head=head)
    runs = [] if run is None else [run] if isinstance(run, (str, Path)) else list(run)
    if not runs:
        refuse_overwrite(results_dir(source, tname, head or ccfg.head, out, name), force)
    need = target_needs(target, data_dir)
    if need is not None:
        log(f"{tname} is declared as {need.channels} windows of {need.window} samples at {need.rate_hz:g} Hz, "
            f"normalize={need.normalize}: the source model must use the same channels, window and normalisation")
    made: list[Path] = []  # the folders hold_results_dir made for the results, removed if this call fails
    held: list[Path] = []  # the results folder this call locked (lock_results_dir), unlocked on every exit
    try:
        if not runs:
            found = matching_run(source, need or C.load("window"), head, log)
            if found is None:  # the folder is taken first: a second cross into it is refused before it trains
                first = results_dir(source, tname, ccfg.head, out, name)  # where the model to train is filed
                made = hold_results_dir(first, force)
                held.append(first.resolve())
                log(f"no finetuned run of {'+'.join(source)} matches; training one with the default configs")
                found = train_default(source, need or C.load("window"), ccfg.head, ccfg.label_space, ccfg.label_rate,
                                      data_dir, log, pretrain_epochs, finetune_epochs, device)
            runs = [found]
        runs = [Path(r).resolve() for r in runs]  # results.json names them: absolute, to be read from anywhere
        model, meta, metas = clf.load_runs(runs)
        if head is not None and any(m["head"] != head for m in metas):
            raise CrossharError(f"--head {head} but --run holds a {', '.join(sorted({m['head'] for m in metas}))} "
                                f"model: omit --head to score the run as it is, or --run to train a {head} model")
        if cadence_views is not None:
            meta = clf.with_cadence_views(model, meta, cadence_views)
        model.to(device)
        if int(meta.get("cadence_views", 1)) > 1:
            log(f"cadence views: each window replayed at {meta['cadence_views']} speeds over "
                f"{1 - meta['cadence_span']:.2f}-{1 + meta['cadence_span']:.2f}x, class probabilities averaged")
        for mm in metas:
            guard.check_run(mm, tname)
        run = runs[0]
        out = results_dir(list(meta["source"]), tname, meta["head"], out, name)
        mwin = WindowConfig.from_dict(meta["window"])
        if need is not None and mwin != need:
            raise CrossharError(f"the model {run} uses windows {mwin.to_dict()}, but {tname} needs {need.to_dict()}; "
                                f"omit --run to train a matching model")
        if out.resolve() not in held:  # with --run, or a matching run found: taken now, before the target is read
            release_results_dir(made)  # (a trained model filed elsewhere than announced: never; nothing kept then)
            for h in held:
                unlock_results_dir(h)
            made, held = [], []
            made = hold_results_dir(out, force)
            held.append(out.resolve())
        tws = prepare(target, data_dir, need if need is not None else mwin, on_bad=on_bad)
        log(f"{tname}: {kept_dropped(tws.manifest)}")
        for w in tws.manifest.get("warnings", []):
            log(f"warning: {w}")
        sws = load_sources(list(meta["source"]), data_dir, mwin, on_bad)
        guard.check_windows(sws, tws)
        logits_fn = None
        if tta:
            aug = run_augment(meta, run)
            logits_fn = lambda X: predict_tta(model, X, aug, tta, seed=0, rate_hz=mwin.rate_hz, kind=tta_views)  # noqa: E731
            what = {"all": "", "motion": " without the device orientation"}.get(tta_views, f" ({tta_views} alone)")
            log(f"test-time views: each window as recorded and {tta} draws of the finetuning augmentation{what}, "
                "averaged")
        t0 = time.time()
        report, y, pred, space = score(model, meta, tws, logits_fn=logits_fn, name=", ".join(map(str, runs)))
        seconds = time.time() - t0
        groups = score_groups(tws, space, y, pred)
        confusion_png(report, out / "confusion.png", f"{'+'.join(meta['source'])} -> {tname} ({meta['head']})")
        results = {
            "source": meta["source"], "target": tname, "head": meta["head"], "run": str(run),
            **({"ensemble_runs": meta["ensemble_runs"]} if "ensemble_runs" in meta else {}),
            "target_folder": str(Path(tws.manifest["root"]).resolve())  # also a folder typed as its own name: ./mylab
            if (tname != target or is_folder_spec(split_position(target)[0])) and tws.manifest.get("root") else None,
            "metrics": report, "eval_classes": list(space.classes), "model_classes": meta["classes"],
            "y_true": y.tolist(), "y_pred": pred.tolist(), "seconds": round(seconds, 2), "tta": tta,
            "tta_views": tta_views if tta else None,
            "cadence_views": int(meta.get("cadence_views", 1)), **groups,
            "git_commit": git_commit(), "model_meta": {k: v for k, v in meta.items() if k != "history"},
            "target_manifest": tws.manifest, "torch": torch.__version__,
        }
        atomic_write_json(out / "results.json", results)
    except BaseException:  # Ctrl-C too: a folder this command made and left empty goes (a file in it stays)
        release_results_dir(made)
        raise
    finally:
        for h in held:
            unlock_results_dir(h)
    results["out"] = str(out)
    return results


def regenerate(results_json: str | Path) -> dict:
    """Recompute the metrics of a results JSON from its stored predictions."""
    d = json.loads(Path(results_json).read_text())
    return classification_report(np.array(d["y_true"]), np.array(d["y_pred"]), d["eval_classes"])
