"""What to render: the General MIDI program -> NSynth family table, and the selections.

``data/gm_families.csv`` maps each of the 128 General MIDI programs to one of NSynth's 11
instrument families, or leaves it out with a written reason (sound effects, drums, pads,
ambiguous instruments). The helpers below check a selection of programs, families, pitches and
velocities and name the first bad value.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from minis2l.config import REPO_ROOT

#: NSynth's instrument families, in NSynth's order; ``family_index`` indexes this tuple.
FAMILIES: tuple[str, ...] = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "synth_lead",
    "vocal",
)
FAMILY_TABLE = REPO_ROOT / "data" / "gm_families.csv"
#: MIDI pitches of the default (one-SoundFont) set: every 4 semitones from C1 to C8, inside
#: NSynth's 21-108 (a program silent at a pitch, outside its playable range, is dropped there).
FULL_PITCHES = tuple(range(24, 109, 4))
#: MIDI pitches of the SoundFont pool (``python -m minis2l data --pool``): every 2 semitones.
POOL_PITCHES = tuple(range(24, 109, 2))
FAST_PITCHES = (36, 48, 60, 72, 84)
VELOCITIES = (64, 127)


def family_table(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Read the General MIDI program -> NSynth family table (128 rows).

    Each row is ``{"program": int, "name": str, "family": str, "reason": str}``; ``family`` is
    ``""`` for a program left out (sound effects, drums, pads, ambiguous instruments) and then
    ``reason`` says why; for kept programs ``reason`` may note a judgement call.
    """
    path = Path(path) if path is not None else FAMILY_TABLE
    if not path.is_file():
        raise FileNotFoundError(f"family table not found: {path}")
    with path.open(newline="") as f:
        rows = [
            {
                "program": int(r["program"]),
                "name": r["name"],
                "family": r["family"],
                "reason": r["reason"],
            }
            for r in csv.DictReader(f)
        ]
    return rows


def program_families() -> dict[int, str]:
    """``{program: family}`` for the programs the table keeps."""
    return {r["program"]: r["family"] for r in family_table() if r["family"]}


def parse_int_list(text: str, what: str = "value") -> list[int]:
    """Parse ``"0-7,40,56-63"`` or ``"24-108:4"`` (a range with a step) into a sorted list.

    Raises:
        ValueError: on an empty or malformed specification, naming ``what``.
    """
    out: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(-?\d+)(?:-(-?\d+))?(?::(\d+))?", part)
        if m is None or (m.group(3) is not None and (m.group(2) is None or int(m.group(3)) < 1)):
            raise ValueError(f"bad {what} specification {text!r} (use e.g. 0-7,40 or 24-108:4)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"bad {what} range {part!r}: {hi} < {lo}")
        out.update(range(lo, hi + 1, int(m.group(3) or 1)))
    if not out:
        raise ValueError(f"empty {what} selection {text!r}")
    return sorted(out)


def select_programs(
    programs: Iterable[int] | None, families: Iterable[str] | None, fast: bool
) -> list[int]:
    """The kept programs among ``programs`` (default: all) in ``families`` (default: all).

    Fast mode with no explicit ``programs`` keeps 4 programs per family, spread over it.
    """
    table = program_families()
    if families is not None:
        families = list(families)
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
    if programs is not None:
        programs = [int(p) for p in programs]
        bad = [p for p in programs if not 0 <= p <= 127]
        if bad:
            raise ValueError(f"program {bad[0]} is outside the General MIDI range 0-127")
        chosen = sorted({p for p in programs if p in table})
    else:
        chosen = sorted(table)
        if fast:  # up to four programs per family, spread over the family's programs
            keep = []
            for fam in FAMILIES:
                members = [p for p in chosen if table[p] == fam]
                n = len(members)
                keep.extend({members[i * (n - 1) // 3] for i in range(4)} if members else [])
            chosen = sorted(keep)
    if families is not None:
        chosen = [p for p in chosen if table[p] in families]
    if not chosen:
        raise ValueError(
            "empty program selection: no selected program has a family in data/gm_families.csv"
        )
    return chosen


def _check_midi(values: Iterable[int], what: str, lo: int) -> list[int]:
    """Sorted unique ints in ``lo``-127; ValueError naming ``what`` when empty or out of range."""
    values = sorted({int(v) for v in values})
    if not values:
        raise ValueError(f"empty {what} selection")
    bad = [v for v in values if not lo <= v <= 127]
    if bad:
        raise ValueError(f"{what} {bad[0]} is outside the MIDI range {lo}-127")
    return values


def check_pitches(pitches: Iterable[int]) -> list[int]:
    """Sorted unique MIDI pitches; ValueError on an empty selection or a key outside 0-127."""
    return _check_midi(pitches, "pitch", 0)


def check_velocities(velocities: Iterable[int]) -> list[int]:
    """Sorted unique velocities; ValueError on an empty selection or a value outside 1-127."""
    return _check_midi(velocities, "velocity", 1)
