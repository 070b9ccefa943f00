"""Interactive widgets: the ε explorer (02), the patch-shuffle explorer (04), the puzzles (07).

:class:`EpsExplorer` shows the soft ranks of a fixed vector as the regularization strength ε and
the regularization change. :class:`ShuffleExplorer` takes a :class:`minis2l.data.NoteSet` and
shows one note's log-mel spectrogram next to a shuffled copy, with the patch borders and numbers
drawn, and a player for each (Griffin-Lim inversion of the log-mel, so you *hear* what a shuffle
does). In "solve it" mode the student clicks (or types) the shuffled patch numbers in the order
that rebuilds the original and sees the reassembled spectrogram and whether it is right.

Everything a widget shows is also plain Python state, so it can be tested without a browser
(``last_image`` PNG bytes, ``message``, ``errors``, ...). Figures are rendered to PNG at the size
they are shown and put into an :class:`ipywidgets.Image`, replaced in place (no ``with output:``
capture, which does not work headless, swallows exceptions and makes the page blink). An
exception inside a callback is recorded in ``errors``, shown in the status line, and re-raised
when ``strict=True``. The explorer's audio is computed on a background thread, off the
interaction path; :meth:`ShuffleExplorer.wait_audio` waits for it.

Patch numbering follows :mod:`minis2l.patches`: patches in reading order (left to right, then
top to bottom), ``shuffled[j] = patches[perm[j]]``.

The package, one module per part (each imports only the ones above it):

- :mod:`~minis2l.widgets._common`: the reopen hint, figures as PNG, the callback guard, a
  fresh shuffle;
- :mod:`~minis2l.widgets.grid`: drawing the patch grid, the K on offer, parsing an order;
- :mod:`~minis2l.widgets.audio`: mel-to-audio inversion, Griffin-Lim, WAV bytes and the
  explorer's background audio worker and cache;
- :mod:`~minis2l.widgets.eps`: :class:`EpsExplorer`;
- :mod:`~minis2l.widgets.shuffle_view`: the explorer's controls, layout and figure;
- :mod:`~minis2l.widgets.shuffle`: :class:`ShuffleExplorer`'s state, actions and solve mode;
- :mod:`~minis2l.widgets.puzzle`: what the two vision puzzles share (state, figure, status);
- :mod:`~minis2l.widgets.vision`: :class:`TilePuzzle` (an image's tiles) and
  :class:`ClipShuffle` (a clip's frames, with a player): shuffle them and watch a rank model
  put them back.
"""

from minis2l.widgets._common import DPI as DPI
from minis2l.widgets._common import REOPEN_HINT as REOPEN_HINT
from minis2l.widgets._common import _guarded as _guarded
from minis2l.widgets._common import display_with_hint, figure_png
from minis2l.widgets.audio import griffin_lim, mel_magnitude, wav_bytes
from minis2l.widgets.eps import EpsExplorer
from minis2l.widgets.grid import draw_patch_grid, parse_order
from minis2l.widgets.shuffle import ShuffleExplorer
from minis2l.widgets.vision import ClipShuffle, TilePuzzle

__all__ = [
    "ClipShuffle",
    "EpsExplorer",
    "ShuffleExplorer",
    "TilePuzzle",
    "display_with_hint",
    "draw_patch_grid",
    "figure_png",
    "griffin_lim",
    "mel_magnitude",
    "parse_order",
    "wav_bytes",
]
