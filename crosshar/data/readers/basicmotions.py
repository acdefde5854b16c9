"""BasicMotions (UEA multivariate archive): a smartwatch on the wrist, 4 activities, 10 Hz.

`BasicMotions_TRAIN.ts` and `BasicMotions_TEST.ts` (40 cases each) in the UEA/sktime `.ts` text
format: `#` comments, `@key value` header lines, `@data`, then one case per line: the 6
dimensions (acc x y z, then gyro x y z) separated by `:`, each a comma-separated series of 100
samples (10 s at 10 Hz), and the class label last. Each case becomes one Recording.

What the shipped values are (read off the real files, see tests/data/test_basicmotions.py):

- Acceleration is in m/s^2 with gravity REMOVED (a watch's "linear acceleration"): standing cases
  have a mean acc of about (-0.13, +0.09, +0.02) m/s^2 (per case 0.19 in size), where gravity
  would add 9.8 m/s^2 (or 1 g). m/s^2, not g: running reaches 23 m/s^2 with per-axis
  standard deviations up to 12, impossible as g on a wrist. Gravity cannot be restored (the
  orientation is unknown), so these Recordings break crosshar's "acc includes gravity" rule and
  say so with `extra["gravity_removed"] = True`; downstream code must not mix them with
  gravity-including data without removing gravity there too. Without gravity the sign convention
  (Android or iOS) cannot be told either; values are kept as shipped.
- Gyroscope in rad/s (running: mean |omega| per axis 2.4, plausible for a wrist in rad/s, not deg/s).
- The dataset has 4 subjects, but the files do not say which case is whose, so each case is its
  own subject ("basicmotions:train_07"): subject-wise splits are therefore not possible, and the
  TRAIN/TEST split is kept in `extra["split"]`.
"""

from __future__ import annotations

import numpy as np

from crosshar.data.base import BadRows, Dataset
from crosshar.data.io import DataFolder, Entry, iter_lines, read_bytes_or_report
from crosshar.data.recording import Recording
from crosshar.errors import DataError
from crosshar.registry import DATASETS

CLASSES: dict[str, str] = {
    "Standing": "standing", "Running": "running", "Walking": "walking", "Badminton": "badminton",
}
DIMENSIONS = 6  # acc x y z, gyro x y z
SPLITS: tuple[str, ...] = ("TRAIN", "TEST")


@DATASETS.register("basicmotions")
class BasicMotions(Dataset):
    """UEA BasicMotions smartwatch dataset (see module docstring for units and gravity)."""

    name = "basicmotions"
    title = "BasicMotions (UEA)"
    folders = ("basicmotions", "BasicMotions")
    layouts = "BasicMotions_TRAIN.ts and BasicMotions_TEST.ts (plain, .gz, or in BasicMotions.zip)"
    url = "https://timeseriesclassification.com/aeon-toolkit/BasicMotions.zip"
    sha256 = ""
    size = 0
    citation = (
        "A. Bagnall, H. A. Dau, J. Lines, M. Flynn, J. Large, A. Bostrom, P. Southam, E. Keogh. "
        "The UEA multivariate time series classification archive, 2018. arXiv:1811.00075. "
        "(BasicMotions: J. Clements, University of East Anglia.)"
    )
    device = "smartwatch"
    position = "wrist"
    rate = 10.0

    def _split_files(self, folder: DataFolder) -> dict[str, Entry]:
        out = {}
        for split in SPLITS:
            hits = folder.glob(f"*BasicMotions_{split}.ts")
            name = f"BasicMotions_{split}.ts"
            hits = [e for e in hits if e.logical == name or e.logical.endswith("/" + name)]
            if hits:
                out[split] = min(hits, key=lambda e: (len(e.logical), e.logical))
        return out

    def files(self, folder: DataFolder) -> list[Entry]:
        files = self._split_files(folder)
        if not files:
            raise self.no_files(folder, "BasicMotions")
        return list(files.values())

    def has_gyro(self, folder: DataFolder) -> bool:
        return True

    def load(self, folder: DataFolder, bad: BadRows) -> list[Recording]:
        files = self._split_files(folder)
        if not files:
            raise self.no_files(folder, "BasicMotions")
        recs = []
        for split, entry in files.items():
            for x, label, line, i in read_ts(folder, entry, bad):
                if label not in CLASSES:
                    bad(f"unknown class {label!r}; BasicMotions has {', '.join(CLASSES)}", entry.display(), line)
                    continue
                if x.shape[0] != DIMENSIONS:
                    bad(f"expected {DIMENSIONS} dimensions (acc x y z, gyro x y z), found {x.shape[0]}",
                        entry.display(), line)
                    continue
                sid = f"{split.lower()}_{i:02d}"
                recs.append(Recording(
                    acc=x[:3].T,
                    gyro=x[3:].T,
                    rate=self.rate,
                    labels=np.full(x.shape[1], CLASSES[label]),
                    subject=f"basicmotions:{sid}",
                    dataset=self.name,
                    source=f"{entry.display()}, line {line}",
                    device=self.device,
                    position=self.position,
                    session=sid,
                    extra={"gravity_removed": True, "split": split.lower()},
                ).validate())
        return recs


