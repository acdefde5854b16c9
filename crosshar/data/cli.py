"""`crosshar data ...`: list, download, prepare and inspect datasets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer
from rich.table import Table

from crosshar import paths
from crosshar.clitools import DataDir, OnBad, console, dataset_names, friendly, plain

app = typer.Typer(help="List, download, prepare and inspect datasets.", no_args_is_help=True)

Name = Annotated[str, typer.Option("-d", "--dataset", help=f"A dataset: one of {dataset_names()}, or a folder holding crosshar.toml (your own data).")]
Registered = Annotated[str, typer.Option("-d", "--dataset", help=f"A registered dataset: one of {dataset_names()}.")]


@app.command("list")
@friendly
def list_cmd(data_dir: DataDir = None) -> None:
    """Registered datasets, whether their raw files are found, whether prepared, where to get them."""
    import crosshar.data  # noqa: F401
    from crosshar.data.io import DataFolder
    from crosshar.data.store import cached, get_dataset
    from crosshar.errors import CrossharError
    from crosshar.registry import DATASETS

    try:
        root: Path | None = paths.data_dir(data_dir)
    except CrossharError:
        root = None
    t = Table(title=f"datasets (data folder: {root or 'not set'})")
    for col in ("name", "dataset", "raw files", "prepared", "download"):
        t.add_column(col, overflow="fold")
    for name in DATASETS.names():
        ds = get_dataset(name)
        found = "-"
        if root is not None:
            try:
                folder = DataFolder(ds.locate(root))
                n = len(ds.files(folder))
                found = f"[green]{n} files[/] in {plain(folder.root.name)}" if n else "[red]folder empty[/]"
            except CrossharError:
                found = "[red]not found[/]"
        prep = len(cached(name))
        t.add_row(name, ds.title, found, f"{prep} version(s)" if prep else "no", ds.url or "(see README)")
    for name, roots in own_datasets().items():
        n = len(cached(name))
        t.add_row(plain(name), "your own data (crosshar.toml)", plain(", ".join(roots)), f"{n} version(s)", "-")
    console.print(t)


def own_datasets() -> dict[str, list[str]]:
    """{descriptor name: folders} of your own datasets prepared so far (from the cache's manifests)."""
    from crosshar.data.store import read_manifest
    from crosshar.registry import DATASETS

    found: dict[str, list[str]] = {}
    for m in sorted(paths.cache_dir().glob("*.json")):
        man = read_manifest(m)
        if man is None:
            continue
        name = man.get("dataset")
        if isinstance(name, str) and name not in DATASETS and "root" in man:
            roots = found.setdefault(name, [])
            if man["root"] not in roots:
                roots.append(man["root"])
    return found


@app.command("download")
@friendly
def download_cmd(
    dataset: Registered,
    source: Annotated[Optional[str], typer.Option("--from", help="Local archive or mirror URL instead of the official address.")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Where to unpack (default: $CROSSHAR_DATA or ./data).")] = None,
) -> None:
    """Fetch a dataset's public archive, verify its size/SHA-256, unpack it into the data folder."""
    import os

    from crosshar.data.download import download
    from crosshar.data.store import get_dataset

    root = Path(data_dir or os.environ.get(paths.ENV_DATA) or "data")
    rep = download(get_dataset(dataset), root, source)
    state = "verified against the known checksum" if rep["verified"] else "checksum recorded (none known)"
    console.print(plain(f"{dataset}: {rep['size']:,} bytes, sha256 {rep['sha256'][:16]}…, {state}; unpacked into "
                        f"{rep['folder']}"))


def _print_counts(ws) -> None:
    per_class, per_subject = ws.counts()
    t = Table(title=f"{plain(ws.dataset)}: {len(ws):,} windows of {ws.config.window} samples at {ws.config.rate_hz:g} Hz ({ws.config.channels})")
    t.add_column("activity")
    t.add_column("windows", justify="right")
    for k, v in sorted(per_class.items(), key=lambda kv: -kv[1]):
        t.add_row(plain(k), f"{v:,}")
    console.print(t)
    subj = ", ".join(f"{k.split(':', 1)[-1]}:{v}" for k, v in sorted(per_subject.items()))
    console.print(f"[bold]windows per subject[/] ({len(per_subject)} subjects): {plain(subj)}", soft_wrap=True)
    for attr, values in ws.recording_splits().items():  # several body positions or devices: `cross` scores each apart
        names, n = np.unique(values, return_counts=True)
        console.print(f"[bold]windows per {'body position' if attr == 'position' else attr}[/]: "
                      + plain(", ".join(f"{k}:{v:,}" for k, v in zip(names.tolist(), n.tolist()))), soft_wrap=True)


@app.command("prepare")
@friendly
def prepare_cmd(
    dataset: Name,
    data_dir: DataDir = None,
    on_bad: OnBad = "error",
    rate: Annotated[Optional[float], typer.Option(help="Target rate in Hz (default 20).")] = None,
    window: Annotated[Optional[int], typer.Option(help="Samples per window (default 120).")] = None,
    stride: Annotated[Optional[int], typer.Option(help="Samples between window starts (default = window).")] = None,
    channels: Annotated[Optional[str], typer.Option(help="'acc+gyro' or 'acc'.")] = None,
    window_config: Annotated[Optional[Path], typer.Option("--window-config", "--config", help="A window config TOML (default configs/window.toml).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Ignore the cache and prepare again.")] = False,
) -> None:
    """Read the raw files, resample, window and cache; print windows per class and per subject,
    what was kept and dropped (per reason), and the physical checks (gravity, handedness)."""
    from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

    from crosshar import config as C
    from crosshar.data.store import kept_dropped, prepare, resolve

    C.check_choice("--on-bad", on_bad, C.ON_BAD)
    config = window_config
    r = resolve(dataset, data_dir)
    ds, folder = r.dataset, r.folder
    wcfg = None
    if ds.profile(folder) is None or any(v is not None for v in (config, rate, window, stride, channels)):
        base = C.load("window", config)
        if channels is None and not r.has_gyro():
            channels = "acc"
        wcfg = base.replace(rate_hz=rate, window=window, channels=channels,
                            stride=stride if stride is not None else (window if window is not None else None))
    with Progress(SpinnerColumn(), "[progress.description]{task.description}", TimeElapsedColumn(), console=console, transient=True) as p:
        p.add_task(f"preparing {r.name} (reading raw files, resampling, windowing)", total=None)
        ws = prepare(dataset, data_dir, wcfg, on_bad=on_bad, rebuild=rebuild,
                     log=lambda m: console.print(plain(m), soft_wrap=True, highlight=False))
    _print_counts(ws)
    console.print(plain(kept_dropped(ws.manifest)), soft_wrap=True, highlight=False)
    _print_checks(ws.manifest)
    if ws.manifest.get("skipped"):
        console.print(f"[yellow]skipped {len(ws.manifest['skipped'])} bad item(s)[/]; see the manifest for each")
    console.print(plain(f"cache: {paths.cache_dir()}/{r.base}-{ws.manifest['key']}.npz"), soft_wrap=True)


def _print_checks(man: dict) -> None:
    c = man.get("checks") or {}
    g, h = c.get("gravity") or {}, c.get("handedness") or {}
    if g.get("median_ms2") is not None:
        slope = h.get("slope")
        console.print(f"checks: median |acc| at rest {g['median_ms2']:.2f} m/s² over {g['still_seconds']:,} still "
                      f"seconds (9.81 expected); rotation slope d(acc)/dt vs −ω×acc "
                      f"{'n/a (no gyroscope or too little rotation)' if slope is None else f'{slope:+.2f} (+1 expected)'}",
                      highlight=False)
    for p, f in (c.get("by_position") or {}).items():
        g, h = f.get("gravity") or {}, f.get("handedness") or {}
        if g.get("median_ms2") is not None:
            slope = h.get("slope")
            console.print(f"  at {plain(p)}: median |acc| at rest {g['median_ms2']:.2f} m/s² over {g['still_seconds']:,} "
                          f"still seconds; rotation slope {'n/a' if slope is None else f'{slope:+.2f}'}", highlight=False)
    turns = c.get("turning") or {}
    if turns:
        console.print("turning about the vertical per window (median, share counterclockwise): " + plain(", ".join(
            f"{k} {v['median_deg']:.0f}° {100 * v['ccw_share']:.0f} %" for k, v in turns.items())), highlight=False)
    for w in man.get("warnings", []):
        console.print(f"[yellow]warning[/]: {plain(w)}", highlight=False, soft_wrap=True)


@app.command("info")
@friendly
def info_cmd(dataset: Name, data_dir: DataDir = None) -> None:
    """Show the manifests of a dataset's prepared versions (config, counts, provenance)."""
    from crosshar.data.store import (cached, check_specs, is_folder_spec, kept_dropped, prepared_from, read_manifest,
                                     recording_positions, resolve, split_position)

    check_specs([dataset], data_dir)  # an unknown name, or a position the prepared dataset lacks: one line, exit 2
    base = split_position(dataset)[0]
    root = None
    if is_folder_spec(base):  # your own data: this folder's versions, not every folder's that shares its descriptor's name
        r = resolve(base)
        root, dataset = r.folder.root, r.name
    else:  # a registered dataset: with --data-dir, the versions prepared from that folder; without, every folder's
        dataset = str(base)
        if data_dir is not None:
            root = resolve(dataset, data_dir).folder.root
    found = [m for m in cached(dataset) if root is None or prepared_from(read_manifest(m), root)]
    if not found:
        console.print(plain(f"{dataset}: not prepared yet; run `crosshar data prepare -d {dataset}`"))
        raise typer.Exit(1)
    for m in found:
        man = read_manifest(m)
        if man is None:
            console.print(f"[bold]{plain(m.name)}[/]: damaged (not a manifest); "
                          + plain(f"`crosshar data prepare -d {dataset}` rebuilds it"))
            continue
        console.print(f"[bold]{plain(m.name)}[/]: {man['n_windows']:,} windows from {man['n_recordings']} recordings "
                      f"({man['n_files']} files, fingerprint {man['fingerprint']}), window {man['window']}")
        console.print(f"  per class: {plain(man['per_class'])}", soft_wrap=True)
        console.print(f"  subjects: {len(man['per_subject'])}; skipped items: {len(man['skipped'])}")
        where = Counter(recording_positions(man))
        if where:  # what `-d NAME@POSITION` can select
            console.print("  recordings per body position (select one with -d NAME@POSITION): "
                          + plain(", ".join(f"{p} {n}" for p, n in sorted(where.items()))), soft_wrap=True,
                          highlight=False)
        console.print(f"  {plain(kept_dropped(man))}", soft_wrap=True, highlight=False)
        _print_checks(man)
