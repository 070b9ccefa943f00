"""Notebooks 04, 02 and 07 in a real browser, as a student uses them: JupyterLab + Chromium.

Each test runs its notebook in JupyterLab and waits for an output that only the *execution* of
the last cell produces (searched inside output areas, never in cell sources), then drives the
widget as the student would (sliders by keyboard, buttons by click) and asserts what the student
sees: the picture changed, the message says what happened, no error output anywhere in the
notebook, no page error or console error in the browser.

Drives Debian's Chromium with PyPI's playwright (``tests/browser_support.py``). The Lab
server serves a temporary copy of ``notebooks/`` (so no outputs land in the repository) in
fast mode, and is stopped (its whole process group) at the end.
Screenshots go to ``artifacts/`` (git-ignored). Skipped only when no Chromium exists, and never
in CI (``CI`` set): there a missing browser is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator

import pytest

from tests.browser_support import (
    ARTIFACTS,
    ROOT,
    STDERR,
    free_port,
    image_src,
    serving,
    shows_another_picture,
    src_changes,
)

pytestmark = pytest.mark.xdist_group("jupyterlab")  # one Lab server for the module's tests

NB02, NB04 = "02_soft_sort_and_rank.ipynb", "04_spectrogram_shuffling.ipynb"
NB07 = "07_beyond_audio.ipynb"
# Printed by a cell the test appends to each notebook's copy; the source holds it split in two.
FINISHED = "every cell ran: the browser test's last cell."


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 serving a temporary copy of notebooks/; yields its URL."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "notebooks", root / "notebooks")
    for name in (NB02, NB04, NB07):  # a last cell whose output only its execution can produce
        path = root / "notebooks" / name
        nb = json.loads(path.read_text())
        nb["cells"].append(
            {"cell_type": "code", "execution_count": None, "id": "browser-test-end",
             "metadata": {}, "outputs": [], "source": [f"print({FINISHED[:-1]!r} + '.')"]}
        )  # fmt: skip
        path.write_text(json.dumps(nb))
    # Render every cell (no virtual scrolling, so the widget is in the page wherever it is),
    # start the notebook's kernel without a "Select Kernel" dialog (left open, it swallows the
    # first menu click) and ask nothing about news.
    settings = root / "settings"
    for name, value in (
        ("notebook-extension/tracker", '{"windowingMode": "none", "autoStartDefaultKernel": true}'),
        ("apputils-extension/notification", '{"fetchNews": "false"}'),
    ):
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)
    port = free_port()
    # A matplotlib config dir of its own: the shared font cache in ~/.cache/matplotlib can list
    # fonts of a removed environment, and the kernel then warns on stderr ("findfont: ...").
    env = dict(
        os.environ,
        MINIS2L_FAST="1",
        JUPYTER_CONFIG_DIR=str(root / "config"),
        MPLCONFIGDIR=str(root / "matplotlib"),
    )
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
    url = f"http://127.0.0.1:{port}"
    with serving(cmd, f"{url}/api/status", root / "lab.log", env):
        yield url


class Student:
    """A page on one notebook, recording every page error and console error it meets."""

    def __init__(self, browser, lab: str, notebook: str, name: str) -> None:
        self.name = name
        self.problems: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.page.set_default_timeout(30_000)
        self.page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        self.page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        # A workspace of its own, reset: only this notebook open, whatever ran before.
        url = f"{lab}/lab/workspaces/{name}/tree/{notebook}?reset"
        self.page.goto(url, wait_until="domcontentloaded")
        self.page.locator(".jp-NotebookPanel").first.wait_for(timeout=60_000)
        self.wait_idle()

    def wait_idle(self) -> None:
        """Wait until the kernel is idle (JupyterLab's status bar and execution indicator)."""
        from playwright.sync_api import expect

        indicator = self.page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")
        expect(indicator).to_have_count(1, timeout=90_000)

    def menu(self, item: str) -> None:
        """Run > ``item`` (e.g. "Run All Cells"), once, and check that a cell started.

        The Run menu's commands are disabled until the notebook is JupyterLab's current
        widget, and a click on a disabled item does nothing: so the notebook is focused
        first (a click on its toolbar) and the item must be enabled before it is clicked.
        """
        from playwright.sync_api import expect

        self.page.locator(".jp-NotebookPanel-toolbar").first.click(position={"x": 5, "y": 5})
        self.page.get_by_role("menuitem", name="Run", exact=True).click()
        entry = self.page.get_by_role("menuitem", name=item, exact=True)
        expect(entry).to_be_enabled()
        entry.click()
        busy = self.page.locator(".jp-InputPrompt", has_text="[*]")
        expect(busy.first).to_be_visible(timeout=20_000)

    def output(self, text: str):
        """An output area showing ``text``: only executing a cell puts it there."""
        return self.page.locator(".jp-OutputArea-output", has_text=text)

    def wait_finished(self, timeout: float = 120_000) -> None:
        """Wait for the appended last cell's output, or fail at once on the first error output."""
        from playwright.sync_api import expect

        done = self.output(FINISHED).or_(self.page.locator(STDERR))
        expect(done.first).to_be_visible(timeout=timeout)
        self.wait_idle()
        self.assert_no_errors()
        expect(self.output(FINISHED)).to_have_count(1)

    def shot(self, label: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"browser_{self.name}_{label}.png"))

    def assert_no_errors(self) -> None:
        """No error output in any cell, no broken widget, no page or console error."""
        errors = self.page.locator(STDERR)
        assert errors.count() == 0, errors.all_inner_texts()
        broken = self.page.locator(  # a widget that failed, or one whose callback raised
            ".jp-OutputArea-output:not(:has(.minis2l-reopen-hint))",
            has_text=re.compile(r"Error displaying widget|Traceback|error: "),
        )
        assert broken.count() == 0, broken.all_inner_texts()
        assert self.problems == [], "\n".join(self.problems)


