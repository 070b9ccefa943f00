"""The explorers app (``make explorers``) in a real browser: Voilà, Chromium, nothing from outside.

One server for the module: ``explorers/serve.py`` in fast mode on a free port, started as a
user starts it (it prepares notebook 04's data set and notebook 07's models, then Voilà with a
preheated kernel per notebook), and stopped (its whole process group) at the end. Each test
opens one page in Chromium with every request to another host aborted and recorded, drives
the explorer as a user would (sliders by keyboard, buttons by click) and asserts what the user
sees: the picture or the status changed, the hint above the widget is Voilà's (reload the page,
not JupyterLab's "Run All Cells"), and the page met no page error, no console error, no failed
request, no error output.

Drives Debian's Chromium with PyPI's playwright (``tests/browser_support.py``). Screenshots go
to ``artifacts/`` (git-ignored). Skipped only when no Chromium exists, and never in CI.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator

import pytest

from minis2l.widgets._common import REOPEN_HINT, VOILA_HINT, under_voila
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

pytestmark = pytest.mark.xdist_group("explorers")  # one app server for the module's tests

NB02, NB04 = "02_eps_explorer.ipynb", "04_shuffle_listen_solve.ipynb"
NB07_TILES, NB07_CLIPS = "07a_tile_puzzle.ipynb", "07b_clip_player.ipynb"
WIDGETS = {  # each page's notebook and the widget it shows
    NB02: "EpsExplorer",
    NB04: "ShuffleExplorer",
    NB07_TILES: "TilePuzzle",
    NB07_CLIPS: "ClipShuffle",
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, chromium: str) -> Iterator[str]:
    """``explorers/serve.py`` in fast mode on 127.0.0.1; yields its URL."""
    root = tmp_path_factory.mktemp("explorers")
    port = free_port()
    # A matplotlib config dir of its own: the shared font cache can list fonts of a removed
    # environment, and a kernel then warns on stderr, which Voilà shows on the page.
    env = dict(os.environ, MINIS2L_FAST="1", MPLCONFIGDIR=str(root / "matplotlib"))
    env.pop("MPLBACKEND", None)
    cmd = [sys.executable, str(ROOT / "explorers" / "serve.py"), "--no-browser", f"--port={port}"]
    url = f"http://127.0.0.1:{port}"
    # The first start in a fresh clone builds fast mode's data set and trains two small models.
    with serving(cmd, f"{url}/", root / "serve.log", env, ready_timeout=600):
        yield url


class Visitor:
    """A page of the app, recording every page error, console error and failed request, and
    aborting (and recording) every request to another host."""

    def __init__(self, browser, app: str, path: str, name: str) -> None:
        self.name = name
        self.problems: list[str] = []
        self.page = page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        page.on(
            "requestfailed",
            lambda req: self.problems.append(f"failed request: {req.url} ({req.failure})"),
        )
        page.route(lambda url: not url.startswith((app, "data:", "blob:")), self._outside)
        self.t0 = time.monotonic()
        page.goto(f"{app}/{path}", wait_until="domcontentloaded")

    def _outside(self, route) -> None:
        self.problems.append(f"request to another host: {route.request.url}")
        route.abort()

    def widget(self, selector: str):
        """The widget ``selector`` once it shows; prints how long the page took to show it."""
        from playwright.sync_api import expect

        widget = self.page.locator(selector).first
        expect(widget).to_be_visible(timeout=180_000)
        print(f"{self.name}: widget shown {time.monotonic() - self.t0:.1f} s after the request")
        return widget

    def shot(self, label: str) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"explorers_{self.name}_{label}.png"))

    def assert_clean(self) -> None:
        """Voilà's hint, no error output, no broken widget, no page or console error, no
        failed or outside request."""
        from playwright.sync_api import expect

        hint = self.page.locator(".minis2l-reopen-hint")
        expect(hint).to_have_count(1)
        expect(hint).to_have_text(VOILA_HINT)
        assert REOPEN_HINT not in self.page.inner_text("body")
        errors = self.page.locator(STDERR)
        assert errors.count() == 0, errors.all_inner_texts()
        broken = self.page.get_by_text(
            re.compile(r"Error displaying widget|Traceback|error when executing|error: ")
        )
        assert broken.count() == 0, broken.all_inner_texts()
        assert self.problems == [], "\n".join(self.problems)


def _visit(browser, app: str, path: str, name: str, drive) -> None:
    """Open ``path``, run ``drive(visitor)``, then check the page is clean; close it as a tab
    is closed (Voilà then shuts the page's kernel down)."""
    me = Visitor(browser, app, path, name)
    try:
        drive(me)
        me.assert_clean()
    except Exception:
        me.shot("failure")
        raise
    finally:
        me.page.close(run_before_unload=True)


@pytest.mark.parametrize("name", sorted(WIDGETS))
def test_explorer_notebooks_are_lean_and_clean(name: str) -> None:
    """Each page's notebook imports its finished widget from minis2l.widgets, and is committed
    without outputs; the folder holds no other notebook (the home page lists them all)."""
    assert sorted(p.name for p in (ROOT / "explorers").glob("*.ipynb")) == sorted(WIDGETS)
    nb = json.loads((ROOT / "explorers" / name).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    for cell in code:
        assert cell["outputs"] == [] and cell["execution_count"] is None, f"{name} was run"
    assert "widgets" not in nb["metadata"], f"{name} stores widget state"
    source = "\n".join("".join(c["source"]) for c in code)
    assert f"from minis2l.widgets import {WIDGETS[name]}" in source
    assert "def " not in source and "class " not in source, "no code of its own"


@pytest.mark.parametrize(
    ("env", "voila"),
    [
        ({}, False),  # JupyterLab, nbclient, a script
        ({"SERVER_SOFTWARE": "gunicorn/23"}, False),
        ({"SERVER_SOFTWARE": "voila/0.5.13"}, True),  # a kernel started for a page
        ({"VOILA_PREHEAT": "True"}, True),  # a preheated kernel, before its page is asked for
    ],
)
def test_the_hint_knows_voila(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], voila: bool
) -> None:
    """The widgets tell Voilà's kernels (either kind) from the others by their environment."""
    for name in ("SERVER_SOFTWARE", "VOILA_PREHEAT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert under_voila() is voila


def test_home_page_links_every_explorer(app: str, browser) -> None:
    """The home page lists the four explorers, and nothing else, with plain local links."""
    from playwright.sync_api import expect

    me = Visitor(browser, app, "", "home")
    try:
        links = me.page.locator("ul.minis2l-explorers a")
        expect(links).to_have_count(4)
        hrefs = [links.nth(i).get_attribute("href") for i in range(4)]
        assert hrefs == [f"/voila/render/{nb}" for nb in (NB02, NB04, NB07_TILES, NB07_CLIPS)]
        me.page.wait_for_load_state("load")
        assert me.problems == [], "\n".join(me.problems)
    finally:
        me.page.close(run_before_unload=True)


def test_shuffle_explorer(app: str, browser) -> None:
    """04: K to both ends, shuffle, then a puzzle solved by clicks."""
    from playwright.sync_api import expect

    def drive(me: Visitor) -> None:
        page = me.page
        explorer = me.widget(".minis2l-shuffle-explorer")
        image = explorer.locator(".minis2l-image")
        status = explorer.locator(".minis2l-status")
        readout = explorer.locator(".minis2l-k-slider .widget-readout")
        handle = explorer.locator(".minis2l-k-slider .noUi-handle")
        expect(image).to_have_attribute("src", re.compile(r"^(blob|data):"))
        src, pixels = image_src(image), image.screenshot()
        handle.focus()
        page.keyboard.press("End")
        expect(readout).to_have_text("12")
        src = src_changes(image, src)
        page.keyboard.press("Home")
        expect(readout).to_have_text("2")
        src = src_changes(image, src)
        page.keyboard.press("ArrowRight")
        expect(readout).to_have_text("3")
        src = src_changes(image, src)
        explorer.locator(".minis2l-shuffle-button").click()
        expect(status).to_contain_text("perm = [")
        src = src_changes(image, src)
        assert image.screenshot() != pixels, "the picture the user sees did not change"
        # K = 2 has one puzzle, [1, 0]: clicking slot 1 then slot 0 solves it.
        handle.focus()
        page.keyboard.press("Home")
        expect(readout).to_have_text("2")
        explorer.locator(".minis2l-solve input[type='checkbox']").check()
        expect(status).to_contain_text("0 of 2 patches placed")
        buttons = explorer.locator(".minis2l-patch-button")
        expect(buttons).to_have_count(2)
        buttons.nth(1).click()
        expect(status).to_contain_text("1 of 2")
        src = image_src(image)
        buttons.nth(0).click()
        expect(status).to_contain_text("Solved!")
        src_changes(image, src)
        me.shot("solved")

    _visit(browser, app, f"voila/render/{NB04}", "04", drive)


def test_eps_explorer(app: str, browser) -> None:
    """02: switch to kl, move ε to its top end."""
    from playwright.sync_api import expect

    def drive(me: Visitor) -> None:
        explorer = me.widget(".minis2l-eps-explorer")
        image = explorer.locator(".minis2l-eps-image")
        status = explorer.locator(".minis2l-eps-status")
        expect(image).to_have_attribute("src", re.compile(r"^(blob|data):"))
        expect(status).to_contain_text("ε = 1, l2")
        src, pixels = image_src(image), image.screenshot()
        explorer.get_by_role("button", name="kl", exact=True).click()
        expect(status).to_contain_text("ε = 1, kl")
        src = src_changes(image, src)
        explorer.locator(".minis2l-eps-slider .noUi-handle").focus()
        me.page.keyboard.press("End")
        expect(explorer.locator(".minis2l-eps-slider .widget-readout")).to_have_text("100")
        expect(status).to_contain_text("ε = 100, kl")
        src_changes(image, src)
        assert image.screenshot() != pixels, "the picture the user sees did not change"
        me.shot("kl")

    _visit(browser, app, f"voila/render/{NB02}", "02", drive)


def test_tile_puzzle(app: str, browser) -> None:
    """07: shuffle an image's tiles and let the model put them back."""
    from playwright.sync_api import expect

    def drive(me: Visitor) -> None:
        puzzle = me.widget(".minis2l-tile-puzzle")
        image = puzzle.locator(".minis2l-puzzle-image")
        status = puzzle.locator(".minis2l-puzzle-status")
        expect(image).to_have_attribute("src", re.compile(r"^(blob|data):"))
        src, pixels = image_src(image), image.screenshot()
        puzzle.locator(".minis2l-puzzle-shuffle").click()
        expect(status).to_contain_text("Shuffled")
        src = src_changes(image, src)
        puzzle.locator(".minis2l-puzzle-solve").click()
        expect(status).to_contain_text(re.compile(r"the model put \d of 9 tiles in place"))
        src_changes(image, src)
        assert image.screenshot() != pixels, "the picture the user sees did not change"
        me.shot("tiles")

    _visit(browser, app, f"voila/render/{NB07_TILES}", "07a", drive)


def test_clip_player(app: str, browser) -> None:
    """07: shuffle a clip's frames, let the model reorder them, step the player to the end."""
    from playwright.sync_api import expect

    def drive(me: Visitor) -> None:
        clip = me.widget(".minis2l-clip-shuffle")
        frame = clip.locator(".minis2l-frame-image")
        strips = clip.locator(".minis2l-puzzle-image")
        expect(frame).to_have_attribute("src", re.compile(r"^(blob|data):"))
        fsrc, ssrc = image_src(frame), image_src(strips)
        clip.locator(".minis2l-puzzle-shuffle").click()
        ssrc = src_changes(strips, ssrc)
        clip.locator(".minis2l-puzzle-solve").click()
        status = clip.locator(".minis2l-puzzle-status")
        expect(status).to_contain_text(re.compile(r"the model put \d of 8 frames in place"))
        src_changes(strips, ssrc)
        src_changes(frame, fsrc)
        first = frame.screenshot()
        clip.locator(".minis2l-frame-slider .noUi-handle").focus()
        me.page.keyboard.press("End")
        expect(clip.locator(".minis2l-frame-slider .widget-readout")).to_have_text("7")
        shows_another_picture(frame, first)
        me.shot("clip")

    _visit(browser, app, f"voila/render/{NB07_CLIPS}", "07b", drive)
