"""Run-time settings shared by the library, the command line and the notebooks.

Fast mode (``MINIS2L_FAST=1`` in the environment, or ``--fast`` on the command line) shrinks
data sets and epochs so that every notebook and command finishes in seconds, for CI and for a
quick look. Unset, everything runs at full size and gives the real result. :data:`REPO_ROOT`
is the checkout the package runs from (its ``data/``, ``notebooks/`` and ``results/``).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

#: The repository the package runs from (the folder holding ``minis2l/``).
REPO_ROOT = Path(__file__).resolve().parents[1]


def repo_relative(path: str | Path) -> str:
    """``path`` relative to :data:`REPO_ROOT` when it lies inside the repository, else as given.

    Results that are committed record paths this way, so they name no machine's folders.
    """
    resolved = Path(path).resolve()
    if resolved.is_relative_to(REPO_ROOT):
        return resolved.relative_to(REPO_ROOT).as_posix()
    return str(path)


FAST_ENV = "MINIS2L_FAST"
_TRUE = {"1", "true", "yes", "on"}


def fast_mode() -> bool:
    """Return True when ``MINIS2L_FAST`` is set to 1/true/yes/on (case-insensitive)."""
    return os.environ.get(FAST_ENV, "").strip().lower() in _TRUE


def set_fast_mode(enabled: bool = True) -> None:
    """Turn fast mode on or off for this process and the processes it starts."""
    if enabled:
        os.environ[FAST_ENV] = "1"
    else:
        os.environ.pop(FAST_ENV, None)


def pick(full, fast):
    """Return ``fast`` in fast mode and ``full`` otherwise: ``epochs = pick(30, 2)``."""
    return fast if fast_mode() else full


def default_device(requested: str = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA, then Apple MPS, then CPU; check an explicit request.

    Raises:
        ValueError: when the requested device is unknown or not available on this machine.
    """
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("device 'cuda' requested but torch sees no CUDA GPU")
        return torch.device("cuda")
    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' requested but Apple MPS is not available")
        return torch.device("mps")
    raise ValueError(f"unknown device {requested!r}; use auto, cpu, cuda or mps")
