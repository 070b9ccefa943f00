"""``python -m minis2l``: see :mod:`minis2l.cli`."""

import sys

from minis2l.cli import main

if __name__ == "__main__":
    sys.exit(main())
