"""Tiny synthetic raw datasets in the exact public layouts, and tiny configs, for the stage tests.

`write_uci` writes a HAPT `RawData/` folder and `write_motionsense` a MotionSense layout-A folder
(through the writers of tests/data/rawfmt.py), with activities that a small model can tell apart:
gravity along an activity-specific direction (sitting is tilted, standing upright) plus sinusoids
at activity-specific frequencies plus noise. Import the fixtures into a test module with
`from synthdata import synth  # noqa: F401`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "data"))  # rawfmt lives next to the loader tests

from rawfmt import motionsense_a_text, uci_labels_text, uci_raw_text, write_tree  # noqa: E402

from crosshar.config import AugmentConfig, EncoderConfig, FinetuneConfig, PretrainConfig, WindowConfig  # noqa: E402

RATE = 50.0
# activity: (UCI id, MotionSense code, step frequency Hz, dynamic amplitude g, gravity direction)
ACTS = {
    "walking": (1, "wlk", 1.8, 0.35, (1.0, 0.0, 0.0)),
    "upstairs": (2, "ups", 1.3, 0.25, (0.97, 0.24, 0.0)),
    "downstairs": (3, "dws", 2.6, 0.45, (0.97, -0.24, 0.0)),
    "sitting": (4, "sit", 0.0, 0.0, (0.5, 0.0, 0.87)),
    "standing": (5, "std", 0.0, 0.0, (1.0, 0.0, 0.0)),
}
UCI_USERS = (1, 2, 3, 5, 6, 7)
MS_SUBJECTS = (1, 2, 3, 4)
SEGMENT = 620  # samples at 50 Hz per labelled segment (12.4 s -> 2 windows of 6 s at 20 Hz)

# tiny configs: every run takes well under a second per epoch on one thread
TINY_ENCODER = EncoderConfig(n_layers=1, d_model=24, d_ff=48, n_heads=2, dropout=0.0)
TINY_PRETRAIN = PretrainConfig(stage1_epochs=1, stage2_epochs=1, batch_size=32, warmup_epochs=1, proj_dim=16)
TINY_FINETUNE = FinetuneConfig(head="linear", epochs=3, batch_size=32, label_rate=0.5, lr=1e-2, patience=50)
WINDOW = WindowConfig()  # the default 120 samples at 20 Hz, as `cross` and `matrix` use
AUGMENT = AugmentConfig()


def activity_signal(act: str, n: int, rng: np.random.Generator, phase: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(acc in g, gyro in rad/s), each (n, 3), for one activity segment."""
    _, _, f, amp, grav = ACTS[act]
    t = np.arange(n) / RATE + phase
    acc = np.tile(np.asarray(grav), (n, 1))
    gyro = np.zeros((n, 3))
    if f > 0:
        acc += amp * np.stack([np.sin(2 * np.pi * f * t), 0.5 * np.sin(4 * np.pi * f * t), 0.3 * np.cos(2 * np.pi * f * t)], 1)
        gyro += amp * np.stack([0.4 * np.cos(2 * np.pi * f * t), np.sin(2 * np.pi * f * t), 0.2 * np.sin(np.pi * f * t)], 1)
    acc += 0.02 * rng.standard_normal((n, 3))
    gyro += 0.01 * rng.standard_normal((n, 3))
    return acc, gyro


def uci_files(users=UCI_USERS, exps_per_user: int = 2, segment: int = SEGMENT, seed: int = 0) -> dict[str, str]:
    """{logical path: text} of a HAPT RawData folder: every experiment holds each activity once,
    separated by short unlabelled gaps (as in the real recordings)."""
    rng = np.random.default_rng(seed)
    files, rows, exp = {}, [], 0
    gap = 40
    for u in users:
        for _ in range(exps_per_user):
            exp += 1
            accs, gyros, pos = [], [], 0
            order = rng.permutation(list(ACTS))
            for act in order:
                a, g = activity_signal(act, segment, rng, phase=float(rng.uniform(0, 1)))
                rows.append((exp, u, ACTS[act][0], pos, pos + segment - 1))
                ga, gg = activity_signal("standing", gap, rng)
                accs += [a, ga]
                gyros += [g, gg]
                pos += segment + gap
            files[f"RawData/acc_exp{exp:02d}_user{u:02d}.txt"] = uci_raw_text(np.concatenate(accs))
            files[f"RawData/gyro_exp{exp:02d}_user{u:02d}.txt"] = uci_raw_text(np.concatenate(gyros))
    files["RawData/labels.txt"] = uci_labels_text(rows)
    return files


def motionsense_files(subjects=MS_SUBJECTS, segment: int = SEGMENT, seed: int = 1) -> dict[str, str]:
    """{logical path: text} of MotionSense layout A: one trial folder per activity, one csv per subject.

    Core Motion reports gravity + userAcceleration = minus the specific force (in g); the
    synthetic body axis is the device's y axis (x and y swapped relative to the UCI signals).
    """
    rng = np.random.default_rng(seed)
    files = {}
    for trial, act in enumerate(ACTS, start=1):
        code = ACTS[act][1]
        for s in subjects:
            a, g = activity_signal(act, segment, rng, phase=float(rng.uniform(0, 1)))
            a = a[:, [1, 0, 2]]  # device y along the body axis
            grav = np.tile(-np.asarray(ACTS[act][4])[[1, 0, 2]], (segment, 1))  # Core Motion sign
            user = -a - grav
            files[f"A_DeviceMotion_data/{code}_{trial}/sub_{s}.csv"] = motionsense_a_text(grav, g[:, [1, 0, 2]], user)
    return files


