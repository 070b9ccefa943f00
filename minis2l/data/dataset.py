"""Loading a built data set: :class:`NoteSet` (arrays, one split at a time) and the audio of
the notes, stored or re-rendered on demand (:class:`RenderedAudio`)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minis2l.data.build import build_dataset
from minis2l.data.cache import cache_problem
from minis2l.data.render import RenderSpec, render_int16
from minis2l.data.soundfonts import sha256
from minis2l.data.splits import SPLITS


class RenderedAudio:
    """The waveforms of a data set built without ``waveforms.npy``, rendered on demand.

    Behaves like the stored int16 array ``(N, samples)`` for reading: ``len``, ``shape``,
    ``dtype``, and indexing by an int (one note), a slice or an index array (a smaller
    :class:`RenderedAudio`, rendered when converted with ``np.asarray``). Rendering is
    deterministic, so a note sounds exactly as it did when its features were computed; the
    SoundFonts must still be where the build found them, with the same contents.
    """

    def __init__(self, rows: list[dict[str, str]], metadata: dict[str, Any]):
        self._rows = rows
        self._meta = metadata
        p = metadata["params"]
        self._spec = RenderSpec(
            p["sample_rate"], p["duration"], p["hold"], p["fade_in"], p["fade_out"],
            p["silence_dbfs"],
        )  # fmt: skip
        self._checked: set[str] = set()
        self.shape = (len(rows), self._spec.samples)
        self.dtype = np.dtype(np.int16)

    def __len__(self) -> int:
        return len(self._rows)

    def _soundfont(self, name: str) -> str:
        for path, record in zip(
            self._meta["soundfont_paths"], self._meta["params"]["soundfonts"], strict=True
        ):
            if record["name"] == name:
                if not Path(path).is_file():
                    raise FileNotFoundError(
                        f"SoundFont {name} is needed to re-render this note but is missing at "
                        f"{path}"
                    )
                if name not in self._checked:
                    if sha256(Path(path)) != record["sha256"]:
                        raise ValueError(f"SoundFont {path} changed since the data set was built")
                    self._checked.add(name)
                return path
        raise KeyError(f"no SoundFont named {name} in the data set's metadata")

    def _render(self, row: dict[str, str]) -> np.ndarray:
        wave = render_int16(
            self._soundfont(row["soundfont"]),
            int(row["program"]),
            int(row["pitch"]),
            int(row["velocity"]),
            self._spec,
        )
        if wave is None:
            raise ValueError(f"note {row['note_id']} rendered silent; the SoundFont changed")
        return wave

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            return self._render(self._rows[int(index)])
        picked = np.arange(len(self._rows))[index]
        return RenderedAudio([self._rows[i] for i in np.atleast_1d(picked)], self._meta)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.zeros(self.shape, np.int16)
        for i, row in enumerate(self._rows):
            out[i] = self._render(row)
        return out if dtype is None else out.astype(dtype)


@dataclass
class NoteSet:
    """A built data set (or one split of it) as arrays, row-aligned with ``manifest``.

    ``features``: ``(N, n_mels, frames)`` float16 log-mel; ``waveforms``: ``(N, samples)``
    int16 (divide by 32767 for [-1, 1]; a :class:`RenderedAudio` that renders notes on demand
    when the build did not store them); ``family``, ``pitch``, ``velocity``, ``program``:
    ``(N,)`` int64 labels (``family`` indexes :data:`FAMILIES`).
    """

    root: Path
    manifest: list[dict[str, str]]
    features: np.ndarray
    waveforms: np.ndarray | RenderedAudio
    metadata: dict[str, Any]
    family: np.ndarray = field(init=False)
    pitch: np.ndarray = field(init=False)
    velocity: np.ndarray = field(init=False)
    program: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        for name, col in (
            ("family", "family_index"),
            ("pitch", "pitch"),
            ("velocity", "velocity"),
            ("program", "program"),
        ):
            setattr(self, name, np.array([int(r[col]) for r in self.manifest], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.manifest)

    @property
    def sample_rate(self) -> int:
        """Audio sample rate in Hz."""
        return int(self.metadata["params"]["sample_rate"])

    def split(self, name: str) -> NoteSet:
        """The rows of one split (``"train"``, ``"valid"`` or ``"test"``), loaded in memory."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose from {', '.join(SPLITS)}")
        idx = np.array([i for i, r in enumerate(self.manifest) if r["split"] == name], dtype=int)
        return NoteSet(
            self.root,
            [self.manifest[i] for i in idx],
            np.asarray(self.features[idx]),
            self.waveforms[idx]
            if isinstance(self.waveforms, RenderedAudio)
            else np.asarray(self.waveforms[idx]),
            self.metadata,
        )


def _open(root: str | Path) -> tuple[Path, list[dict[str, str]], np.ndarray, Any, dict]:
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no data set at {root}; build one with `python -m minis2l data`")
    problem = cache_problem(root)
    if problem is not None:
        raise ValueError(f"the data set at {root} is damaged ({problem}); rebuild it")
    meta = json.loads((root / "metadata.json").read_text())
    with (root / "manifest.csv").open(newline="") as f:
        manifest = list(csv.DictReader(f))
    features = np.load(root / "features.npy", mmap_mode="r")
    if meta["params"]["store_audio"]:
        waveforms: Any = np.load(root / "waveforms.npy", mmap_mode="r")
    else:
        waveforms = RenderedAudio(manifest, meta)
    return root, manifest, features, waveforms, meta


def load_dataset(root: str | Path | None = None, **build_kwargs: Any) -> NoteSet:
    """Open a built data set; with no ``root``, build (or reuse) one first.

    ``build_kwargs`` go to :func:`build_dataset` (e.g. ``fast=True``, ``soundfont=...``).
    Arrays are memory-mapped; ``NoteSet.split("train")`` loads one split into memory.
    """
    if root is None:
        root = build_dataset(**build_kwargs)
    elif build_kwargs:
        raise ValueError("give either root or build arguments, not both")
    return NoteSet(*_open(root))