def test_patch_explorer_in_jupyterlab(lab: str, browser) -> None:
    """Notebook 04: run it, then K to both ends, every patch kind, 2-D with a prime K,
    shuffle, audio, solve mode with a wrong and a right answer."""
    from playwright.sync_api import expect

    me = Student(browser, lab, NB04, "04")
    page = me.page
    try:
        me.menu("Run All Cells")
        me.wait_finished()
        expect(me.output("pieces agree with minis2l.patches")).to_have_count(1)
        explorer = page.locator(".minis2l-shuffle-explorer").first
        explorer.scroll_into_view_if_needed()
        expect(page.locator(".minis2l-reopen-hint").first).to_contain_text("run the cells above")
        image = explorer.locator(".minis2l-image")
        status = explorer.locator(".minis2l-status")
        readout = explorer.locator(".minis2l-k-slider .widget-readout")
        handle = explorer.locator(".minis2l-k-slider .noUi-handle")
        expect(image).to_have_attribute("src", re.compile(r"^(blob|data):"))
        expect(explorer.locator(".minis2l-caption")).to_contain_text("MIDI pitch")
        box = image.bounding_box()
        assert box and (round(box["width"]), round(box["height"])) == (
            int(image.get_attribute("width")),
            int(image.get_attribute("height")),
        ), "the picture is shown at the size it was drawn (crisp, not stretched)"
        me.shot("start")
        src, pixels = image_src(image), image.screenshot()

        # K slider to both ends, by keyboard as a student would.
        handle.focus()
        page.keyboard.press("End")
        expect(readout).to_have_text("12")
        src = src_changes(image, src)
        expect(status).to_contain_text("perm = [")
        page.keyboard.press("Home")
        expect(readout).to_have_text("2")
        src = src_changes(image, src)
        for _ in range(5):  # up to the prime K = 7
            page.keyboard.press("ArrowRight")
        expect(readout).to_have_text("7")
        src = src_changes(image, src)

        # Every patch kind; 2-D with the prime K moves K to a grid and says so.
        kinds = explorer.locator(".minis2l-kind")
        kinds.get_by_role("button", name="freq", exact=True).click()
        src = src_changes(image, src)
        expect(status).to_contain_text("shuffled")
        kinds.get_by_role("button", name="2d", exact=True).click()
        expect(status).to_contain_text("K = 7 is prime")
        expect(status).to_contain_text("K is now 6")
        expect(readout).to_have_text("6")
        src = src_changes(image, src)
        me.shot("2d_prime")
        kinds.get_by_role("button", name="time", exact=True).click()
        src = src_changes(image, src)
        expect(status).not_to_contain_text("prime")

        # Shuffle: a new picture, and the players get the new sound.
        explorer.locator(".minis2l-shuffle-button").click()
        src = src_changes(image, src)
        expect(explorer.locator(".minis2l-audio-status")).to_contain_text("audio ready")
        for player in ("original", "shuffled"):
            audio = explorer.locator(f".minis2l-audio-{player}")
            expect(audio).to_have_attribute("src", re.compile(r"^(blob|data):"))
            expect(audio).to_be_visible()
            expect(explorer.get_by_text(f"{player} note", exact=False).first).to_be_visible()
        assert image.screenshot() != pixels, "the picture the student sees did not change"

        # Solve mode with K = 5: a fresh puzzle; the identity order is always wrong.
        handle.focus()
        page.keyboard.press("Home")
        for _ in range(3):
            page.keyboard.press("ArrowRight")
        expect(readout).to_have_text("5")
        src = src_changes(image, src)
        explorer.locator(".minis2l-solve input[type='checkbox']").check()
        expect(status).to_contain_text("0 of 5 patches placed")
        src = src_changes(image, src)
        buttons = explorer.locator(".minis2l-patch-button")
        expect(buttons).to_have_count(5)
        for k in range(5):
            buttons.nth(k).click()
            expect(buttons.nth(k)).to_be_disabled()
        expect(status).to_contain_text("Not yet")
        src = src_changes(image, src)
        me.shot("solve_wrong")
        explorer.locator(".minis2l-undo-button").click()
        expect(status).to_contain_text("4 of 5")
        expect(buttons.nth(4)).to_be_enabled()
        explorer.locator(".minis2l-clear-button").click()
        expect(status).to_contain_text("0 of 5")

        # K = 2 has one puzzle, [1, 0]: clicking 1 then 0 solves it; undo clears "Solved!".
        page.keyboard.press("Escape")
        handle.focus()
        page.keyboard.press("Home")
        expect(readout).to_have_text("2")
        expect(buttons).to_have_count(2)
        buttons.nth(1).click()
        expect(status).to_contain_text("1 of 2")
        buttons.nth(0).click()
        expect(status).to_contain_text("Solved!")
        me.shot("solved")
        explorer.locator(".minis2l-undo-button").click()
        expect(status).not_to_contain_text("Solved")
        me.wait_idle()
        me.assert_no_errors()
    except Exception:
        me.shot("failure")
        raise
    finally:
        page.close()


