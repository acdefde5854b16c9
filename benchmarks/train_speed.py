"""CPU cost of the default pipeline, stage by stage: pretrain -> finetune -> cross.

    python benchmarks/train_speed.py [--epochs 2] [--finetune-epochs 10] [--targets motion] [--seed 0]
                                     [--threads 1] [--compare results/train_speed/before_s0.json]
                                     [--out results/train_speed]
    python benchmarks/train_speed.py --scale-from A.json,B.json --epochs 40 --finetune-epochs 40 --out OUT
    python benchmarks/train_speed.py --summarize 'results/train_speed/*.json' --baseline 64b9963

Runs, each in its own process and with its own fresh CROSSHAR_HOME, exactly what a user types:

    crosshar data prepare -d uci (and each target)     (not counted: a one-off cache)
    crosshar pretrain -d uci --epochs E --quiet
    crosshar finetune -d uci -lr 0.1 --encoder RUN [--epochs F]
    crosshar cross -d uci -td motion --run RUN

with OMP_NUM_THREADS=MKL_NUM_THREADS=--threads, and reports per stage the CPU seconds (user + system
of the stage's process, from wait4), peak resident memory (ru_maxrss), wall seconds, windows processed
and windows per CPU second. Windows processed: pretraining, training windows x epochs; finetuning,
labelled windows x epochs run; cross, the target's windows scored. CPU seconds, not wall seconds, are
the comparable figure on a shared machine. It uses only the standard library and the `crosshar`
command line, so the same script measures an older commit (`--python` of that commit's venv).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_stage(cmd: list[str], env: dict[str, str]) -> dict:
    """Run one command; (cpu_s, peak_mb, wall_s) of its process tree, from wait4.

    It runs in CROSSHAR_HOME, not here: `python -m crosshar` puts its working directory first on
    sys.path, so from a checkout it would import that checkout's package instead of --python's."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=env["CROSSHAR_HOME"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{out.decode(errors='replace')[-3000:]}")
    return {"cpu_s": ru.ru_utime + ru.ru_stime, "peak_mb": ru.ru_maxrss / 1024, "wall_s": wall,
            "log": out.decode(errors="replace")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-d", "--dataset", default="uci")
    ap.add_argument("--targets", default="motion", help="comma-separated target datasets for `cross`")
    ap.add_argument("--epochs", type=int, default=None, help="pretraining epochs (default: configs/pretrain.toml)")
    ap.add_argument("--finetune-epochs", type=int, default=None, help="default: configs/finetune.toml")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=None, help="seed of pretraining and finetuning (default: the configs')")
    ap.add_argument("--python", default=sys.executable, help="the Python whose crosshar is measured")
    ap.add_argument("--label", default=None, help="name of this measurement (default: the git commit)")
    ap.add_argument("--compare", default=None, help="a previous JSON output to print side by side")
    ap.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    ap.add_argument("--scale-from", default=None, metavar="A.json,B.json",
                    help="run nothing: extrapolate two measurements at different epoch counts linearly to --epochs "
                         "and --finetune-epochs (CPU = fixed + per-epoch x epochs, per stage) and write --out")
    ap.add_argument("--macro-f1", default=None, metavar="TARGET=F1,...",
                    help="with --scale-from: the macro-F1 measured elsewhere at those epochs (say where in --label)")
    ap.add_argument("--summarize", default=None, metavar="GLOB",
                    help="run nothing: mean +- std over seeds of the measurements matching GLOB (JSON outputs of this "
                         "script), one row per commit and schedule")
    ap.add_argument("--baseline", default=None, metavar="COMMIT",
                    help="with --summarize: the commit whose runs the CPU ratios divide (default: the first file's)")
    args = ap.parse_args()
    if args.summarize:
        md = summarize(sorted(Path(f) for f in glob.glob(args.summarize)), " ".join(["python", "benchmarks/train_speed.py"] + sys.argv[1:]),
                       args.baseline)
        print(md)
        if args.out:
            Path(args.out + ".md").write_text(md)
        return
    if args.scale_from:
        a, b = (json.loads(Path(f).read_text()) for f in args.scale_from.split(","))
        doc = extrapolate(a, b, args.epochs, args.finetune_epochs, args.label)
        if args.macro_f1:
            doc["macro_f1"] = {t: float(v) for t, v in (kv.split("=") for kv in args.macro_f1.split(","))}
        doc["command"] = " ".join(["python", "benchmarks/train_speed.py"] + sys.argv[1:])
        md = to_markdown(doc)
        print(md)
        if args.out:
            Path(args.out + ".json").write_text(json.dumps(doc, indent=1) + "\n")
            Path(args.out + ".md").write_text(md)
        return

    home = Path(tempfile.mkdtemp(prefix="crosshar-train-speed-"))
    env = dict(os.environ, CROSSHAR_HOME=str(home), OMP_NUM_THREADS=str(args.threads),
               MKL_NUM_THREADS=str(args.threads), PYTHONWARNINGS="ignore", COLUMNS="200")
    cli = [args.python, "-m", "crosshar"]
    targets = [t for t in args.targets.split(",") if t]
    for ds in [args.dataset, *targets]:
        run_stage(cli + ["data", "prepare", "-d", ds], env)
    pre, fin = home / "pre", home / "fin"
    rows = []
    ep = ["--epochs", str(args.epochs)] if args.epochs else []
    seed = ["--seed", str(args.seed)] if args.seed is not None else []
    r = run_stage(cli + ["pretrain", "-d", args.dataset, "--quiet", "--out", str(pre)] + ep + seed, env)
    info = json.loads((pre / "run.json").read_text())
    rows.append({"stage": "pretrain", "windows": info["n_train"] * len(info["history"]), **r})
    fep = ["--epochs", str(args.finetune_epochs)] if args.finetune_epochs else []
    r = run_stage(cli + ["finetune", "-d", args.dataset, "-lr", "0.1", "--encoder", str(pre), "--out", str(fin)] + fep + seed, env)
    info = json.loads((fin / "run.json").read_text())
    rows.append({"stage": "finetune", "windows": info["n_labelled"] * len(info["history"]), **r})
    f1 = {}
    for t in targets:
        res = home / f"cross-{t}"
        r = run_stage(cli + ["cross", "-d", args.dataset, "-td", t, "--run", str(fin), "--out", str(res)], env)
        m = json.loads((res / "results.json").read_text())["metrics"]
        f1[t] = m["macro_f1"]
        rows.append({"stage": f"cross {t}", "windows": m["n"], **r})
    for row in rows:
        row["windows_per_cpu_s"] = row["windows"] / max(row["cpu_s"], 1e-9)
        row.pop("log")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(subprocess.run([args.python, "-c", "import crosshar,os;print(os.path.dirname(crosshar.__file__))"],
                                                    capture_output=True, text=True, cwd=home).stdout.strip() or ".")).stdout.strip()
    doc = {"label": args.label or commit, "commit": commit, "dataset": args.dataset, "targets": targets,
           "pretrain_epochs": args.epochs, "finetune_epochs": args.finetune_epochs, "threads": args.threads,
           "seed": args.seed,
           "rows": rows, "total_cpu_s": sum(r["cpu_s"] for r in rows), "macro_f1": f1,
           "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
           "command": " ".join(["python", "benchmarks/train_speed.py"] + sys.argv[1:])}
    before = json.loads(Path(args.compare).read_text()) if args.compare else None
    md = to_markdown(doc, before)
    print(md)
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(doc, indent=1) + "\n")
        Path(args.out + ".md").write_text(md)


