"""The course website in a real browser: every page of a fast-mode build, with no internet.

The module builds the site once in fast mode (``docs/build.py --fast --strict``: every notebook
executed, any Sphinx warning an error) into a temporary folder, serves it on 127.0.0.1 with
``python -m http.server`` and opens every page in Chromium (``tests/browser_support.py``). Every
request to another host is aborted and counted as a failure. On every page: no page error, no
console error, no failed request, every image decoded, no raw TeX left and every formula typeset
by MathJax, no nbgrader marker, no solution or hidden test in view, no machine path. The
notebooks that have explorers show their widgets' saved pictures, notebook 04 its audio players.

Set ``MINIS2L_SITE_ROOT`` to a build folder (for example ``docs/_build/fast``, where
``MINIS2L_FAST=1 make site`` builds) to build there instead: the build is incremental, so with
nothing changed it takes seconds. Screenshots go to ``artifacts/`` (git-ignored).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlparse

import pytest

from minis2l.assignments import BEGIN_HIDDEN, BEGIN_SOLUTION, END_HIDDEN, END_SOLUTION
from minis2l.assignments.exercises import cell_source, find_exercises
from tests.browser_support import ARTIFACTS, ROOT, free_port, serving

pytestmark = pytest.mark.xdist_group("site")  # one site build for the module's tests

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WIDGET_PAGES = {"02_soft_sort_and_rank", "04_spectrogram_shuffling", "07_beyond_audio"}
AUDIO_PAGES = {"04_spectrogram_shuffling"}
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)
MACHINE_PATHS = ("/work/", "/root", "/tmp", "/usr/share", str(ROOT))
RAW_TEX = re.compile(r"\$\$|\\\(|\\\[|\$[^$\n]*[\\^_][^$\n]*\$")

# Run in the page once it has loaded: waits for MathJax and every image, then reports.
INSPECT_JS = """async () => {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) await mj.startup.promise;
  await Promise.all([...document.images].map((img) => {
    img.loading = "eager";
    return img.complete ? null : new Promise((done) => {
      img.addEventListener("load", done); img.addEventListener("error", done);
    });
  }));
  const article = document.querySelector("article") || document.body;
  const prose = article.cloneNode(true);
  prose.querySelectorAll("pre, code, script, style, mjx-container").forEach((e) => e.remove());
  const visible = (e) => e.checkVisibility();
  return {
    theme: document.documentElement.dataset.theme,
    images: [...document.images].map((i) => [i.src.slice(0, 80), i.complete, i.naturalWidth]),
    math: document.querySelectorAll(".math").length,
    untypeset: [...document.querySelectorAll(".math")]
      .filter((e) => !e.querySelector("mjx-container")).map((e) => e.textContent.slice(0, 80)),
    prose: prose.textContent,
    views: document.querySelectorAll(
      "script[type='application/vnd.jupyter.widget-view+json']").length,
    rendered: document.querySelectorAll(".jupyter-widgets.widget-container, .widget-subarea")
      .length,
    widgetImages: [...document.querySelectorAll(".jupyter-widgets img")]
      .filter((i) => i.naturalWidth > 0).length,
    audio: [...document.querySelectorAll("audio")]
      .filter((a) => a.src || a.querySelector("source[src]")).length,
    hints: [...document.querySelectorAll(".minis2l-reopen-hint")].filter(visible).length,
    toggles: [...document.querySelectorAll("details.above-input")].map((d) => ({
      summary: d.querySelector("summary").textContent, open: d.open,
      codeVisible: [...d.querySelectorAll("pre")].some(visible),
    })),
    answers: [...document.querySelectorAll("details.minis2l-answers")].map((d) => d.open),
    visiblePre: [...document.querySelectorAll("pre")].filter(visible).map((p) => p.textContent),
    allPre: [...document.querySelectorAll("pre")].map((p) => p.textContent),
    text: document.documentElement.textContent,
  };
}"""


@functools.cache
def load_build() -> ModuleType:
    """``docs/build.py`` as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("minis2l_site_build", ROOT / "docs" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_site_notebooks_fold_solutions_and_leave_out_hidden_tests() -> None:
    """The prepared notebooks: solutions tagged to fold, marker lines and hidden tests gone,
    the stamp in jupyter-cache's key, the source notebook untouched."""
    build = load_build()
    stamp = {"fast": True, "library": "x"}
    for path in NOTEBOOKS:
        source = json.loads(path.read_text(encoding="utf-8"))
        before = json.dumps(source)
        nb = build.site_notebook(source, path.name, stamp)
        assert json.dumps(source) == before, f"{path.name}: the source notebook was modified"
        text = json.dumps(nb)
        assert not [m for m in MARKERS if m in text], path.name
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code[0]["metadata"]["minis2l_site"] == stamp
        assert not any(c["outputs"] for c in code), f"{path.name}: outputs kept"
        for ex in find_exercises(source, name=path.name):
            cell = nb["cells"][ex.solution_index]
            assert "hide-input" in cell["metadata"]["tags"], f"{ex.name}: not folded"
            assert cell["metadata"]["mystnb"]["code_prompt_show"] == "Show solution"
            answer = _region(cell_source(source["cells"][ex.solution_index]), *MARKERS[:2])
            assert all(line in cell["source"] for line in answer), f"{ex.name}: code lost"
            tests = cell_source(source["cells"][ex.tests_index])
            kept = nb["cells"][ex.tests_index]["source"]
            assert tests.split(BEGIN_HIDDEN)[0].strip() in kept, f"{ex.name}: visible tests lost"
            assert len(kept) < len(tests), f"{ex.name}: hidden tests kept"


def test_links_point_at_pages_of_the_site() -> None:
    """Links to pages become links relative to the page; links to other files their text."""
    build = load_build()
    pages = {"course/syllabus.md": "course/syllabus.md", "results/image/results.md": "results.md"}
    text = (
        "[the syllabus](syllabus.md#a-6-week-module), [image](../results/image/results.md), "
        "[`exercises/`](exercises/), [paper](https://arxiv.org/abs/2103.09879), [here](#top)"
    )
    got = build.rewrite_links(text, "course/instructor_guide.md", "course/guide.md", pages)
    assert got == (
        "[the syllabus](syllabus.md#a-6-week-module), [image](../results.md), `exercises/`, "
        "[paper](https://arxiv.org/abs/2103.09879), [here](#top)"
    )


def test_instructor_guide_folds_every_section() -> None:
    """Every ``##`` section of the guide is folded behind a closed toggle; its heading stays."""
    build = load_build()
    guide = "# Guide\n\nIntro.\n\n---\n\n## 01 · One\n\n**1.** An answer.\n\n## Rubric\n\nA.\n"
    page = build.instructor_guide_page(guide)
    assert "---" not in page.splitlines()
    assert "## 01 · One\n\n::::{answers} Show the answers\n\n**1.** An answer.\n\n::::" in page
    assert "## Rubric\n\n::::{answers} Show the rubric\n\nA.\n::::" in page
    assert page.count("::::{answers}") == 2 and page.rstrip().endswith("::::")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fast-mode build of the site (its ``html`` folder), built once for the module."""
    reuse = os.environ.get("MINIS2L_SITE_ROOT")
    root = Path(reuse).resolve() if reuse else tmp_path_factory.mktemp("site")
    log = root / "build.log"
    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run(
            [sys.executable, str(ROOT / "docs" / "build.py"), "--fast", "--strict"]
            + ["--root", str(root)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    text = log.read_text(errors="replace")
    assert done.returncode == 0, f"docs/build.py failed:\n{text[-5000:]}"
    print(f"site built in {time.perf_counter() - start:.0f} s into {root}")
    return root / "html"


@pytest.fixture(scope="module")
def site_url(site: Path, chromium: str) -> Iterator[str]:
    """The built site served by ``python -m http.server`` on 127.0.0.1; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    cmd = [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(site), str(port)]
    log = site.parent / "http-server.log"
    with serving(cmd, url, log, dict(os.environ)):
        yield url


def site_pages(html: Path) -> list[str]:
    """Every HTML page of the built site (not Sphinx's ``_static`` etc.), relative to its root."""
    pages = (p.relative_to(html) for p in html.rglob("*.html"))
    return sorted(p.as_posix() for p in pages if not p.parts[0].startswith("_"))


def open_page(browser: Any, url: str) -> dict[str, Any]:
    """Open ``url`` with every request to another host aborted; what ``INSPECT_JS`` reports,
    plus ``problems``: page errors, console errors, failed requests, error statuses and
    requests to other hosts, and ``html``: the page's HTML."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []

    def route(r: Any) -> None:
        if urlparse(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            problems.append(f"request to another host: {r.request.url[:200]}")
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on(
        "console",
        lambda m: m.type == "error" and problems.append(f"console error: {m.text[:300]}"),
    )
    page.on(
        "requestfailed",
        lambda r: problems.append(f"failed request: {r.url[:200]} ({r.failure})"),
    )
    page.on(
        "response",
        lambda r: r.status >= 400 and problems.append(f"HTTP {r.status}: {r.url[:200]}"),
    )
    try:
        page.goto(url, wait_until="load")
        info = page.evaluate(INSPECT_JS)
        page.wait_for_timeout(300)  # late console errors of the widget renderer
        name = urlparse(url).path.strip("/").replace("/", "_") or "index"
        page.screenshot(path=str(ARTIFACTS / f"site-{name}.png"))
        return info | {"html": page.content(), "problems": problems}
    finally:
        page.close()


@pytest.fixture(scope="module")
def reports(site: Path, site_url: str, browser: Any) -> dict[str, dict[str, Any]]:
    """Every page of the site opened once: page path -> :func:`open_page`'s report."""
    return {rel: open_page(browser, site_url + rel) for rel in site_pages(site)}


def test_the_site_has_every_page_and_the_vendored_scripts(site: Path) -> None:
    """One page per notebook, the home, course and results pages, and the vendored scripts."""
    expected = {"index.html", "results.html"} | {f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS}
    for name in ("syllabus", "instructor_guide"):
        if (ROOT / "course" / f"{name}.md").is_file():
            expected.add(f"course/{name}.html")
    assert expected <= set(site_pages(site)), expected - set(site_pages(site))
    for vendored in ("vendor/html-manager/embed.js", "vendor/mathjax/tex-chtml.js"):
        assert (site / "_static" / vendored).is_file(), vendored


def test_every_page_works_offline(reports: dict[str, dict[str, Any]]) -> None:
    """Every page: no error, no outside request, images decoded, formulas typeset, no machine
    path, no nbgrader marker, no reopen hint in view, light mode."""
    failures: dict[str, list[str]] = {}
    for rel, info in reports.items():
        problems = list(info["problems"])
        problems += [f"image not decoded: {src}" for src, _, width in info["images"] if not width]
        problems += [f"formula not typeset: {text}" for text in info["untypeset"]]
        problems += [f"raw TeX in the text: {m!r}" for m in RAW_TEX.findall(info["prose"])]
        for where in (info["html"], info["text"]):
            problems += [f"machine path {p!r} in the page" for p in MACHINE_PATHS if p in where]
            problems += [f"marker {m!r} in the page" for m in MARKERS if m in where]
        if info["hints"]:
            problems.append("the widgets' reopen hint is visible")
        if info["theme"] != "light":
            problems.append(f"theme {info['theme']!r}, not the light mode the site sets")
        if problems:
            failures[rel] = sorted(set(problems))
    assert not failures, json.dumps(failures, indent=1)[:8000]


def _region(source: str, begin: str, end: str) -> list[str]:
    """The stripped, non-empty lines between ``begin`` and ``end`` in ``source``."""
    inside = source.split(begin)[1].split(end)[0]
    return [line.strip() for line in inside.splitlines() if line.strip()]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_page_shows_outputs_without_solutions(
    notebook: Path, reports: dict[str, dict[str, Any]]
) -> None:
    """A notebook's page: its figures and math, its widgets' pictures and audio players where it
    has them, each solution folded behind a closed "Show solution" toggle, no hidden test."""
    info = reports[f"notebooks/{notebook.stem}.html"]
    source = json.loads(notebook.read_text(encoding="utf-8"))
    assert info["images"], "no figure on the page"
    markdown = (cell_source(c) for c in source["cells"] if c["cell_type"] == "markdown")
    if any("$" in text for text in markdown):
        assert info["math"] > 0, "the notebook has formulas, the page none"
    if notebook.stem in WIDGET_PAGES:
        assert info["views"] > 0, "no widget view saved: was the widget state kept?"
        assert info["rendered"] >= info["views"], "widget views not rendered"
        assert info["widgetImages"] > 0, "the explorer's starting picture is missing"
    if notebook.stem in AUDIO_PAGES:
        assert info["audio"] > 0, "no audio player"

    exercises = find_exercises(source, name=notebook.name)
    toggles = [t for t in info["toggles"] if "Show solution" in t["summary"]]
    assert len(toggles) == len(exercises), info["toggles"]
    assert not any(t["open"] or t["codeVisible"] for t in toggles), toggles
    code, visible = "\n".join(info["allPre"]), "\n".join(info["visiblePre"])
    for ex in exercises:
        solution = _region(
            cell_source(source["cells"][ex.solution_index]), BEGIN_SOLUTION, END_SOLUTION
        )
        line = max(solution, key=len)
        assert line in code, f"{ex.name}: the folded solution is missing"
        assert line not in visible, f"{ex.name}: solution in view: {line!r}"
        tests = cell_source(source["cells"][ex.tests_index])
        elsewhere = (
            "\n".join(cell_source(c) for i, c in enumerate(source["cells"]) if i != ex.tests_index)
            + tests.split(BEGIN_HIDDEN)[0]
            + tests.split(END_HIDDEN)[1]
        )
        for line in _region(tests, BEGIN_HIDDEN, END_HIDDEN):
            if line not in elsewhere:
                assert line not in info["text"], f"{ex.name}: hidden test on the page: {line!r}"


def test_instructor_guide_answers_are_folded(reports: dict[str, dict[str, Any]]) -> None:
    """Each section of the instructor guide's page is behind a toggle that is closed."""
    guide = ROOT / "course" / "instructor_guide.md"
    if not guide.is_file():
        pytest.skip("no instructor guide in course/")
    sections = [line for line in guide.read_text("utf-8").splitlines() if line.startswith("## ")]
    answers = reports["course/instructor_guide.html"]["answers"]
    assert len(answers) == len(sections) and not any(answers), answers