def test_eps_explorer_left_on_kl_then_the_check_cell(lab: str, browser) -> None:
    """Notebook 02: run up to the explorer, leave it on kl and a large ε, then run the rest."""
    from playwright.sync_api import expect

    me = Student(browser, lab, NB02, "02")
    page = me.page
    try:
        check_cell = page.locator(".jp-CodeCell", has_text="states = [(0.1").first
        check_cell.locator(".jp-InputPrompt").click()
        me.menu("Run All Above Selected Cell")
        explorer = page.locator(".minis2l-eps-explorer").first
        image = explorer.locator(".minis2l-eps-image")
        expect(image).to_have_attribute("src", re.compile(r"^(blob|data):"), timeout=120_000)
        me.wait_idle()
        explorer.scroll_into_view_if_needed()
        expect(explorer).to_contain_text("input x = [0.4, -1.1, 2, 0.9, -0.3, 1.45]")
        status = explorer.locator(".minis2l-eps-status")
        expect(status).to_contain_text("ε = 1, l2")
        src, pixels = image_src(image), image.screenshot()
        explorer.get_by_role("button", name="kl", exact=True).click()
        expect(status).to_contain_text("ε = 1, kl")
        src = src_changes(image, src)
        explorer.locator(".minis2l-eps-slider .noUi-handle").focus()
        page.keyboard.press("End")
        expect(explorer.locator(".minis2l-eps-slider .widget-readout")).to_have_text("100")
        expect(status).to_contain_text("ε = 100, kl")
        src = src_changes(image, src)
        assert image.screenshot() != pixels, "the picture the student sees did not change"
        me.shot("kl")

        check_cell.locator(".jp-InputPrompt").click()
        me.menu("Run Selected Cell and All Below")
        me.wait_finished()
        expect(me.output("the explorer shows the soft ranks")).to_have_count(1)
        expect(status).to_contain_text("ε = 1, l2")  # the check cell put it back
        me.assert_no_errors()
    except Exception:
        me.shot("failure")
        raise
    finally:
        page.close()