def write_synth(root: Path) -> Path:
    """Both datasets under `root` (uci_hapt/, motionsense/); returns root."""
    write_tree(root / "uci_hapt", uci_files())
    write_tree(root / "motionsense", motionsense_files())
    return root


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """The synthetic raw-data folder, written once per session (read-only for the tests)."""
    return write_synth(tmp_path_factory.mktemp("synth_data"))


@pytest.fixture
def synth(synth_root, monkeypatch) -> Path:
    """CROSSHAR_DATA pointing at the synthetic datasets."""
    monkeypatch.setenv("CROSSHAR_DATA", str(synth_root))
    return synth_root


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A CROSSHAR_HOME of this test's own (runs and results isolated from other tests)."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("CROSSHAR_HOME", str(h))
    return h


@pytest.fixture
def tiny_configs(monkeypatch):
    """Make `crosshar.config.load` return the tiny configs for the packaged defaults, so that the
    stages that train with default configs (`cross`, `matrix`, the CLI) finish in seconds."""
    import crosshar.config as C

    real = C.load
    tiny = {"encoder": TINY_ENCODER, "pretrain": TINY_PRETRAIN, "finetune": TINY_FINETUNE,
            "cross": C.CrossConfig(head="linear", label_rate=0.5)}

    schedule = {"epochs", "stage1_epochs", "stage2_epochs", "batch_size"}

    def load(kind, path=None, recipe_name=None, **overrides):
        if path is None and kind in tiny:
            cfg = tiny[kind]
            table = {k: v for k, v in C.recipe(recipe_name).get(kind, {}).items() if k not in schedule}
            if table:  # a recipe's architecture and losses, on the tiny schedule
                cfg = type(cfg).from_dict(cfg.to_dict() | table)
            return cfg.replace(**overrides)
        return real(kind, path, recipe_name, **overrides)

    monkeypatch.setattr(C, "load", load)
    return tiny


# ---- your own data: a folder with crosshar.toml

CUSTOM_TOML = """name = "{name}"
rate_hz = 50
files = "*.csv"
acc_columns = ["ax", "ay", "az"]
gyro_columns = ["gx", "gy", "gz"]
acc_unit = "{acc_unit}"
label_column = "activity"
subject_from_filename = '^(?P<subject>P\\d+)_'
{extra}
[labels]
walk = "walking"
up = "upstairs"
down = "downstairs"
sit = "sitting"
stand = "standing"
idle = ""
"""
CUSTOM_CODES = {"walking": "walk", "upstairs": "up", "downstairs": "down", "sitting": "sit", "standing": "stand"}


def custom_csv(acc: np.ndarray, gyro: np.ndarray, labels: list[str]) -> str:
    lines = ["ax,ay,az,gx,gy,gz,activity"]
    for a, g, lab in zip(acc, gyro, labels):
        lines.append(",".join(f"{v:.5f}" for v in (*a, *g)) + f",{lab}")
    return "\n".join(lines) + "\n"


def custom_files(name: str = "mylab", subjects=(1, 2, 3), segment: int = SEGMENT, idle: int = 400,
                 acc_unit: str = "g", scale: float = 1.0, extra: str = "", seed: int = 2) -> dict[str, str]:
    """{logical path: text} of a custom dataset: one CSV per subject holding every activity once
    and an unlabelled ("idle") stretch, in g, with crosshar.toml."""
    rng = np.random.default_rng(seed)
    files = {"crosshar.toml": CUSTOM_TOML.format(name=name, acc_unit=acc_unit, extra=extra)}
    for s in subjects:
        accs, gyros, labels = [], [], []
        for act in ACTS:
            a, g = activity_signal(act, segment, rng, phase=float(rng.uniform(0, 1)))
            accs.append(a)
            gyros.append(g)
            labels += [CUSTOM_CODES[act]] * segment
        a, g = activity_signal("standing", idle, rng)
        accs.append(a)
        gyros.append(g)
        labels += ["idle"] * idle
        files[f"P{s:02d}_day1.csv"] = custom_csv(np.concatenate(accs) * scale, np.concatenate(gyros), labels)
    return files


def cut_finetuning_at(monkeypatch, epoch: int):
    """crosshar.train.finetune.train_one_epoch raising KeyboardInterrupt when it starts `epoch` (0-based): Ctrl-C in
    that epoch of a finetuning. Returns the real function."""
    import crosshar.train.finetune as fr

    real = fr.train_one_epoch

    def cut(model, X, y, tr, e, *a, **kw):
        if e == epoch:
            raise KeyboardInterrupt
        return real(model, X, y, tr, e, *a, **kw)

    monkeypatch.setattr(fr, "train_one_epoch", cut)
    return real