def extrapolate(a: dict, b: dict, epochs: int, finetune_epochs: int, label: str | None = None) -> dict:
    """Two measurements of one commit at different epoch counts -> its estimate at (epochs, finetune_epochs).

    Per stage, CPU seconds and windows are fitted as fixed + per_epoch x epochs through the two points
    (pretraining against pretraining epochs, finetuning against finetuning epochs); `cross` does not
    depend on epochs and is averaged. Peak memory and macro-F1 are not extrapolated (F1 is left out:
    it depends on the epochs; give the measured one separately).
    """
    xs = {"pretrain": ("pretrain_epochs", epochs), "finetune": ("finetune_epochs", finetune_epochs)}
    rows = []
    for ra, rb in zip(a["rows"], b["rows"]):
        row = {"stage": ra["stage"], "peak_mb": max(ra["peak_mb"], rb["peak_mb"]), "wall_s": float("nan")}
        if ra["stage"] in xs:
            key, x = xs[ra["stage"]]
            xa, xb = a[key], b[key]
            for k in ("cpu_s", "windows"):
                slope = (rb[k] - ra[k]) / (xb - xa)
                row[k] = ra[k] + slope * (x - xa)
            row["fixed_cpu_s"] = ra["cpu_s"] - (rb["cpu_s"] - ra["cpu_s"]) / (xb - xa) * xa
        else:
            row.update(cpu_s=(ra["cpu_s"] + rb["cpu_s"]) / 2, windows=ra["windows"])
        row["windows"] = round(row["windows"])
        row["windows_per_cpu_s"] = row["windows"] / row["cpu_s"]
        rows.append(row)
    return {**a, "label": label or f"{a['commit']} (scaled)", "pretrain_epochs": epochs,
            "finetune_epochs": finetune_epochs, "rows": rows, "total_cpu_s": sum(r["cpu_s"] for r in rows),
            "macro_f1": {}, "scaled_from": [a["label"], b["label"]]}


def pipeline_cpu(d: dict) -> float:
    """CPU seconds of the issue's pipeline: pretrain + finetune + cross on the first target."""
    return sum(r["cpu_s"] for r in d["rows"] if r["stage"] in ("pretrain", "finetune", f"cross {d['targets'][0]}"))


