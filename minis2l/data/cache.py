"""The cache: a built data set on disk, checked on every open, written atomically.

A data set directory holds ``manifest.csv`` (one row per note), ``features.npy`` (float16
log-mels), optionally ``waveforms.npy`` (int16 audio; large pools leave it out and re-render a
note on demand) and ``metadata.json`` (every parameter, SoundFont checksums, counts, and the
size and SHA-256 of each array file). :func:`cache_problem` checks all of it, contents
included, so a file changed in place is noticed, not only one that changed size.

Builds are atomic: the files are written into a temporary directory beside the target
(``.NAME.tmp-PID-...``), which is renamed into place at the end. A build killed at any moment
leaves at most such a temporary directory behind; the next build in the same parent directory
removes every one whose process is gone (:func:`clear_stale`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from minis2l.config import REPO_ROOT

FORMAT_VERSION = 2
MANIFEST_COLUMNS = (
    "note_id",
    "split",
    "program",
    "instrument",
    "family",
    "family_index",
    "pitch",
    "velocity",
    "soundfont",
    "program_name",
)
ARRAY_FILES = ("features.npy", "waveforms.npy")
_TEMP = re.compile(r"^\..+\.(?:tmp|old)-(\d+)-")


def default_cache_dir(params: dict[str, Any], fast: bool) -> Path:
    """``data/cache/notes-{fast|full}-<hash of the parameters>`` under the repository."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return REPO_ROOT / "data" / "cache" / f"notes-{'fast' if fast else 'full'}-{digest}"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's contents (hex)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def file_records(root: Path) -> dict[str, dict[str, Any]]:
    """``{name: {"bytes", "sha256"}}`` for the array files present in ``root``."""
    return {
        name: {"bytes": (root / name).stat().st_size, "sha256": file_digest(root / name)}
        for name in ARRAY_FILES
        if (root / name).exists()
    }


def cache_problem(root: Path, params: dict[str, Any] | None = None) -> str | None:
    """None when ``root`` holds a complete, consistent cache (for ``params`` if given).

    Otherwise a short description of the first problem found: missing or unreadable
    metadata, another format version or other parameters, a manifest that does not match,
    an array of the wrong shape, size or contents.
    """
    try:
        meta = json.loads((root / "metadata.json").read_text())
    except FileNotFoundError:
        return "metadata.json is missing"
    except (OSError, ValueError) as exc:
        return f"metadata.json is unreadable ({exc})"
    if not isinstance(meta, dict) or meta.get("params", {}).get("format") != FORMAT_VERSION:
        return "it has another format version"
    if params is not None and meta["params"] != params:
        return "it was built with other parameters"
    try:
        n = int(meta["counts"]["notes"])
        with (root / "manifest.csv").open(newline="") as f:
            reader = csv.reader(f)
            header = next(reader)
            rows = sum(1 for _ in reader)
        if tuple(header) != MANIFEST_COLUMNS or rows != n:
            return "manifest.csv does not match metadata.json"
        p = meta["params"]
        samples = int(round(p["duration"] * p["sample_rate"]))
        frames = 1 + samples // p["features"]["hop_length"]
        expect = {"features.npy": ((n, p["features"]["n_mels"], frames), np.float16)}
        if p["store_audio"]:
            expect["waveforms.npy"] = ((n, samples), np.int16)
        if set(meta["files"]) != set(expect):
            return "metadata.json lists other files"
        for name, (shape, dtype) in expect.items():
            arr = np.load(root / name, mmap_mode="r")
            if arr.shape != shape or arr.dtype != dtype:
                return f"{name} has shape {arr.shape} {arr.dtype}, expected {shape}"
            record = meta["files"][name]
            if (root / name).stat().st_size != record["bytes"]:
                return f"{name} has the wrong size"
            if file_digest(root / name) != record["sha256"]:
                return f"{name} has changed since it was written (checksum mismatch)"
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as exc:
        return f"a file is unreadable ({type(exc).__name__}: {exc})"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clear_stale(parent: Path) -> list[Path]:
    """Remove temporary build directories in ``parent`` left by processes that are gone."""
    removed = []
    if not parent.is_dir():
        return removed
    for path in parent.iterdir():
        m = _TEMP.match(path.name)
        if m and path.is_dir() and not _alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def write_atomically(out: Path, fill: Callable[[Path], None]) -> None:
    """Build into a temporary directory beside ``out`` and move it into place at the end.

    Stale temporary directories of killed builds in the same parent are removed first. If
    ``fill`` raises, the temporary directory is removed and an existing ``out`` is kept.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    clear_stale(out.parent)
    pid = os.getpid()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{pid}-", dir=out.parent))
    try:
        fill(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{pid}-", dir=out.parent))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
