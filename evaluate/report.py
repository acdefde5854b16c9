"""The report of `crosshar matrix` (report.md) from its rows.jsonl and timing.jsonl: per head, the pair x method
table, the averages, the leave-one-out table, the targets, the paired differences and the stairs, then the time
the rows took and the command that made them. Reads the rows the matrix (evaluate/matrix.py) appends."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from crosshar.atomic import atomic_write_bytes
from crosshar.errors import CrossharError
from crosshar.evaluate.methods import CEILING, FULL, METHODS, TTA_BASES
from crosshar.inference import TTA_VIEWS

if TYPE_CHECKING:
    from crosshar.evaluate.matrix import MatrixConfig


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


def read_rows(path: Path, preset: str | None = None) -> list[dict]:
    """rows.jsonl's rows; CrossharError naming the line of a row whose method this version does not know
    (a file written by another version of crosshar) or whose names or scores are damaged (ROW_FIELDS: a NaN score
    would be averaged into the report) or that repeats an earlier row's cell, rather than a traceback in the report;
    with `preset`, also one finetuned with another head preset (a row without one predates presets: the default)."""
    rows = _numbered_jsonl(path)
    for i, row in rows:
        if row.get("method") not in METHODS:
            raise CrossharError(f"{path}:{i}: unknown method {row.get('method')!r} (known: {', '.join(METHODS)}); "
                                f"was the file written by another version of crosshar?")
    for i, row in rows:
        for key, ok, what in ROW_FIELDS:  # a damaged row is named, never averaged into the report (nor a NaN)
            if not ok(row.get(key)) and (key in ROW_REQUIRED or row.get(key) is not None):
                raise CrossharError(f"{path}:{i}: {key} is {row.get(key)!r}, not {what}; remove or fix that row "
                                    "(a rerun of the matrix scores that cell again)")
    first: dict[tuple, int] = {}  # a cell twice would count as two seeds in its mean (or two values for one seed)
    for i, row in rows:
        key = tuple(row[k] for k in ("source", "target", "method", "head", "seed"))
        if key in first:
            raise CrossharError(f"{path}:{i}: the same cell as line {first[key]} ({key[0]} → {key[1]} {key[2]} {key[3]} "
                                f"seed {key[4]}); remove one of the two lines")
        first[key] = i
        if preset is not None and (its := row.get("preset", "default")) != preset:  # a mean would mix two recipes
            raise CrossharError(f"{path}:{i}: a row of --preset {its!r}, not {preset!r}; rows of another "
                                "preset go in a folder of their own (--name)")
    return [row for _, row in rows]


def _score(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0  # NaN fails both


ROW_FIELDS = [(k, lambda v: isinstance(v, str) and bool(v), "a name") for k in ("source", "target", "head")] + [
    ("seed", lambda v: isinstance(v, int) and not isinstance(v, bool), "a seed number"),
    ("macro_f1", _score, "a score in [0, 1]"), ("accuracy", _score, "a score in [0, 1]"),
    ("weighted_f1", _score, "a score in [0, 1]"),
    ("window", lambda v: isinstance(v, str), 'a window tag ("" for the default window, as matrix.window_tag writes it)')]
ROW_REQUIRED = ("source", "target", "head", "seed", "macro_f1")  # the others are checked where a row has them


def read_timing(path: Path) -> list[dict]:
    """timing.jsonl's lines, each checked for what the report reads (CrossharError naming a damaged line)."""
    lines = _numbered_jsonl(path)
    for i, t in lines:
        shard, finished = t.get("shard"), t.get("finished")
        ok = (isinstance(shard, list) and len(shard) == 2 and isinstance(finished, str)
              and all(isinstance(t.get(k), (int, float)) and not isinstance(t.get(k), bool) and math.isfinite(t[k])
                      and t[k] >= 0 for k in ("wall_s", "cpu_s")))
        if not ok:
            raise CrossharError(f"{path}:{i}: not a timing line (shard, wall_s, cpu_s, finished): {json.dumps(t)[:120]}; "
                                "remove or fix that line")
    last: dict[object, dict] = {}  # an invocation's lines are its time so far: the last one counts (older lines: each)
    for i, t in lines:
        last[t.get("invocation") or i] = t
    return list(last.values())



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
    stairs; then the time the rows took and the command that made them. Rows of a seed the command does not run
    (`--seeds 1` on a folder of 3) are left out: the report's means are the command's."""
    rows = [r for r in rows if r["seed"] < mc.seeds]
    methods = [m for m in mc.methods if not METHODS[m].oracle and not METHODS[m].multi]
    oracles = [m for m in mc.methods if METHODS[m].oracle]
    L = [f"# Cross-dataset matrix: {', '.join(mc.datasets)}"
         + (f" (+ {', '.join(mc.targets_only)} as target)" if mc.targets_only else ""), "",
         f"Heads {', '.join(mc.heads)}; label rate {mc.label_rate:.0%} of the source training windows; label space "
         f"{mc.label_space} (intersected per pair; stairs merged whenever wisdm is involved). Macro-F1 in %, "
         f"mean ± std over seeds (the number of seeds in brackets where it is not 3). Every target window is "
         f"scored; no target data touches training or model selection (the oracles excepted, by definition). "
         f"{'QUICK setting (short schedules). ' if mc.quick else ''}", "",
         "Methods (each changes one factor of `crosshar`; `evaluate/methods.py`): " + ", ".join(f"`{m}`" for m in mc.methods) + ".", ""]
    if oracles:
        L += ["Oracle cells marked * are the target's in-domain model re-read in the pair's classes (from its "
              "confusion matrix: e.g. upstairs and downstairs merged into stairs when the source is wisdm).", ""]
    for head in mc.heads:
        L += _head_section(mc, [r for r in rows if r["head"] == head], head, methods, oracles)
    L += _time_section(rows, read_timing(root / "timing.jsonl"))
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
        L += _multi_table(hr, pairs, multis, head, mc.datasets)
    return L + _targets(mc, hr, head, six, avg6, pairs) + _differences(hr, head, six, methods) + _stairs(hr, head)


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


def _multi_table(hr: list[dict], pairs: list, multis: list[str], head: str, datasets: tuple[str, ...] | None = None
                 ) -> list[str]:
    """Leave one dataset out: each multi row (`multis`) per target, beside the best single source of the
    same recipe (`single_source`: crosshar for multi, scratch for scratch_multi), and the MULTI_COMPARISONS
    (and each `X_tta` against `X`) paired by seed. With `datasets` (the matrix's), each target's rows are those pooling
    every other dataset of it: rows a folder holds from a matrix of other datasets pool other sources, never averaged in."""
    if datasets is not None:
        hr = [r for r in hr if r["method"] not in multis or r["source"] == "+".join(d for d in datasets if d != r["target"])]
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
        L += [f"| {t['shard'][0]}/{t['shard'][1]} | {t['wall_s'] / 60:.1f} min | {t['cpu_s'] / 60:.1f} min | {t['finished']}"
              f"{' (stopped before its end)' if t.get('done') is False else ''} |" for t in timing]
        span, elapsed = _span_minutes(timing), _span_minutes(timing, union=False)
        if span is not None:
            L += ["", f"Wall time with at least one process running: **{span:.1f} min** (first start to last end: "
                      f"{elapsed:.1f} min; {sum(t['cpu_s'] for t in timing) / 60:.1f} min of process CPU)."]
        L.append("")
    L.append(f"{cpu_line(rows)}; machine {platform.node() or '?'}, {os.cpu_count()} CPU cores.")
    return L + _cpu_table(rows)


def _row_window(r: dict) -> str:
    """The window tag of the cell a row came from (`matrix.window_tag`: "" for the default window, e.g. "-w128accz"
    for hhar's profile); rows written before it was recorded count as the default window's."""
    return str(r.get("window", ""))


def _cell_key(r: dict) -> tuple:
    """The cell a row belongs to, as `matrix.plan` formed it: a model (sources, method, head, seed, preset) and its
    window, plus the target for the rows that train one model per target (wide pretraining: `Method.wide`). A source's
    HHAR-profile cell and its six-pair cell of the same row are two cells, each with its own CPU."""
    m = METHODS.get(r.get("method"))
    per_target = m is not None and (m.wide or (m.runs_of is not None and METHODS[m.runs_of].wide))
    return (r.get("source"), r.get("method"), r.get("head"), r.get("seed"), r.get("preset"), _row_window(r),
            r.get("target") if per_target else None)


def _cell_cpu(rows: list[dict]) -> dict[tuple, float]:
    """Process CPU seconds per cell (`_cell_key`). A row's `cpu_seconds` counts from its cell's start (the cell's
    pretraining when it ran it, its finetuning, and the scoring of its targets up to that row's), so a cell's CPU is
    its largest row's; summing the rows would count a cell's training once per target."""
    cells: dict[tuple, float] = {}
    for r in rows:
        k = _cell_key(r)
        cells[k] = max(cells.get(k, 0.0), float(r.get("cpu_seconds", 0) or 0))
    return cells


def cpu_line(rows: list[dict]) -> str:
    """The rows' count and their cells' process CPU (_cell_cpu)."""
    cells = _cell_cpu(rows)
    return (f"Rows: {len(rows)} in {len(cells)} cells; process CPU of the cells {sum(cells.values()) / 60:.1f} min "
            f"(a cell's: its pretraining when it ran it, its finetuning and the scoring of its targets)")


def cpu_by_method(rows: list[dict]) -> list[tuple[str, str, int, float]]:
    """(method, head, cells, process CPU seconds) of each method and head, the costliest first (ties by name)."""
    per: dict[tuple[str, str], list[float]] = {}
    for (_, method, head, *_), cpu in _cell_cpu(rows).items():
        per.setdefault((method, head), []).append(cpu)
    return sorted(((m, h, len(c), sum(c)) for (m, h), c in per.items()), key=lambda t: (-t[3], t[0], t[1]))


def _cpu_table(rows: list[dict]) -> list[str]:
    """Where the matrix's CPU went: a line per method and head."""
    by = cpu_by_method(rows)
    total = sum(t[3] for t in by) or 1.0
    L = ["", "Process CPU by method (its cells' CPU; a pretraining run that several rows share counts in the cell "
             "that ran it; rows copied from another folder count with the CPU they took there):", "",
         "| method | head | cells | process CPU | share |", "|---|---|---|---|---|"]
    return L + [f"| {m} | {h} | {n} | {cpu / 60:.1f} min | {100 * cpu / total:.1f} % |" for m, h, n, cpu in by]


def _command(mc: MatrixConfig, root: Path) -> str:
    return (f"crosshar matrix --datasets {','.join(mc.datasets)}"
            f"{f' --targets-only {chr(44).join(mc.targets_only)}' if mc.targets_only else ''} --heads {','.join(mc.heads)} "
            f"--seeds {mc.seeds} --methods {','.join(mc.methods)} --label-rate {mc.label_rate}{' --quick' if mc.quick else ''}"
            f"{f' --pretrain-epochs {mc.pretrain_epochs}' if mc.pretrain_epochs else ''}"
            f"{f' --finetune-epochs {mc.finetune_epochs}' if mc.finetune_epochs else ''}"
            f"{f' --preset {mc.preset}' if mc.preset != 'default' else ''}"
            f"{f' --recipe {mc.recipe}' if mc.recipe != 'default' else ''} --name {root.name}")


# (method, reference) pairs the report compares cell by cell; "X_avg", "X_swing", "X_swingft", "X_lever", "X_leverft", "X_world", "X_vertical",
# "X_heading8", "X_mirrordev", "X_yaw45", "X_mount", "X_tta", "X_tta_motion", "X_tta_mirror", "X_balanced", "X_ens5", "X_cadence", "X_cadenceft", "X_mixup", "X_lr3", "X_amp_sqrt", "X_amp_equal", "X_last", "X_best", "X_cadviewsK", "X_d1", "X_w32", "X_d3", "X_w96", "X_inspace", "X_attn0", "X_sched50", "X_sched67", "X_pre3x", "X_pre10x", "X_sam", "X_mixstyle" and "X_stylemix" against "X" are added where both ran
COMPARISONS = (("crosshar", "scratch"), ("crosshar", "crosshar_paper"), ("crosshar", "scratch_frozen"),
               ("crosshar_d1", "scratch_d1"), ("crosshar_w32", "scratch_w32"), ("crosshar_d3", "scratch_d3"),
               ("crosshar_w96", "scratch_w96"), ("crosshar_inspace", "scratch"), ("crosshar_attn0", "scratch_attn0"),
               ("crosshar_pre10x", "scratch"), ("crosshar_pre10x", "scratch_frozen"), ("crosshar_wide", "scratch"),
               ("crosshar_wide", "crosshar_pre10x"),
               ("scratch", "scratch_attndrop"), ("crosshar", "crosshar_attndrop"), ("crosshar_attndrop", "scratch_attndrop"),
               ("crosshar_full", "scratch_encoder"), ("scratch_encoder", "scratch"), ("crosshar", "scratch_encoder"),
               ("crosshar", "crosshar_nomirror"), ("crosshar", "crosshar_device"), ("crosshar", "mask"),
               ("crosshar", "contrast"), ("crosshar_full_slow", "crosshar_full"), ("crosshar_wide", "crosshar"),
               ("crosshar_lpft", "crosshar"), ("crosshar_lpft", "scratch"), ("crosshar_combo", "crosshar"),
               ("crosshar_combo", "scratch"), ("crosshar", "crosshar_v1"), ("scratch", "scratch_v1"),
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
               ("scratch_worldvert_mount", "scratch"), ("crosshar", "scratch_worldvert_mount"),
               ("crosshar_worldvert_mount", "scratch_worldvert_mount"), ("crosshar_worldvert_mount", "crosshar"),
               ("scratch_frozen_worldvert_mount", "scratch_worldvert_mount"),
               ("crosshar_worldvert_mount", "scratch_frozen_worldvert_mount"),
               ("crosshar_wide_worldvert_mount", "crosshar_worldvert_mount"),
               ("crosshar_wide_worldvert_mount", "scratch_worldvert_mount"),
               ("scratch_turn", "scratch"), ("crosshar_turnft", "crosshar"), ("scratch_worldvert_mount_turn", "scratch_worldvert_mount"),
               ("scratch_turnscale", "scratch"), ("scratch_worldvert_mount_turnscale", "scratch_worldvert_mount"),
               ("scratch_b16", "scratch"), ("crosshar_b16", "crosshar"),
               ("scratch_tok5", "scratch"), ("crosshar_tok5", "crosshar"), ("crosshar_tok5", "scratch_tok5"),
               ("scratch_shared", "scratch_tok1"), ("crosshar_shared", "crosshar_tok1"), ("crosshar_tok1", "scratch_tok1"),
               ("scratch", "scratch_chunk20"), ("crosshar", "crosshar_chunk20"), ("crosshar_chunk20", "scratch_chunk20"),
               ("scratch", "scratch_shared"), ("crosshar", "crosshar_shared"), ("crosshar_shared", "scratch_shared"),
               *((f"scratch_worldvert_mount_cadviews{k}", "scratch_worldvert_mount_tta_cadence") for k in (3, 5, 9)),
               *((f"{b}_tta_motion", f"{b}_tta") for b in TTA_BASES), *((f"{b}_tta", f"{b}_tta_mirror") for b in TTA_BASES))
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
    if not d:  # no pair to compare (a matrix whose rows are all into target-only datasets)
        return None
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
                                                            "_amp_equal", "_arrow", "_conv", "_mirrordev", "_yaw45", "_mount", "_tta",
                                                            *(f"_tta_{k}" for k in TTA_VIEWS if k != "all"), "_balanced", "_last", "_best",
                                                            "_cadviews3", "_cadviews5", "_cadviews9", "_d1", "_w32", "_d3", "_w96",
                                                            "_inspace", "_attn0", "_sched50", "_sched67", "_pre3x", "_pre10x", "_sam", "_mixstyle", "_stylemix")
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


def _targets(mc: MatrixConfig, hr: list[dict], head: str, six: list, avg6: dict, pairs: list) -> list[str]:
    """The accuracy issue's targets, checked against this head's rows (`six`: the pairs among the matrix datasets), the
    share of their ceiling reached on the target-only datasets, and the defects found over every pair (`pairs`)."""
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
    if six and "crosshar" in avg6 and "scratch" in avg6:
        below = [f"{s} → {t} ({100 * a:.1f} < {100 * b:.1f}{_pair_interval(hr, head, s, t)})"
                 for (s, t), a, b in zip(six, avg6["crosshar"], avg6["scratch"]) if a < b]
        L.append(f"- pairs where crosshar is below scratch: {', '.join(below) if below else 'none'}")
    for t in mc.targets_only:  # outside the averages above, beside its own ceiling
        into = [(s, u) for s, u in pairs if u == t]
        orc_t = np.array([ceiling(hr, head, s, u, mc.label_space) for s, u in into]) if into else np.array([np.nan])
        shares = []
        for m in ("crosshar", "scratch"):
            v = np.array([np.mean(x) if (x := _vals(hr, source=s, target=u, method=m, head=head)) else np.nan for s, u in into])
            if len(v) and not np.all(np.isnan(v / orc_t)):
                shares.append(f"{m} {100 * np.nanmean(v):.1f}, {100 * np.nanmean(v / orc_t):.1f} %")
        if shares and not np.all(np.isnan(orc_t)):
            L.append(f"- into {t} (a target only, outside the averages above), against its own ceiling ({100 * np.nanmean(orc_t):.1f} "
                     f"over the {len(into)} sources' classes; the oracles trained on {t}'s training users): {'; '.join(shares)}")
    defects = []
    transfer = [m for m in mc.methods if not METHODS[m].oracle]  # single-source and pooled (multi) rows alike
    pooled = sorted({(r["source"], r["target"]) for r in hr if r["method"] in transfer and METHODS[r["method"]].multi})
    for o in ("ceiling", "full"):  # the best oracle at the matrix's label rate, and the best with every label
        for s, t in list(pairs) + pooled:  # like with like: the oracle re-read in the pair's classes
            if o == "ceiling":
                orc, name = ceiling(hr, head, s, t, mc.label_space), "oracle"
            else:
                full = {f: _oracle(hr, head, t, f, _pair_classes(hr, s, t), mc.label_space) for f in FULL}
                name, orc = max(((f, v) for f, v in full.items() if not np.isnan(v)), key=lambda fv: fv[1],
                                default=("", np.nan))
            best = max([np.mean(v) for m in transfer if (v := _vals(hr, source=s, target=t, method=m, head=head))] or [np.nan])
            if not np.isnan(orc) and best > orc:
                defects.append(f"{name} on {t} ({100 * orc:.1f}) is below {s} → {t} ({100 * best:.1f})")
    L.append(f"- **defects**: {'; '.join(defects)}" if defects else "- defects: no oracle below a transfer result")
    return L + [""]


def _stairs(hr: list[dict], head: str) -> list[str]:
    """Per-class F1 of upstairs and downstairs wherever both are scored (a target with one of them alone, as your
    own data may be, has no such row)."""
    rows = [r for r in hr if {"upstairs", "downstairs"} <= set(r.get("per_class_f1", {}))]
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

