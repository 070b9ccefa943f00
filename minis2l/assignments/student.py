"""The student edition: every notebook without its solutions, for a learner working alone.

``python -m minis2l student [--out DIR] [--force]`` writes, by default to ``student/`` at the
repository root (git-ignored), the student version of every notebook
(:func:`minis2l.assignments.stubs.student_notebook`: the same cells as nbgrader's release, made
without a course directory or gradebook). ``make lab`` builds it when missing or stale and opens
JupyterLab there.

A learner's work is never lost. The folder keeps a manifest, ``.minis2l-student.json``, with the
SHA-256 of every file this command wrote. On a rebuild, a notebook is

- written when missing;
- left alone when it already holds the current edition;
- refreshed when the learner has not changed it (its hash is the recorded one) and the source
  changed;
- otherwise kept as the learner left it. If the edition changed since, the new one is written
  beside it as ``<stem>.fresh.ipynb`` (``<stem>.fresh-2.ipynb``, ... when the learner has changed
  that one too) and the command says so. With ``--force`` the learner's notebook is first moved
  to ``<stem>.backup.ipynb`` (or ``.backup-2``, ...), then replaced by the current edition.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

from minis2l.assignments.exercises import (
    DEFAULT_NOTEBOOKS,
    AssignmentError,
    Log,
    list_notebooks,
    load_notebook,
)
from minis2l.assignments.stubs import student_notebook
from minis2l.config import REPO_ROOT

DEFAULT_STUDENT = REPO_ROOT / "student"
MANIFEST = ".minis2l-student.json"
UP_TO_DATE = "up to date"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_manifest(folder: Path) -> dict[str, str]:
    """File name -> SHA-256 of what the student command last wrote there (empty if none).

    An unreadable manifest counts as empty, so every existing notebook is treated as the
    learner's and kept.
    """
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def edition(notebooks_dir: Path | str = DEFAULT_NOTEBOOKS) -> dict[str, bytes]:
    """The student edition in memory: notebook file name -> its ``.ipynb`` bytes.

    Raises:
        AssignmentError: no notebooks, or a notebook whose exercises break the format.
    """
    import nbformat

    out = {}
    for path in list_notebooks(notebooks_dir):
        nb = student_notebook(load_notebook(path), name=path.name)
        out[path.name] = (nbformat.writes(nb) + "\n").encode("utf-8")
    return out


def _ours(path: Path, manifest: dict[str, str]) -> bool:
    """True when ``path`` is missing or holds exactly what this command last wrote there."""
    if not path.exists():
        return True
    return manifest.get(path.name) == _sha256(path.read_bytes())


def _free(folder: Path, stem: str, tag: str, usable: Callable[[Path], bool]) -> Path:
    """The first of ``<stem>.<tag>.ipynb``, ``<stem>.<tag>-2.ipynb``, ... that is ``usable``."""
    k = 1
    while True:
        path = folder / f"{stem}.{tag}{'' if k == 1 else f'-{k}'}.ipynb"
        if usable(path):
            return path
        k += 1


def _place(
    folder: Path, name: str, data: bytes, manifest: dict[str, str], force: bool
) -> tuple[Path | None, str]:
    """Decide where the edition of notebook ``name`` goes; move the learner's copy if forced.

    Returns:
        (path to write ``data`` to, or None to write nothing; what happened, for the log).
    """
    dest = folder / name
    digest = _sha256(data)
    if not dest.exists():
        return dest, "written"
    current = dest.read_bytes()
    if current == data:
        return None, UP_TO_DATE
    if manifest.get(name) == _sha256(current):
        return dest, "refreshed (the notebook changed)"
    stem = Path(name).stem
    if force:
        backup = _free(folder, stem, "backup", lambda p: not p.exists())
        dest.rename(backup)
        return dest, f"replaced; your version is now {backup.name}"
    if manifest.get(name) == digest:
        return None, "kept your changes (the edition has not changed since)"
    fresh = _free(folder, stem, "fresh", lambda p: _ours(p, manifest) or p.read_bytes() == data)
    return fresh, f"kept your changes; the new edition is beside it: {fresh.name}"


def build_student_edition(
    out: Path | str = DEFAULT_STUDENT,
    notebooks_dir: Path | str = DEFAULT_NOTEBOOKS,
    *,
    force: bool = False,
    log: Log | None = None,
) -> dict[str, Path]:
    """Write or refresh the student edition in ``out`` without overwriting a learner's work.

    Args:
        out: the student folder (created if missing).
        notebooks_dir: where the source notebooks are.
        force: replace notebooks the learner changed; each is first moved to
            ``<stem>.backup.ipynb`` (never deleted).
        log: called with one progress line at a time (default: print nothing).

    Returns:
        Notebook file name -> the file that now holds its current edition (the notebook itself,
        or the ``.fresh`` copy beside a notebook the learner changed).

    Raises:
        AssignmentError: missing notebooks directory, no notebooks, or a notebook whose
            exercises break the format; nothing is written then.
    """
    say = log or (lambda _msg: None)
    fresh = edition(notebooks_dir)  # everything is checked before anything is written
    folder = Path(out).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    say(f"student edition in {folder} ({len(fresh)} notebooks from {notebooks_dir})")
    where: dict[str, Path] = {}
    for name, data in fresh.items():
        target, what = _place(folder, name, data, manifest, force)
        if target is not None:
            target.write_bytes(data)
            manifest[target.name] = _sha256(data)
        elif what == UP_TO_DATE:  # ours again, even if the manifest had lost it
            manifest[name] = _sha256(data)
        where[name] = target or folder / name
        say(f"  {name}: {what}")
    (folder / MANIFEST).write_text(
        json.dumps({"files": dict(sorted(manifest.items()))}, indent=1) + "\n", encoding="utf-8"
    )
    return where


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``student`` subcommand's options to ``parser``."""
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=DEFAULT_STUDENT,
        help="folder of the student edition (default: student/ at the repository root)",
    )
    parser.add_argument(
        "--notebooks",
        metavar="DIR",
        type=Path,
        default=DEFAULT_NOTEBOOKS,
        help="where the source notebooks are (default: notebooks/ at the repository root)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace notebooks you changed with the current edition; yours are kept as "
        "<name>.backup.ipynb",
    )


def run(args: argparse.Namespace) -> int:
    """Write the student edition; print what happened to each notebook; return the status."""
    try:
        folder = Path(args.out).resolve()
        build_student_edition(folder, args.notebooks, force=args.force, log=print)
    except AssignmentError as err:
        print(f"minis2l student: error: {err}", file=sys.stderr)
        return 1
    print(f"open it with: make lab (or: jupyter lab {folder})")
    return 0
