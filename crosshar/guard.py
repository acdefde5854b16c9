"""The leakage guard: target data must never have touched training or model selection.

Besides names and subject ids, the guard compares the windows themselves, because a copy of a
source dataset can come back renamed as a custom dataset. Bit-identical windows are found by
hashing; near-copies (a raw sample dropped so every window is shifted by a fraction of a sample,
values rounded, a slightly different resampling) by nearest neighbours: each window is reduced to
block means of POOL samples (acc in g, gyro in rad/s), and a target window *matches* when its
nearest source window lies within NEAR_TOL of it, relative to the window's own motion (the RMS of
its block means about their mean). Still windows (motion below MIN_MOTION) are not compared: one
lying phone looks like any other. A target subject is a near-copy when at least FLAG_FRACTION of
its compared windows match.

Measured on the real datasets (20 Hz, 120-sample windows; `benchmarks` has no figure for it, the
numbers are from `tests/evaluate/test_guard.py::test_real_datasets_are_not_near_copies` and the
probe in the issue 10 report): a UCI copy with its first raw sample dropped has 98.8 % of its
moving windows within 0.35 (median 0.15); rounded to 5 decimals, 100 % (distance 0); between UCI,
MotionSense and WISDM at most 0.1 % of windows fall within 0.35 (the closest pair's 1st
percentile is 0.42).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crosshar.data.windows import WindowSet
from crosshar.errors import CrossharError, LeakageError
from crosshar.limits import GRAVITY

POOL = 8  # samples per block mean: a shift by a fraction of a sample barely moves a block mean
NEAR_TOL = 0.35  # nearest-neighbour distance / the window's own motion below which it matches
MIN_MOTION = 0.02  # RMS of the block means about their mean (g, rad/s): below it a window is still
FLAG_FRACTION = 0.5  # a target subject with this share of matching windows is a near-copy
PER_SUBJECT = 40  # target windows compared per subject (a seeded sample: the guard stays fast)


def check_names(source: list[str], target: str) -> None:
    """The target is none of the sources, also as another body position of one ("pamap2@wrist" from
    "pamap2@chest" is the same people at the same moments: not an unseen dataset)."""
    if target in source or _dataset(target) in {_dataset(s) for s in source}:
        same = "" if target in source else " (another body position of it: the same people at the same moments)"
        raise LeakageError(f"target dataset {target!r} is also a source{same} ({', '.join(source)}); "
                           f"cross-dataset evaluation needs a dataset that never touched training")


def _dataset(name: str) -> str:
    """The dataset a name reads, without a body-position selector ("shoaib@wrist" -> "shoaib"); a folder of your
    own data by its descriptor's name, however its path is typed ("./lab@wrist" -> "mylog")."""
    from crosshar.data.store import is_folder_spec, resolve, split_position

    base = split_position(name)[0]
    return resolve(base).name if is_folder_spec(base) else str(base)


def check_run(meta: dict, target: str) -> None:
    """The finetuned model and the encoder it used were trained without the target dataset."""
    check_names(list(meta.get("source", [])), target)
    pre = meta.get("pretrain_run")
    if pre:
        info = Path(pre if Path(pre).is_dir() else Path(pre).parent) / "run.json"
        if info.is_file():
            try:
                datasets = json.loads(info.read_text(encoding="utf-8")).get("datasets", [])
                datasets = [str(d) for d in datasets]
            except (OSError, UnicodeDecodeError, ValueError, AttributeError, TypeError) as e:
                raise CrossharError(f"{info}: not a readable run.json ({type(e).__name__}: {str(e)[:120]}); the "
                                    "leakage check reads the datasets the encoder was pretrained on from it") from None
            if _dataset(target) in {_dataset(d) for d in datasets}:
                raise LeakageError(f"the encoder of this model was pretrained on {target!r} ({pre}): "
                                   f"target data entered pretraining")


def check_windows(source: WindowSet, target: WindowSet) -> None:
    """No shared subject ids and no window of identical content between source and target."""
    shared = sorted(set(source.subjects.tolist()) & set(target.subjects.tolist()))
    if shared:
        raise LeakageError(f"source and target share {len(shared)} subject(s), e.g. {shared[:3]}")
    if source.X.shape[1:] != target.X.shape[1:]:
        return
    hs = set(source.content_hashes().tolist())
    ht = target.content_hashes()
    dup = np.flatnonzero([h in hs for h in ht])
    if len(dup):
        raise LeakageError(f"{len(dup)} target window(s) of {target.dataset} are identical to source windows of "
                           f"{source.dataset} (e.g. target window {int(dup[0])}); the datasets overlap")
    copies = near_copies(source, target)
    if copies:
        c = copies[0]
        src = ", ".join(f"{s} ({n})" for s, n in list(c["source_subjects"].items())[:3])
        raise LeakageError(
            f"{len(copies)} target subject(s) of {target.dataset} are near-copies of {source.dataset} (shifted, "
            f"rounded or resampled), e.g. {c['subject']}: {c['matched']} of {c['compared']} moving windows lie within "
            f"{NEAR_TOL} (relative distance, median {c['median_distance']:.3f}) of windows of {src}; the datasets overlap")


def _blocks(X: np.ndarray) -> np.ndarray:
    """(N, T, C) windows -> (N, T // POOL, C) float32 block means, acc in g."""
    N, T, C = X.shape
    P = X[:, : T - T % POOL].reshape(N, T // POOL, POOL, C).mean(2, dtype=np.float64).astype(np.float32)
    P[..., :3] /= GRAVITY
    return P


def near_copies(source: WindowSet, target: WindowSet, seed: int = 0) -> list[dict]:
    """Target subjects whose moving windows almost all have a near-identical source window.

    Returns one dict per flagged subject, most matched first: subject, compared, matched,
    median_distance (relative, over its compared windows), source_subjects {id: windows matched}.
    """
    if len(source) == 0 or len(target) == 0 or target.X.shape[1] < POOL:
        return []
    from sklearn.neighbors import NearestNeighbors

    Pt = _blocks(target.X)
    motion = np.sqrt(((Pt - Pt.mean(1, keepdims=True)) ** 2).mean((1, 2)))
    rng = np.random.default_rng(seed)
    picked = []
    for s in np.unique(target.subjects):
        idx = np.flatnonzero((target.subjects == s) & (motion > MIN_MOTION))
        picked.append(np.sort(rng.choice(idx, PER_SUBJECT, replace=False)) if len(idx) > PER_SUBJECT else idx)
    idx = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    if len(idx) == 0:
        return []
    Ps = _blocks(source.X).reshape(len(source), -1)
    dist, nn = NearestNeighbors(n_neighbors=1, algorithm="brute").fit(Ps).kneighbors(Pt[idx].reshape(len(idx), -1))
    rel = dist[:, 0] / (motion[idx] * np.sqrt(Pt.shape[1] * Pt.shape[2]))
    out = []
    for s in np.unique(target.subjects[idx]):
        m = target.subjects[idx] == s
        hit = m & (rel < NEAR_TOL)
        if hit.sum() >= max(FLAG_FRACTION * m.sum(), 3):
            subj, n = np.unique(source.subjects[nn[hit, 0]], return_counts=True)
            order = np.argsort(-n)
            out.append({"subject": str(s), "compared": int(m.sum()), "matched": int(hit.sum()),
                        "median_distance": float(np.median(rel[m])),
                        "source_subjects": {str(subj[i]): int(n[i]) for i in order}})
    return sorted(out, key=lambda c: -c["matched"])
