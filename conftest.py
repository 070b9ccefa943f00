"""Repository-wide pytest settings: tests and notebooks run in fast mode unless told otherwise.

``make test`` runs the suite in two pytest-xdist workers (``-n 2 --dist loadgroup``): the
browser tests' modules each form one group, so a module's server or site is built once. Each
worker, and every kernel or process it starts, uses one thread for torch and NumPy, so that two
workers share two cores without oversubscribing them.
"""

import os

os.environ.setdefault("MINIS2L_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, "1")