def test_tile_puzzle_and_clip_player_in_jupyterlab(lab: str, browser) -> None:
    """Notebook 07: run it, then shuffle an image's tiles and let the model solve them, pick
    another image, shuffle a clip's frames, let the model reorder them and step the player."""
    from playwright.sync_api import expect

    me = Student(browser, lab, NB07, "07")
    page = me.page
    try:
        me.menu("Run All Cells")
        me.wait_finished(timeout=300_000)
        puzzle = page.locator(".minis2l-tile-puzzle").first
        puzzle.scroll_into_view_if_needed()
        image = puzzle.locator(".minis2l-puzzle-image")
        status = puzzle.locator(".minis2l-puzzle-status")
        expect(image).to_have_attribute("src", re.compile(r"^(blob|data):"))
        expect(status).to_contain_text("the model put")  # the check cell solved one
        src, pixels = image_src(image), image.screenshot()
        puzzle.locator(".minis2l-puzzle-shuffle").click()
        expect(status).to_contain_text("Shuffled")
        src = src_changes(image, src)
        puzzle.locator(".minis2l-puzzle-solve").click()
        expect(status).to_contain_text(re.compile(r"the model put \d of 9 tiles in place"))
        src = src_changes(image, src)
        assert image.screenshot() != pixels, "the picture the student sees did not change"
        item = puzzle.locator(".minis2l-puzzle-item input")
        item.fill("5")
        item.press("Enter")
        expect(status).to_contain_text("Shuffled")  # another image: the answer is cleared
        src = src_changes(image, src)
        me.shot("tiles")

        clip = page.locator(".minis2l-clip-shuffle").first
        clip.scroll_into_view_if_needed()
        frame = clip.locator(".minis2l-frame-image")
        strips = clip.locator(".minis2l-puzzle-image")
        cstatus = clip.locator(".minis2l-puzzle-status")
        expect(frame).to_have_attribute("src", re.compile(r"^(blob|data):"))
        fsrc, ssrc = image_src(frame), image_src(strips)
        clip.locator(".minis2l-puzzle-shuffle").click()
        ssrc = src_changes(strips, ssrc)
        clip.locator(".minis2l-puzzle-solve").click()
        expect(cstatus).to_contain_text(re.compile(r"the model put \d of 8 frames in place"))
        ssrc = src_changes(strips, ssrc)
        src_changes(frame, fsrc)
        first = frame.screenshot()
        clip.locator(".minis2l-frame-slider .noUi-handle").focus()
        page.keyboard.press("End")
        expect(clip.locator(".minis2l-frame-slider .widget-readout")).to_have_text("7")
        shows_another_picture(frame, first)
        me.shot("clip")
        me.wait_idle()
        me.assert_no_errors()
    except Exception:
        me.shot("failure")
        raise
    finally:
        page.close()
