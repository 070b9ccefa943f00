"""An NSynth-style data set of musical notes, rendered offline from General MIDI SoundFonts.

NSynth (Engel et al., 2017) was made by rendering single notes of sampled instruments; this
package does the same on the learner's own machine, with no download. One module per stage,
each readable alone, data flowing down the list:

* :mod:`~minis2l.data.programs` - which General MIDI programs (and their NSynth family),
  pitches and velocities to render;
* :mod:`~minis2l.data.soundfonts` - the SoundFonts: the default ``TimGM6mb.sf2`` (inside
  ``pretty_midi``), the pool of every General MIDI SoundFont the project installs, checks;
* :mod:`~minis2l.data.render` - one note to one second of audio with ``tinysoundfont``;
* :mod:`~minis2l.data.features` - the log-mel spectrogram;
* :mod:`~minis2l.data.splits` - instrument-disjoint train / valid / test;
* :mod:`~minis2l.data.cache` - the on-disk format, checked on open, written atomically;
* :mod:`~minis2l.data.tasks` - the rendering work, one task per (SoundFont, program), run in
  worker processes;
* :mod:`~minis2l.data.build` - :func:`build_dataset`, which runs all of the above;
* :mod:`~minis2l.data.dataset` - :func:`load_dataset`: a :class:`NoteSet` of arrays;
* :mod:`~minis2l.data.cli` - ``python -m minis2l data``.

A built data set is a directory with ``manifest.csv`` (one row per note: ``note_id, split,
program, instrument, family, family_index, pitch, velocity, soundfont, program_name``),
``features.npy`` (float16 log-mels ``(notes, 64, 63)``), ``waveforms.npy`` (int16 audio, left
out for large pools and re-rendered on demand) and ``metadata.json`` (parameters, SoundFont
checksums, counts, dropped renders, file checksums). Default notes: 16 kHz, 1 s, pitches MIDI
24-108 every 4 semitones (every 2 for the pool) at velocities 64 and 127; fast mode
(``MINIS2L_FAST=1``) keeps 4 programs per family (3 vocal) and 5 pitches (36-84 every 12) and
builds in about a second.
"""

from minis2l.data.build import build_dataset
from minis2l.data.cache import default_cache_dir
from minis2l.data.cli import add_arguments, run, summary
from minis2l.data.dataset import NoteSet, RenderedAudio, load_dataset
from minis2l.data.features import log_mel
from minis2l.data.programs import FAMILIES, family_table, parse_int_list
from minis2l.data.render import render_note
from minis2l.data.soundfonts import POOL, default_soundfont, pool_soundfonts
from minis2l.data.splits import SPLITS

__all__ = [
    "FAMILIES",
    "POOL",
    "SPLITS",
    "NoteSet",
    "RenderedAudio",
    "add_arguments",
    "build_dataset",
    "default_cache_dir",
    "default_soundfont",
    "family_table",
    "load_dataset",
    "log_mel",
    "parse_int_list",
    "pool_soundfonts",
    "render_note",
    "run",
    "summary",
]
