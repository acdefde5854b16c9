"""Cross-dataset evaluation: a source model scored on every window of an unseen target dataset."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from crosshar import config as C
from crosshar import paths
from crosshar.config import WindowConfig
from crosshar.data.io import DataFolder
from crosshar.data.labels import LabelSpace
from crosshar.data.sources import load_sources
from crosshar.data.store import atomic_write_json, get_dataset, prepare
from crosshar.device import resolve_device
from crosshar.errors import CrossharError
from crosshar.evaluate import guard
from crosshar.finetune.run import predict
from crosshar.metrics import classification_report
from crosshar.models import classifier as clf
from crosshar.training import find_runs, git_commit


def target_window(target: str, data_dir) -> WindowConfig | None:
    """The target's fixed window profile (pre-windowed data such as hhar_sa_adatime), or None."""
    ds = get_dataset(target)
    return ds.profile(DataFolder(ds.locate(paths.data_dir(data_dir))))


def target_has_gyro(target: str, data_dir) -> bool:
    ds = get_dataset(target)
    return ds.has_gyro(DataFolder(ds.locate(paths.data_dir(data_dir))))


def finetuned_runs(source: str) -> list[tuple[Path, dict]]:
    """(folder, run.json) of finished finetuning runs of a source that have a best.pt, newest first."""
    return [(p, d) for p, d in find_runs("finetune", source) if (p / "best.pt").is_file()]