def summarize(files: list[Path], command: str, baseline: str | None = None) -> str:
    """Mean +- std over seeds of measured (not scaled) runs, grouped by commit and epochs, the baseline's
    rows first; CPU ratios against the baseline commit's runs (default: the first file's commit)."""
    if not files:
        sys.exit("--summarize: no file matches")
    groups: dict[tuple, list[dict]] = {}
    for f in files:
        d = json.loads(f.read_text())
        if "scaled_from" in d:
            continue
        groups.setdefault((d["commit"], d["pretrain_epochs"], d["finetune_epochs"]), []).append(d)
    if not groups:
        sys.exit("--summarize: only scaled estimates match; nothing measured to summarise")
    baseline = baseline or next(iter(groups))[0]
    if not any(k[0] == baseline for k in groups):
        sys.exit(f"--baseline {baseline}: no measured run of that commit among {sorted({k[0] for k in groups})}")
    groups = dict(sorted(groups.items(), key=lambda kv: (kv[0][0] != baseline, kv[0][1] or 0)))
    ms = lambda xs: f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}" if len(xs) > 1 else f"{xs[0]:.1f}"
    targets = list(next(iter(groups.values()))[0]["targets"])
    base = statistics.mean(pipeline_cpu(d) for k, ds in groups.items() if k[0] == baseline for d in ds)
    lines = ["Default pipeline measured per seed (one thread; CPU seconds = user + system of each stage's process):",
             "mean ± sample standard deviation over the seeds. Pretraining / finetuning epochs: the commit's defaults where '-'.", "",
             f"Command: `{command}`", "",
             "| commit | pretraining epochs | finetuning epochs | seeds | pretrain CPU s | finetune CPU s | "
             f"pipeline CPU s | CPU vs {baseline} | " + " | ".join(f"macro-F1 → {t}" for t in targets) + " |",
             "|---|---:|---:|---:|---:|---:|---:|---:|" + "---:|" * len(targets)]
    for (commit, pe, fe), ds in groups.items():
        stage = lambda name: ms([next(r["cpu_s"] for r in d["rows"] if r["stage"] == name) for d in ds])
        cpu = [pipeline_cpu(d) for d in ds]
        f1 = [ms([100 * d["macro_f1"][t] for d in ds]) for t in targets]
        lines.append(f"| {commit} | {pe or '-'} | {fe or '-'} | {len(ds)} | {stage('pretrain')} | {stage('finetune')} | "
                     f"{ms(cpu)} | {'baseline' if commit == baseline else f'{base / statistics.mean(cpu):.2f}x less'} | " + " | ".join(f1) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(doc: dict, before: dict | None = None) -> str:
    lines = [f"Default pipeline, {doc['dataset']} -> {', '.join(doc['targets'])}, {doc['threads']} thread(s), "
             f"pretraining epochs {doc['pretrain_epochs'] or 'default'}, finetuning epochs "
             f"{doc['finetune_epochs'] or 'default'} ({doc['machine']}, Python {doc['python']})", "",
             f"Command: `{doc['command']}`", ""]
    head = "| stage | windows | CPU s | windows / CPU s | peak RSS (MB) | wall s |"
    sep = "|---|---:|---:|---:|---:|---:|"
    if before:
        head += f" CPU s ({before['label']}) | CPU ratio | peak RSS ({before['label']}) |"
        sep += "---:|---:|---:|"
    lines += [f"Measured: {doc['label']}", "", head, sep]
    old = {r["stage"]: r for r in before["rows"]} if before else {}
    for r in doc["rows"]:
        cells = [r["stage"], f"{r['windows']:,}", f"{r['cpu_s']:.1f}", f"{r['windows_per_cpu_s']:,.0f}",
                 f"{r['peak_mb']:.0f}", "-" if r["wall_s"] != r["wall_s"] else f"{r['wall_s']:.1f}"]
        if before:
            o = old.get(r["stage"])
            cells += ["-", "-", "-"] if o is None else [f"{o['cpu_s']:.1f}", f"{o['cpu_s'] / max(r['cpu_s'], 1e-9):.2f}x less",
                                                        f"{o['peak_mb']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    for name, fn in ((f"pipeline (pretrain, finetune, cross {doc['targets'][0]})", pipeline_cpu),
                     ("all stages above", lambda d: d["total_cpu_s"])):
        tot = f"| **{name}** | | **{fn(doc):.1f}** | | | |"
        if before:
            tot += f" **{fn(before):.1f}** | **{fn(before) / max(fn(doc), 1e-9):.2f}x less** | |"
        lines.append(tot)
    lines.append("")
    f1 = ", ".join(f"{doc['dataset']} -> {t} {100 * v:.1f}" for t, v in doc["macro_f1"].items())
    if before and before["macro_f1"]:
        f1 += " (" + before["label"] + ": " + ", ".join(f"{100 * v:.1f}" for v in before["macro_f1"].values()) + ")"
    lines += [f"Macro-F1: {f1}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
