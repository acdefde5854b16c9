"""Fetch a dataset's public archive, check it, and unpack it into the data folder."""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable

from crosshar.data.base import Dataset
from crosshar.atomic import atomic_write_json
from crosshar.errors import DataError

RECORD = ".crosshar-downloads.json"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def _fetch(src: str, dest: Path, progress: Callable[[int, int], None] | None) -> None:
    p = Path(src[7:] if src.startswith("file://") else src)
    if p.is_file():
        shutil.copyfile(p, dest)
        return
    if "://" not in src:
        raise DataError("no such file, and not a URL", src)
    try:
        with urllib.request.urlopen(src, timeout=60) as r, open(dest, "wb") as f:
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            while chunk := r.read(1 << 20):
                f.write(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
    except OSError as e:
        raise DataError(f"download failed ({e}); fetch it by hand and pass --from PATH", src) from None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def download(ds: Dataset, data_dir: Path, src: str | None = None,
             progress: Callable[[int, int], None] | None = None) -> dict:
    """Download (or copy from `src`) the dataset's archive, verify, unpack into data_dir/<folder>.

    Size and SHA-256 are checked when the dataset declares them; otherwise they are recorded in
    data_dir/.crosshar-downloads.json so a later download can be compared with this one.
    Returns a report dict (path, size, sha256, verified).
    """
    src = src or ds.url
    if not src:
        raise DataError(f"dataset {ds.name!r} has no official download address; pass --from PATH_OR_URL")
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / ds.folders[0]
    record_path = data_dir / RECORD
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        arc = Path(tmp) / Path(src.split("?")[0]).name
        _fetch(src, arc, progress)
        size, digest = arc.stat().st_size, sha256_of(arc)
        expected_sha = ds.sha256 if src == ds.url else ""
        expected_size = ds.size if src == ds.url else 0
        if expected_size and size != expected_size:
            raise DataError(f"size {size} bytes differs from the expected {expected_size}", src)
        if expected_sha and digest != expected_sha:
            raise DataError(f"SHA-256 {digest} differs from the expected {expected_sha}", src)
        prev = record.get(ds.name, {}).get(src)
        if prev and prev["sha256"] != digest:
            raise DataError(f"SHA-256 {digest} differs from the one recorded at the last download "
                            f"({prev['sha256']}) in {record_path}", src)
        staging = Path(tmp) / "unpacked"
        staging.mkdir()
        if zipfile.is_zipfile(arc):
            with zipfile.ZipFile(arc) as z:
                for m in z.namelist():
                    if m.startswith("/") or ".." in Path(m).parts:
                        raise DataError(f"archive member with an unsafe path: {m}", src)
                z.extractall(staging)
        elif tarfile.is_tarfile(arc):
            try:
                with tarfile.open(arc) as t:
                    t.extractall(staging, filter="data")
            except tarfile.TarError as e:  # e.g. a member outside the destination, or a device file
                raise DataError(f"archive member with an unsafe path or type ({e})", src) from None
        elif arc.name.lower().endswith(ARCHIVE_SUFFIXES):  # named as an archive, but none: a damaged download, an
            raise DataError("not a readable zip or tar archive, though named as one (a damaged or partial download, "
                            "or an error page saved under the archive's name?)", src)
        else:  # an archive format Python cannot unpack (Shoaib's .rar): kept as it came, for the user to unpack
            shutil.copyfile(arc, staging / arc.name)
        target.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            dest = target / item.name
            if dest.exists():
                shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
            shutil.move(str(item), dest)
    record.setdefault(ds.name, {})[src] = {"size": size, "sha256": digest}
    atomic_write_json(record_path, record)
    return {"dataset": ds.name, "source": src, "folder": str(target), "size": size, "sha256": digest,
            "verified": bool(expected_sha or expected_size)}
