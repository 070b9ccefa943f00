"""How fast the note data set builds, and how big it is.

Builds the default data set (the fast one with ``--fast``, the whole SoundFont pool with
``--pool``) into a temporary directory from
scratch, then a second time (which must reuse the cache), and prints a table: notes, dropped
renders, build time, notes per second (rendered and featurized), the CPU time per note and the
rate two otherwise idle cores would reach from it (on a shared machine the wall-clock rate
depends on the other load), the cached call's time and the cache size. Targets: >= 1000
notes/s on 2 cores; the pool's cache under 500 MB.

    python benchmarks/data.py [--fast | --pool] [--workers N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from minis2l.data import build_dataset, pool_soundfonts


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the rendering workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="the fast-mode data set")
    parser.add_argument("--pool", action="store_true", help="every installed pool SoundFont")
    parser.add_argument("--workers", type=int, default=None, help="rendering processes")
    parser.add_argument("--keep", metavar="DIR", help="build here and keep it")
    args = parser.parse_args()

    tmp = None if args.keep else tempfile.mkdtemp(prefix="minis2l-bench-")
    out = Path(args.keep) if args.keep else Path(tmp) / "notes"
    try:
        start, cpu0 = time.perf_counter(), _cpu_seconds()
        kwargs = {"fast": args.fast, "workers": args.workers, "verbose": False}
        if args.pool:
            kwargs["soundfont"] = pool_soundfonts()
        root = build_dataset(out, force=True, **kwargs)
        build, cpu = time.perf_counter() - start, _cpu_seconds() - cpu0
        start = time.perf_counter()
        build_dataset(out, **kwargs)
        cached = time.perf_counter() - start
        meta = json.loads((root / "metadata.json").read_text())
        c = meta["counts"]
        rows = [
            ("data set", "pool" if args.pool else "fast" if args.fast else "default (full)"),
            ("SoundFonts", ", ".join(sf["name"] for sf in meta["params"]["soundfonts"])),
            ("cores available", str(len(os.sched_getaffinity(0)))),
            ("notes kept / attempted", f"{c['notes']} / {c['attempted']}"),
            ("dropped renders", str(c["dropped"])),
            ("instruments", str(c["instruments"])),
            ("build time (total call)", f"{build:.2f} s"),
            ("render + featurize time", f"{meta['build_seconds']:.2f} s"),
            ("notes / s (render + featurize)", f"{c['attempted'] / meta['build_seconds']:.0f}"),
            ("notes / s (whole call)", f"{c['attempted'] / build:.0f}"),
            ("CPU time per note", f"{cpu / c['attempted'] * 1e3:.2f} ms"),
            ("notes / s on 2 idle cores (from CPU time)", f"{2 * c['attempted'] / cpu:.0f}"),
            ("load average (1 min) after the build", f"{os.getloadavg()[0]:.1f}"),
            ("second call (cache reuse)", f"{cached:.3f} s"),
            ("cache size", f"{_size(root) / 1e6:.1f} MB"),
        ]
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
