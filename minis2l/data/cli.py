"""``python -m minis2l data``: build a data set from the command line and summarize it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from minis2l.data.build import build_dataset
from minis2l.data.programs import FAMILIES, POOL_PITCHES, parse_int_list
from minis2l.data.soundfonts import pool_soundfonts
from minis2l.data.splits import SPLITS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``python -m minis2l data``."""
    parser.add_argument(
        "--soundfont",
        metavar="PATH",
        action="append",
        help="a .sf2/.sf3 General MIDI SoundFont (repeat for several; default: pretty_midi's "
        "TimGM6mb.sf2)",
    )
    parser.add_argument(
        "--pool",
        action="store_true",
        help="every General MIDI SoundFont the project installs (TimGM6mb, Merlin, MuseScore "
        "General, the csound GM bank; missing ones are skipped with a message), plus any "
        "--soundfont",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="output directory (default: data/cache/notes-...)"
    )
    parser.add_argument("--seed", metavar="S", type=int, default=0, help="split seed (default 0)")
    parser.add_argument(
        "--programs", metavar="LIST", help="General MIDI programs, e.g. 0-7,40 (default: all kept)"
    )
    parser.add_argument(
        "--families",
        metavar="LIST",
        help=f"families to keep, comma-separated: {','.join(FAMILIES)}",
    )
    parser.add_argument(
        "--pitches",
        metavar="LIST",
        help="MIDI pitches, e.g. 24-108:4 (the default; 24-108:2 with --pool) or 60,64,67",
    )
    parser.add_argument("--velocities", metavar="LIST", help="MIDI velocities (default 64,127)")
    parser.add_argument("--workers", metavar="N", type=int, help="rendering processes")
    parser.add_argument("--force", action="store_true", help="rebuild even if the cache matches")


def run(args: argparse.Namespace) -> int:
    """Build the data set from parsed arguments; print a summary. Returns the exit status."""
    try:
        kwargs: dict[str, Any] = {}
        if args.programs is not None:
            kwargs["programs"] = parse_int_list(args.programs, "program")
        if args.families is not None:
            kwargs["families"] = [f.strip() for f in args.families.split(",") if f.strip()]
            if not kwargs["families"]:
                raise ValueError("empty family selection")
        if args.pitches is not None:
            kwargs["pitches"] = parse_int_list(args.pitches, "pitch")
        if args.velocities is not None:
            kwargs["velocities"] = parse_int_list(args.velocities, "velocity")
        soundfonts = list(args.soundfont or [])
        if args.pool:
            soundfonts = [*pool_soundfonts(), *soundfonts]
            kwargs.setdefault("pitches", list(POOL_PITCHES))
        start = time.perf_counter()
        root = build_dataset(
            out=args.out,
            soundfont=soundfonts or None,
            seed=args.seed,
            workers=args.workers,
            force=args.force,
            progress=True,
            **kwargs,
        )
        elapsed = time.perf_counter() - start
        meta = json.loads((root / "metadata.json").read_text())
    except (ValueError, OSError) as exc:
        print(f"minis2l data: error: {exc}", file=sys.stderr)
        return 1
    print(summary(meta, root, elapsed))
    return 0


def summary(meta: dict[str, Any], root: Path | str, elapsed: float | None = None) -> str:
    """A text table: notes (instruments) per family and split, and the dropped renders."""
    c = meta["counts"]
    sfs = meta["params"]["soundfonts"]
    names = ", ".join(f"{sf['name']} sha256:{sf['sha256'][:12]}" for sf in sfs)
    took = f" in {elapsed:.1f} s" if elapsed is not None else ""
    lines = [
        f"{c['notes']} notes from {c['instruments']} instruments ({names}){took} -> {root}",
        f"(build took {meta['build_seconds']:.1f} s, {meta['notes_per_second']:.0f} notes/s; "
        "notes as 'notes (instruments)')",
        f"{'family':<12}" + "".join(f"{s:>14}" for s in SPLITS),
    ]
    nf, inf = c["notes_per_family_split"], c["instruments_per_family_split"]
    for fam in FAMILIES:
        cells = [f"{nf[s][fam]} ({inf[s][fam]})" for s in SPLITS]
        lines.append(f"{fam:<12}" + "".join(f"{cell:>14}" for cell in cells))
    totals = [f"{c['notes_per_split'][s]} ({sum(inf[s].values())})" for s in SPLITS]
    lines.append(f"{'total':<12}" + "".join(f"{cell:>14}" for cell in totals))
    lines.append(f"dropped renders (silent or nearly silent): {c['dropped']} of {c['attempted']}")
    return "\n".join(lines)
