"""Notebook 04 in a real browser: JupyterLab + Chromium, run all cells, use the explorer widget.

Drives Debian's Chromium (``/usr/bin/chromium``) with PyPI's playwright; ``playwright install``
is never needed. The Lab server serves a temporary copy of ``notebooks/`` (so no outputs land
in the repository) in fast mode, and is stopped (its whole process group) at the end.
Screenshots go to ``artifacts/`` (git-ignored). Skipped only when no Chromium exists, and never
in CI (``CI`` set): there a missing browser is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
NOTEBOOK = "04_spectrogram_shuffling.ipynb"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str | None:
    for name in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.access(name, os.X_OK):
            return name
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("no Chromium found in CI: install Debian's chromium (.ci/run does it)")
        pytest.skip("no Chromium browser on this machine (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 serving a temporary copy of notebooks/; yields its URL."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    # Render every cell (no virtual scrolling, so the widget is in the page wherever it is)
    # and ask nothing about news.
    settings = root / "settings"
    for name, value in (
        ("notebook-extension/tracker", '{"windowingMode": "none"}'),
        ("apputils-extension/notification", '{"fetchNews": "false"}'),
    ):
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)
    port = _free_port()
    env = dict(os.environ, MINIS2L_FAST="1", JUPYTER_CONFIG_DIR=str(root / "config"))
    env.pop("MPLBACKEND", None)  # the kernel uses the inline backend, as for a student
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.token=",
        "--ServerApp.password=",
        "--ServerApp.disable_check_xsrf=True",
        "--LabApp.news_url=None",
        "--LabServerApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--ServerApp.root_dir={root / 'notebooks'}",
        f"--LabApp.user_settings_dir={settings}",
        f"--LabApp.workspaces_dir={root / 'workspaces'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = (root / "lab.log").open("wb")
    proc = subprocess.Popen(
        cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(root / 'lab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start: {(root / 'lab.log').read_text()}")
            time.sleep(0.5)
        yield url
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


def _image_src(page) -> str:
    return page.locator(".minis2l-image").first.get_attribute("src") or ""


def _run_all_cells(page) -> None:
    """Run > Run All Cells, retried while no cell has started (a busy machine can drop it)."""
    from playwright.sync_api import expect

    started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
    for _ in range(3):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:
            expect(started.first).to_be_visible(timeout=20_000)
            return
        except AssertionError:
            page.keyboard.press("Escape")
    raise AssertionError("Run > Run All Cells did not start any cell")


def test_explorer_widget_runs_and_responds_in_jupyterlab(lab: str, chromium: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(f"{lab}/lab/tree/{NOTEBOOK}", wait_until="domcontentloaded")
            page.locator(".jp-NotebookPanel").first.wait_for(timeout=60_000)
            # Wait until the kernel is ready, then Run > Run All Cells.
            expect(
                page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
            ).to_have_count(1, timeout=60_000)
            expect(page.get_by_text(re.compile(r"\| Idle$")).first).to_be_visible(timeout=60_000)
            _run_all_cells(page)

            explorer = page.locator(".minis2l-shuffle-explorer").first
            explorer.wait_for(state="visible", timeout=90_000)
            image = page.locator(".minis2l-image").first
            expect(image).to_have_attribute("src", re.compile(r"^(blob|data):"), timeout=30_000)
            # Let the notebook finish: its last cell prints this line (a cell that raised would
            # stop Run All before it).
            stderr = page.locator(
                ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"
            )
            try:
                expect(page.get_by_text("pieces agree with minis2l.patches")).to_be_visible(
                    timeout=90_000
                )
            finally:
                problems = [t for t in stderr.all_inner_texts() if "Error" in t or "Trace" in t]
                assert not problems, problems
            explorer.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "browser_04_explorer_before.png"))
            shot_before = image.screenshot()
            src_before = _image_src(page)

            # Change K with the keyboard on the slider handle, then shuffle.
            handle = page.locator(".minis2l-k-slider .noUi-handle").first
            readout = page.locator(".minis2l-k-slider .widget-readout").first
            k_before = readout.inner_text().strip()
            handle.focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowRight")
            expect(readout).not_to_have_text(k_before, timeout=10_000)
            expect(image).not_to_have_attribute("src", src_before, timeout=30_000)
            src_after_k = _image_src(page)

            page.locator(".minis2l-shuffle-button").first.click()
            expect(image).not_to_have_attribute("src", src_after_k, timeout=30_000)
            page.wait_for_timeout(500)
            shot_after = image.screenshot()
            page.screenshot(path=str(ARTIFACTS / "browser_04_explorer_after.png"))
            assert shot_after != shot_before, "the rendered explorer image did not change"
            status = page.locator(".minis2l-status").first.inner_text()
            assert "error" not in status.lower(), status
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_04_failure.png"))
            raise
        finally:
            browser.close()
