"""What the browser tests share: Debian's Chromium, a free port, a server started and stopped.

The tests drive Debian's Chromium (``/usr/bin/chromium``) with PyPI's playwright;
``playwright install`` is never needed. The ``chromium`` and ``browser`` fixtures live in
``tests/conftest.py``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"  # screenshots (git-ignored)
# A cell's error output, as JupyterLab and Voila draw it.
STDERR = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def find_chromium() -> str | None:
    """The path of a Chromium executable, or None."""
    for name in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.access(name, os.X_OK):
            return name
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(
    cmd: list[str], url: str, log_path: Path, env: dict[str, str], ready_timeout: float = 60
) -> Iterator[subprocess.Popen]:
    """Start ``cmd`` in a process group of its own, wait until ``url`` answers 200, stop it after.

    Raises RuntimeError with the end of the server's log when it exits or does not answer in
    ``ready_timeout`` seconds. On exit the whole process group gets SIGTERM (SIGKILL after 15 s).
    """
    log = log_path.open("wb")
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{cmd[:3]} exited: {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd[:3]} did not start: {log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


def image_src(locator) -> str:
    """The ``src`` of an image element (a data: or blob: URL for a widget's picture)."""
    return locator.get_attribute("src") or ""


def src_changes(locator, before: str, timeout: float = 30_000) -> str:
    """Wait until the image's ``src`` differs from ``before``; return the new one."""
    from playwright.sync_api import expect

    expect(locator).not_to_have_attribute("src", before, timeout=timeout)
    return image_src(locator)


def shows_another_picture(locator, pixels: bytes, timeout: float = 30) -> None:
    """Wait until the element's screenshot differs from ``pixels`` (what the user sees).

    A new ``src`` is not always a new picture on screen (it can change twice for one frame).
    """
    deadline = time.monotonic() + timeout
    while locator.screenshot() == pixels:
        assert time.monotonic() < deadline, "the picture the user sees did not change"
        time.sleep(0.2)
