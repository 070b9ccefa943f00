"""Repository-wide pytest settings: tests and notebooks run in fast mode unless told otherwise."""

import os

os.environ.setdefault("MINIS2L_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