def read_ts(folder: DataFolder, entry: Entry, bad: BadRows) -> list[tuple[np.ndarray, str, int, int]]:
    """Cases of an equal-length, labelled UEA `.ts` file: [(x: (D, T) float64, label, line, case)].

    The case index counts every case line, bad ones included, so that indices match the file
    whatever was skipped. Unsupported variants (time stamps, unequal lengths, no class labels) are
    a DataError: they are not BasicMotions.
    """
    where = entry.display()
    header: dict[str, str] = {}
    cases: list[tuple[np.ndarray, str, int, int]] = []
    in_data = False
    n_cases = 0
    raw = read_bytes_or_report(entry, bad)  # a truncated .gz: reported, its cases skipped and the file listed
    if raw is None:
        return []
    for line_no, line in iter_lines(folder, entry, raw):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if not in_data:
            if not s.startswith("@"):
                raise DataError(f"expected a '@' header line or '#' comment before @data, got {s[:60]!r}", where, line_no)
            key, _, value = s[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                for k, ok in (("timestamps", "false"), ("equallength", "true")):
                    if header.get(k, ok).lower() != ok:
                        raise DataError(f"@{k} {header[k]} is not supported (BasicMotions has @{k} {ok})", where, line_no)
                if header.get("classlabel", "true").split()[0].lower() != "true":
                    raise DataError("the file has no class labels (@classLabel false)", where, line_no)
            elif key == "serieslength" and not value.strip().isdigit():
                raise DataError(f"@seriesLength must be a whole number, got {value.strip()!r}", where, line_no)
            else:
                header[key] = value.strip()
            continue
        case = n_cases
        n_cases += 1
        parts = s.split(":")
        label = parts[-1].strip()
        if "?" in s:
            bad(f"case {case}: missing values ('?') are not supported", where, line_no)
            continue
        try:
            x = np.array([[float(v) for v in dim.split(",")] for dim in parts[:-1]], dtype=np.float64)
        except ValueError as e:
            bad(f"case {case}: {e} (a case is dimensions separated by ':', each comma-separated numbers, "
                "then the class label)", where, line_no)
            continue
        length = header.get("serieslength")
        if x.ndim != 2 or x.shape[0] == 0 or (length and x.shape[1] != int(length)):
            lens = sorted({len(dim.split(",")) for dim in parts[:-1]})
            bad(f"case {case}: dimensions must all have {length or 'the same number of'} samples, found "
                f"{', '.join(map(str, lens))}", where, line_no)
            continue
        if not np.isfinite(x).all():
            bad(f"case {case}: NaN or infinite values", where, line_no)
            continue
        cases.append((x, label, line_no, case))
    if not in_data:
        raise DataError("no @data line: not a .ts file", where)
    return cases
