""":func:`run_study`: load the data, run every encoder's job, assemble and write the results."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from minis2l import __version__
from minis2l.config import REPO_ROOT, repo_relative
from minis2l.io import atomic_write, save_json
from minis2l.items import Items
from minis2l.study.assemble import assemble
from minis2l.study.config import METHODS, PROBE_FRACTIONS, StudyConfig
from minis2l.study.plots import plot_results
from minis2l.study.report import results_markdown
from minis2l.study.runner import load_data, run_jobs


def code_version() -> str:
    """``minis2l <version>`` and, in a git checkout, the commit (``+dirty`` if modified)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "minis2l"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", ""
    version = f"minis2l {__version__}"
    return f"{version} (git {commit[:12]}{'+dirty' if dirty else ''})" if commit else version


def record_run(results: dict[str, Any], items: Items, command: str, t0: float) -> None:
    """Add to ``results["config"]`` the data's metadata (its path relative to the repository),
    ``command``, :func:`code_version` and the seconds since ``t0`` (``time.perf_counter``)."""
    results["config"] |= {k: v for k, v in items.metadata.items() if k != "modality"}
    if results["config"].get("data") is not None:
        results["config"]["data"] = repo_relative(results["config"]["data"])
    results["config"] |= {
        "command": command,
        "code_version": code_version(),
        "seconds": time.perf_counter() - t0,
    }


def _command(cfg: StudyConfig) -> str:
    """The command line that ran the study, or the call when it ran from Python."""
    if Path(sys.argv[0]).name in ("__main__.py", "minis2l"):
        return " ".join(["python -m minis2l", *sys.argv[1:]])
    return f"minis2l.study.run_study(StudyConfig.for_scale({cfg.scale!r}))"


def run_study(
    cfg: StudyConfig, out: str | Path, *, progress: bool = False, workers: int = 1
) -> dict[str, Any]:
    """Run the study described in :mod:`minis2l.study`; write and return the results.

    Each encoder's result is saved in ``out/runs/<method>-<patches>-<seed>/result.pt`` as soon
    as it is done, so a killed study resumes where it stopped when run again with the same
    configuration and data. ``workers`` > 1 starts that many processes (one CPU thread share
    each) that take the encoders from the same list; this process then assembles the results.
    """
    if list(cfg.methods) != list(METHODS) or list(cfg.probe_fractions) != list(PROBE_FRACTIONS):
        raise ValueError(
            f"the study compares all of {METHODS} with probes on {PROBE_FRACTIONS} of the labels; "
            "for fewer, run the permutation sweep (minis2l.study.permutations)"
        )
    out = Path(out)
    t0 = time.perf_counter()
    items = load_data(cfg, progress)  # before anything is written: bad data writes nothing
    out.mkdir(parents=True, exist_ok=True)
    done = run_jobs(cfg, out, items, progress=progress, workers=workers)
    results = assemble(cfg, done, items)
    record_run(results, items, _command(cfg), t0)
    save_json(out / "results.json", results)
    markdown = results_markdown(results)
    atomic_write(out / "results.md", lambda p: p.write_text(markdown))
    plot_results(results, out)
    return results
