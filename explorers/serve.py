"""Serve the course's explorers as a web app with Voilà, without JupyterLab (``make explorers``).

Each notebook in this folder is one explorer, shown by Voilà as a page with only its text and
widget: the ε explorer of notebook 02, the shuffle/listen/solve explorer of notebook 04, the
tile puzzle and the clip player of notebook 07. Voilà listens on 127.0.0.1 only and serves
everything a page needs itself: its project template (``jupyter/voila/templates/minis2l``) is
Voilà's ``lab`` template without the links to a CDN.

Before Voilà starts, this script prepares what the pages would otherwise wait for: the audio
data set of notebook 04 and notebook 07's two rank models (trained once, minutes on 2 cores
outside fast mode, then kept in ``runs/explorers/``, see ``rank_models.py``). Voilà then keeps
one preheated kernel per notebook (``--pool-size``): it runs the notebook before anyone asks
for it, so a page shows its widget in seconds; a page opened while that kernel is taken gets
a fresh kernel, which runs the notebook then.

Usage::

    python explorers/serve.py [--port 8866] [--no-browser] [--fast] [--pool-size 1]

``--fast`` (or ``MINIS2L_FAST=1``) serves the explorers on fast mode's small data and models.
Stop the server with Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import webbrowser
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "jupyter"  # a Jupyter data folder: voila/templates/minis2l/
HOST = "127.0.0.1"
DEFAULT_PORT = 8866
WIDGET_EXTENSIONS = ["@jupyter-widgets/jupyterlab-manager", "@voila-dashboards/widgets-manager8"]


def notebooks() -> list[str]:
    """The explorers' notebooks in this folder, in course order."""
    return sorted(p.name for p in HERE.glob("*.ipynb"))


def prepare(fast: bool) -> None:
    """Build (or find) notebook 04's data set and notebook 07's rank models."""
    from rank_models import rank_model

    from minis2l.data import build_dataset

    t0 = time.perf_counter()
    print("preparing the explorers' data and models (once; then in seconds) ...", flush=True)
    build_dataset(fast=fast, verbose=False)
    for modality in ("image", "video"):
        rank_model(modality, fast, verbose=True)
    print(f"prepared in {time.perf_counter() - t0:.0f} s")


def voila_command(port: int, pool_size: int) -> list[str]:
    """The Voilà command line serving this folder on ``HOST:port``."""
    return [
        sys.executable,
        "-m",
        "voila",
        str(HERE),
        f"--Voila.ip={HOST}",
        f"--port={port}",
        "--Voila.port_retries=0",  # never another port than the one printed
        "--no-browser",
        "--template=minis2l",
        "--theme=light",
        "--classic_tree=True",  # the project template's plain HTML home page
        # Only the widget manager: the other installed JupyterLab extensions (nbgrader, the
        # Notebook app's) fail to load in Voilà and fill the console with errors.
        *(f"--VoilaConfiguration.extension_allowlist={name}" for name in WIDGET_EXTENSIONS),
        f"--preheat_kernel={pool_size > 0}",
        f"--pool_size={max(pool_size, 0)}",
    ]


def voila_env() -> dict[str, str]:
    """This process's environment (fast mode included) for Voilà and its kernels, with the
    project template's folder first on ``JUPYTER_PATH``."""
    env = dict(os.environ)
    env["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(TEMPLATES), env.get("JUPYTER_PATH")]))
    return env


def port_free(port: int) -> bool:
    """Whether nothing listens on ``HOST:port``."""
    with socket.socket() as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until ``url`` answers 200; raise RuntimeError if Voilà exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Voilà exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"Voilà did not answer at {url} within {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    """Prepare, start Voilà, print the URLs, open a browser (unless told not to), serve."""
    parser = argparse.ArgumentParser(
        description="Serve the minis2l explorers (notebooks 02, 04, 07) with Voilà on "
        f"{HOST}, without JupyterLab.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default %(default)s")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument(
        "--fast", action="store_true", help="fast mode's small data and models (MINIS2L_FAST=1)"
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=1,
        help="preheated kernels kept ready per notebook; 0: start a kernel per page "
        "(default %(default)s)",
    )
    args = parser.parse_args(argv)
    if not port_free(args.port):
        parser.error(f"port {args.port} on {HOST} is in use: choose another with --port")
    from minis2l.config import fast_mode, set_fast_mode

    if args.fast:
        set_fast_mode(True)  # for this process and Voilà's kernels
    fast = fast_mode()
    prepare(fast)
    base = f"http://{HOST}:{args.port}"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop Voilà too (finally, below)
    proc = subprocess.Popen(voila_command(args.port, args.pool_size), env=voila_env())
    try:
        wait_ready(f"{base}/", proc)
        print(f"\nThe minis2l explorers{' (fast mode)' if fast else ''}: {base}/")
        for name in notebooks():
            print(f"  {base}/voila/render/{name}")
        print("Stop with Ctrl-C.", flush=True)
        if not args.no_browser:
            webbrowser.open(f"{base}/")
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