def score(model: clf.HARClassifier | None, meta: dict, target_ws,
          logits_fn: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[dict, np.ndarray, np.ndarray, LabelSpace]:
    """Metrics of the model on the target windows in the intersected label space.

    Predictions are made in the model's classes and mapped up the hierarchy to the evaluation
    classes (e.g. upstairs and downstairs predictions both count as WISDM's "stairs"); model
    classes with no evaluation counterpart are masked out of the argmax. `logits_fn` (windows ->
    (N, K) scores) replaces the PyTorch model, e.g. an onnxruntime session.
    """
    train_space = LabelSpace(tuple(meta["classes"]), meta.get("label_space", ""))
    eval_space = train_space.intersect(set(target_ws.labels.tolist()))
    y = eval_space.encode(target_ws.labels)
    keep = np.flatnonzero(y >= 0)
    if len(keep) == 0:
        raise CrossharError(f"no target window of {target_ws.dataset} falls in the classes {eval_space.classes}")
    proj = train_space.project_to(eval_space)
    logits = (logits_fn or (lambda X: predict(model, X)))(target_ws.X[keep]).astype(np.float64)
    logits[:, proj < 0] = -np.inf
    pred = proj[logits.argmax(1)]
    return classification_report(y[keep], pred, list(eval_space.classes)), y[keep], pred, eval_space


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def train_default(source: list[str], window: WindowConfig, head: str, label_space: str, label_rate: float,
                  data_dir, log: Callable[[str], None], device: str | torch.device = "cpu") -> Path:
    """Pretrain (unless a matching pretraining run exists) and finetune with the default configs."""
    from crosshar.finetune.run import FinetuneJob
    from crosshar.finetune.run import run as finetune
    from crosshar.finetune.setup import source_classes
    from crosshar.pretrain.run import PretrainJob
    from crosshar.pretrain.run import run as pretrain

    tag = "+".join(source)
    enc = None
    for p, d in find_runs("pretrain", tag):
        if d["configs"]["window"] == window.to_dict():
            enc = str(p)
            break
    if enc is None:
        log(f"no pretraining run of {tag} with windows {window.to_dict()}: pretraining one with the default configs")
        job = PretrainJob(tuple(source), window, C.load("encoder"), C.load("augment"), C.load("pretrain"),
                          None if data_dir is None else str(data_dir))
        enc = str(pretrain(job, log=log, device=device))
    else:
        log(f"using pretraining run {enc}")
    # the target's label set plays no part in training: predictions are mapped to it at evaluation
    classes = source_classes(label_space, tuple(source), window, data_dir)
    fcfg = C.load("finetune", head=head, label_rate=label_rate)
    fjob = FinetuneJob(tuple(source), window, fcfg, C.load("augment_finetune"), classes, label_space, enc,
                       C.head_config(fcfg.head), data_dir=None if data_dir is None else str(data_dir))
    return finetune(fjob, log=log, progress=False, device=device)


def cross(source: list[str], target: str, head: str | None = None, run: str | Path | None = None,
          data_dir=None, out: Path | None = None, log: Callable[[str], None] = print, force: bool = False,
          device: str | torch.device = "cpu") -> dict:
    """Evaluate a source model on every window of `target`; write results JSON and confusion PNG.

    An existing results folder is not overwritten unless `force` (CrossharError naming it).
    Training (when no run matches) and prediction run on `device` (crosshar.device.resolve_device).
    """
    device = resolve_device(device)
    guard.check_names(source, target)
    ccfg = C.load("cross", head=head)
    need = target_window(target, data_dir)
    if need is None and not target_has_gyro(target, data_dir):
        need = C.load("window", channels="acc")
    if need is not None:
        log(f"{target} is declared as {need.channels} windows of {need.window} samples at {need.rate_hz:g} Hz, "
            f"normalize={need.normalize}: the source model must use the same channels, window and normalisation")
    if run is None:
        want = need or C.load("window")
        for c, d in finetuned_runs("+".join(source)):  # run.json holds window and head: no weights loaded
            if d["configs"]["window"] == want.to_dict() and (head is None or d["head"] == head):
                run = c
                log(f"using the latest matching finetuned run of {'+'.join(source)}: {run}")
                break
        if run is None:
            log(f"no finetuned run of {'+'.join(source)} matches; training one with the default configs")
            run = train_default(source, want, ccfg.head, ccfg.label_space, ccfg.label_rate, data_dir, log, device)
    model, meta = clf.load(run)
    model.to(device)
    guard.check_run(meta, target)
    name = f"{'+'.join(meta['source'])}_to_{target}_{meta['head']}"
    out = Path(out) if out is not None else paths.home() / "results" / "cross" / name
    if (out / "results.json").is_file() and not force:
        raise CrossharError(f"{out / 'results.json'} exists (an earlier evaluation); pass --force to overwrite it "
                            f"or --out DIR to write elsewhere")
    mwin = WindowConfig.from_dict(meta["window"])
    if need is not None and mwin != need:
        raise CrossharError(f"the model {run} uses windows {mwin.to_dict()}, but {target} needs {need.to_dict()}; "
                            f"omit --run to train a matching model")
    tws = prepare(target, data_dir, need if need is not None else mwin)
    sws = load_sources(list(meta["source"]), data_dir, mwin)
    guard.check_windows(sws, tws)
    t0 = time.time()
    report, y, pred, space = score(model, meta, tws)
    seconds = time.time() - t0
    out.mkdir(parents=True, exist_ok=True)
    confusion_png(report, out / "confusion.png", f"{'+'.join(meta['source'])} -> {target} ({meta['head']})")
    results = {
        "source": meta["source"], "target": target, "head": meta["head"], "run": str(run),
        "metrics": report, "eval_classes": list(space.classes), "model_classes": meta["classes"],
        "y_true": y.tolist(), "y_pred": pred.tolist(), "seconds": round(seconds, 2),
        "git_commit": git_commit(), "model_meta": {k: v for k, v in meta.items() if k != "history"},
        "target_manifest": tws.manifest, "torch": torch.__version__,
    }
    atomic_write_json(out / "results.json", results)
    results["out"] = str(out)
    return results


def regenerate(results_json: str | Path) -> dict:
    """Recompute the metrics of a results JSON from its stored predictions."""
    d = json.loads(Path(results_json).read_text())
    return classification_report(np.array(d["y_true"]), np.array(d["y_pred"]), d["eval_classes"])
