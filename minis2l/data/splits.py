"""Splits by instrument, as in NSynth.

All notes of a General MIDI program go to one split, so train, valid and test never share a
program; with several SoundFonts the split unit stays the program (the same program from every
SoundFont lands in the same split), so test asks about instruments never heard in training.
Within each family the programs are shuffled with ``seed`` and about 70 % / 10 % / 20 % go to
train / valid / test, so every family with at least 3 programs appears in train and test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minis2l.data.programs import FAMILIES

SPLITS: tuple[str, ...] = ("train", "valid", "test")
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


def split_programs(
    program_family: dict[int, str], seed: int, fractions: Sequence[float] = SPLIT_FRACTIONS
) -> dict[int, str]:
    """Assign each program to a split, family by family, deterministically for ``seed``.

    Per family of n programs: ``test = max(1, round(n * f_test))`` and
    ``valid = round(n * f_valid)``, at least 1 from n >= 4 (always at least 2 left for
    train); 1 program goes to train, 2 to train and test. So families with >= 3 programs
    are in train and test.
    """
    out: dict[int, str] = {}
    for fi, fam in enumerate(FAMILIES):
        members = sorted(p for p, f in program_family.items() if f == fam)
        n = len(members)
        if n == 0:
            continue
        rng = np.random.default_rng([int(seed), fi])
        order = [members[i] for i in rng.permutation(n)]
        if n == 1:
            n_test, n_valid = 0, 0
        elif n == 2:
            n_test, n_valid = 1, 0
        else:
            n_test = max(1, int(round(n * fractions[2])))
            n_valid = max(1 if n >= 4 else 0, int(round(n * fractions[1])))
            n_valid = min(n_valid, n - n_test - 1)
        for i, p in enumerate(order):
            out[p] = "test" if i < n_test else "valid" if i < n_test + n_valid else "train"
    return out
