"""The audio modality's loader: a note data set as :class:`~minis2l.items.Items`.

The edge between :mod:`minis2l.data` and the rest of the library. :func:`load_notes` opens a
built data set (or builds one) and hands on each split's log-mels ``(N, 64, 63)`` with two
label tasks, ``family`` (the supervised one) and ``pitch``; :func:`describe_notes` says in one
line what a study ran on. :mod:`minis2l.modality` lists them as the ``audio`` modality.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from minis2l.data.build import build_dataset
from minis2l.data.dataset import load_dataset
from minis2l.data.soundfonts import pool_soundfonts
from minis2l.items import SPLITS, Items

#: The MIDI pitches a study renders: ``range(*PITCH_SPAN, pitch_step)``.
PITCH_SPAN = (24, 109)


def resolve_soundfonts(spec: str | list[str]) -> list[str] | None:
    """The SoundFont paths of a study's ``soundfonts`` setting (None: the default one).

    ``spec``: ``"pool"`` (every installed pool SoundFont), ``"pool:N"`` (the first N of the
    pool), ``"default"`` (pretty_midi's TimGM6mb) or a list of paths.
    """
    if isinstance(spec, list):
        return [str(p) for p in spec]
    if spec == "default":
        return None
    if spec == "pool":
        return [str(p) for p in pool_soundfonts()]
    if isinstance(spec, str) and spec.startswith("pool:") and spec[5:].isdigit():
        return [str(p) for p in pool_soundfonts()[: int(spec[5:])]]
    raise ValueError(f"soundfonts must be 'pool', 'pool:N', 'default' or a list, got {spec!r}")


def load_notes(
    data: str | Path | None = None,
    *,
    fast: bool = False,
    progress: bool = False,
    verbose: bool = True,
    soundfont: str | None = None,
    soundfonts: str | list[str] | None = None,
    pitch_step: int | None = None,
) -> Items:
    """The notes of a built data set ``data`` as items; with no ``data``, build (or reuse) one.

    Building takes ``soundfont`` (one path) or ``soundfonts`` (see :func:`resolve_soundfonts`;
    it wins over ``soundfont``; default: TimGM6mb) and ``pitch_step``, the semitones between
    rendered pitches (1-12; default, and always in ``fast`` mode: the data set's own pitches).
    ``metadata["data"]`` is the data set's directory, which loads the same notes again.
    """
    if data is None:
        sf = soundfont if soundfonts is None else resolve_soundfonts(soundfonts)
        pitches = None
        if pitch_step is not None:
            if not 1 <= pitch_step <= 12:
                raise ValueError(f"pitch_step must be 1-12 semitones, got {pitch_step}")
            pitches = None if fast else range(*PITCH_SPAN, pitch_step)
        data = build_dataset(
            soundfont=sf, pitches=pitches, fast=fast, progress=progress, verbose=verbose
        )
    notes = load_dataset(data)
    inputs, labels = {}, {}
    for split in SPLITS:
        part = notes.split(split)
        inputs[split] = np.asarray(part.features, dtype=np.float32)
        labels[split] = {"family": part.family, "pitch": part.pitch}
    meta = notes.metadata
    metadata = {
        "modality": "audio",
        "data": str(notes.root),
        "soundfonts": meta["params"]["soundfonts"],
        "notes": len(notes),
        "notes_per_split": meta["counts"]["notes_per_split"],
    }
    fingerprint = (Path(notes.root) / "metadata.json").read_text()
    return Items(inputs, labels, fingerprint, metadata)


def describe_notes(config: dict[str, Any]) -> str:
    """One line on the notes a study ran on, from its results' ``config``."""
    names = ", ".join(s["name"] for s in config.get("soundfonts", []))
    return (
        f"{config.get('notes', '?')} notes from {names or '?'}; test split = instruments never "
        "seen in training"
    )
