"""Build the course website: every notebook executed, with its outputs, offline (``make site``).

Usage::

    python docs/build.py                  # default mode, into docs/_build/html
    MINIS2L_FAST=1 python docs/build.py   # fast mode (or --fast), into docs/_build/fast/html
    python docs/build.py --root DIR       # any other build folder (the site is in DIR/html)

Sphinx, myst-nb and sphinx-book-theme (the ``site`` extra) build static HTML from a source folder
that this script prepares in the build folder, never touching ``notebooks/`` or ``course/``:

- ``index.md`` from ``docs/``: the home page, with the learning path;
- every notebook, with each exercise's solution folded behind a closed "Show solution" toggle,
  its hidden tests left out and no nbgrader marker line left;
- the syllabus and the instructor guide from ``course/``, each of the guide's answer sections
  folded (some answers build on the exercises' results); links to files that are not pages of the
  site become plain text;
- ``results.md``: the committed studies (``results/``, ``results/image``, ``results/video``,
  ``results/permutations``) and their plots.

myst-nb executes the notebooks through jupyter-cache and stops at the first error. The cache key
is a notebook's code, so each prepared notebook also carries the mode and a fingerprint of the
library (``minis2l/``, ``data/*.csv``, ``results/**/*.json``): a rebuild with nothing changed
runs no notebook and takes seconds, and a change of the library runs them again. Each mode has a
build folder of its own (``docs/_build`` and ``docs/_build/fast``), so a fast build is never
served as the default one.

Nothing on a page comes from another host: MathJax 3 and the ipywidgets renderer
(``@jupyter-widgets/html-manager``'s ``embed.js``) are copied from ``docs/node_modules`` (pinned in
``docs/package-lock.json``, installed by ``make venv``) into the site's ``_static/vendor``;
``docs/conf.py`` points Sphinx and myst-nb at them instead of their CDN defaults.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import posixpath
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere: minis2l is importable

from minis2l.assignments import (  # noqa: E402 (after the path is set)
    BEGIN_SOLUTION,
    END_SOLUTION,
    find_exercises,
)
from minis2l.config import FAST_ENV, fast_mode  # noqa: E402

DOCS = ROOT / "docs"
NODE_MODULES = DOCS / "node_modules"
DEFAULT_TIMEOUT_S = 1800  # per cell; a busy 2-core machine ran notebook 05 for 26 minutes
FAST_TIMEOUT_S = 600
SOLUTION_PROMPTS = {"code_prompt_show": "Show solution", "code_prompt_hide": "Hide solution"}

# What the site serves from docs/node_modules, under _static/vendor/ (glob patterns): the widget
# renderer without require.js (embed.js, not embed-amd.js) with the Font Awesome files it loads
# from its own folder, and MathJax 3's TeX-to-HTML bundle with the fonts, TeX extensions, menu
# and accessibility parts it loads on demand.
VENDOR = {
    "html-manager": (
        "@jupyter-widgets/html-manager/dist",
        ["embed.js", "embed.js.LICENSE.txt", "*.woff2", "*.woff", "*.ttf", "*.eot", "*.svg"],
    ),
    "mathjax": (
        "mathjax/es5",
        ["tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y", "sre"],
    ),
}

# Markdown files of the repository that are pages of the site: repository path -> site path.
COURSE_PAGES = {
    "course/syllabus.md": "course/syllabus.md",
    "course/instructor_guide.md": "course/instructor_guide.md",
}
STUDIES = [  # (title, results folder, name of its plots folder on the site)
    ("Audio", "results", "audio"),
    ("Images", "results/image", "image"),
    ("Video", "results/video", "video"),
    ("Rank against jigsaw as K grows", "results/permutations", "permutations"),
]
PLOTS = [
    ("pretext_curves.png", "The pretext task during pretraining"),
    ("accuracy.png", "Probe accuracy by encoder"),
    ("label_fraction.png", "Probe accuracy by fraction of train labels"),
    ("differences.png", "Paired differences against the size of the permutation space"),
]
MARKDOWN_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


class SiteError(Exception):
    """The site cannot be built (a one-line message saying what to do)."""


@dataclass(frozen=True)
class Layout:
    """The folders of one build: ``root/html`` is the site, the others are its working files."""

    root: Path

    @property
    def html(self) -> Path:
        """The built site (open ``index.html``)."""
        return self.root / "html"

    @property
    def src(self) -> Path:
        """The prepared pages Sphinx reads."""
        return self.root / "src"

    @property
    def doctrees(self) -> Path:
        """Sphinx's parsed pages, for incremental rebuilds."""
        return self.root / "doctrees"

    @property
    def cache(self) -> Path:
        """jupyter-cache's executed notebooks."""
        return self.root / "jupyter_cache"

    @property
    def static(self) -> Path:
        """Vendored scripts; its ``vendor/`` folder becomes the site's ``_static/vendor/``."""
        return self.root / "static"


def default_root(fast: bool) -> Path:
    """The build folder of a mode: ``docs/_build`` (default) or ``docs/_build/fast``."""
    return DOCS / "_build" / "fast" if fast else DOCS / "_build"


def write_if_changed(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` unless it already holds it (Sphinx rereads changed files only)."""
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def library_fingerprint(root: Path = ROOT) -> str:
    """SHA-256 of what the notebooks' outputs depend on besides their code: the library's
    sources, the committed tables and the committed study results."""
    digest = hashlib.sha256()
    patterns = ("minis2l/**/*.py", "data/*.csv", "results/**/*.json")
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _lines_without(source: str, markers: Iterable[str]) -> str:
    """``source`` without the lines that are exactly one of ``markers`` (ignoring indentation)."""
    drop = set(markers)
    return "\n".join(line for line in source.splitlines() if line.strip() not in drop)


def site_notebook(notebook: dict[str, Any], name: str, stamp: dict[str, Any]) -> dict[str, Any]:
    """The notebook as the site shows it; ``notebook`` itself is not modified.

    Each exercise's solution cell keeps its code without the ``### BEGIN/END SOLUTION`` lines,
    folded behind a closed "Show solution" toggle (myst-nb's ``hide-input`` tag); its test cell
    keeps the visible tests only (nbgrader's ``ClearHiddenTests``, as in the student edition).
    Outputs are cleared; ``stamp`` goes into the first code cell's metadata, where it is part of
    jupyter-cache's key.

    Raises:
        minis2l.assignments.AssignmentError: the exercises break the format of CONTRIBUTING.md.
    """
    import nbformat
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput

    exercises = find_exercises(notebook, name=name)
    nb = nbformat.reads(json.dumps(notebook), as_version=4)
    for step in (ClearHiddenTests(), ClearOutput()):
        nb, _ = step.preprocess(nb, {})
    for ex in exercises:
        cell = nb.cells[ex.solution_index]
        cell.source = _lines_without(cell.source, (BEGIN_SOLUTION, END_SOLUTION))
        tags = cell.metadata.setdefault("tags", [])
        if "hide-input" not in tags:
            tags.append("hide-input")
        cell.metadata["mystnb"] = dict(SOLUTION_PROMPTS)
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    first_code.metadata["minis2l_site"] = stamp
    return nb


def _split_target(target: str) -> tuple[str, str]:
    path, _, anchor = target.partition("#")
    return path, f"#{anchor}" if anchor else ""


def rewrite_links(text: str, repo_path: str, site_path: str, pages: dict[str, str]) -> str:
    """Point the relative links of a markdown file at the site's pages.

    ``repo_path`` is the file's path in the repository, ``site_path`` its page's path on the
    site, ``pages`` maps repository paths to site paths. A link to a page of the site is
    rewritten relative to ``site_path`` (its anchor kept); a link to any other file of the
    repository becomes its text; links with a scheme (``https:``) and in-page anchors stay.
    """

    def fix(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if ":" in target.split("/")[0] or target.startswith("#"):
            return match.group(0)
        path, anchor = _split_target(target)
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(repo_path), path))
        if resolved not in pages:
            return label
        rel = posixpath.relpath(pages[resolved], posixpath.dirname(site_path) or ".")
        return f"[{label}]({rel}{anchor})"

    return MARKDOWN_LINK.sub(fix, text)


def _outside_fences(lines: list[str], fn: Callable[[str], str | None]) -> list[str]:
    """Apply ``fn`` to each line outside fenced code blocks (None drops the line)."""
    out: list[str] = []
    fenced = False
    for line in lines:
        if line.lstrip().startswith("```"):
            fenced = not fenced
        new = line if fenced else fn(line)
        if new is not None:
            out.append(new)
    return out


def instructor_guide_page(text: str) -> str:
    """The instructor guide with each ``##`` section's body folded behind a closed toggle.

    Its answers are for after trying, and some build on an exercise's result, so none is in view
    when the page opens. Horizontal rules are dropped (they separate the sections, which the
    headings already do).
    """
    lines = _outside_fences(text.splitlines(), lambda line: None if line == "---" else line)
    out: list[str] = []
    open_section = False
    for line in lines:
        if line.startswith("## "):
            if open_section:
                out += ["::::", ""]
            title = line[3:].strip()
            what = "the rubric" if title.lower().startswith("rubric") else "the answers"
            out += [line, "", f"::::{{answers}} Show {what}"]
            open_section = True
        else:
            out.append(line)
        if line.startswith("# ") and not open_section:
            out += [
                "",
                ":::{note}",
                "Each section below answers a notebook's **Try this** questions and is folded:",
                "open it after you have tried them. Some answers build on the graded exercises,",
                "so do those first too.",
                ":::",
            ]
    if open_section:
        out += ["::::", ""]
    return "\n".join(out) + "\n"


def _demoted(text: str) -> list[str]:
    """The lines of a markdown file with every heading one level deeper."""
    return _outside_fences(
        text.splitlines(), lambda line: "#" + line if re.match(r"#+ ", line) else line
    )


def results_page(root: Path = ROOT) -> tuple[str, dict[str, Path]]:
    """The results page's markdown and its plots (site path -> file) from the committed studies.

    Raises:
        SiteError: a study's ``results.md`` is missing.
    """
    parts = [
        "# Results of the study",
        "",
        "What `make study` measured and committed: the audio study on the whole SoundFont pool",
        "(`results/`), then the image and video studies (`results/image`, `results/video`;",
        "`make study-vision` runs only those), and the permutation sweep of",
        "`make study-permutations` (`results/permutations`). Notebooks 06 and 07 read these",
        "files. Each table and plot below is copied from them; rerunning a study rewrites them.",
        "",
    ]
    plots: dict[str, Path] = {}
    for title, folder, name in STUDIES:
        report = root / folder / "results.md"
        if not report.is_file():
            raise SiteError(f"{report.relative_to(root)} is missing (make study writes it)")
        body = _demoted(report.read_text(encoding="utf-8"))
        heading = body[0].lstrip("#").strip() if body and body[0].startswith("#") else ""
        parts += [f"## {title}", "", f"**{heading}**" if heading else "", *body[1:], ""]
        parts += ["### Plots", ""]
        for file, alt in PLOTS:
            if (root / folder / file).is_file():
                site = f"results/{name}/{file}"
                plots[site] = root / folder / file
                parts += [f"![{alt} ({title.lower()})]({site})", ""]
    return "\n".join(parts) + "\n", plots


def prepare_sources(src: Path, fast: bool, root: Path = ROOT) -> None:
    """Write the site's pages into ``src`` (only those that changed); remove stale pages.

    Raises:
        SiteError: a notebook's exercises break the format, or a study's report is missing.
    """
    from minis2l.assignments import AssignmentError

    files: dict[str, bytes] = {"index.md": (DOCS / "index.md").read_bytes()}
    stamp = {"fast": fast, "library": library_fingerprint(root)}
    for path in sorted((root / "notebooks").glob("*.ipynb")):
        try:
            nb = site_notebook(json.loads(path.read_text(encoding="utf-8")), path.name, stamp)
        except AssignmentError as err:
            raise SiteError(str(err)) from None
        files[f"notebooks/{path.name}"] = (json.dumps(nb, indent=1) + "\n").encode()
    pages = {f"notebooks/{p}": f"notebooks/{p}" for p in (root / "notebooks").glob("*.ipynb")}
    pages |= COURSE_PAGES | {f"{folder}/results.md": "results.md" for _, folder, _ in STUDIES}
    pages["README.md"] = "index.md"
    for repo_path, site_path in COURSE_PAGES.items():
        if not (root / repo_path).is_file():
            continue  # the course pages are optional
        text = rewrite_links((root / repo_path).read_text("utf-8"), repo_path, site_path, pages)
        if repo_path.endswith("instructor_guide.md"):
            text = instructor_guide_page(text)
        files[site_path] = text.encode()
    results, plots = results_page(root)
    files["results.md"] = results.encode()
    files |= {site: path.read_bytes() for site, path in plots.items()}
    for name, data in files.items():
        write_if_changed(src / name, data)
    for page in [*src.rglob("*.md"), *src.rglob("*.ipynb"), *src.rglob("*.png")]:
        if page.relative_to(src).as_posix() not in files and "jupyter_execute" not in page.parts:
            page.unlink()


def copy_vendored(static: Path, node_modules: Path = NODE_MODULES) -> None:
    """Copy the widget renderer and MathJax 3 into ``static/vendor`` (files that changed only).

    Raises:
        SiteError: ``docs/node_modules`` lacks them (``make venv`` installs them).
    """
    for name, (folder, entries) in VENDOR.items():
        base = node_modules / folder
        for entry in entries:
            found = sorted(base.glob(entry))
            if not found:
                raise SiteError(
                    f"{base / entry} is missing: run `make venv` (its `npm ci --prefix docs` "
                    "installs the widget renderer and MathJax pinned in docs/package-lock.json)"
                )
            sources = [f for source in found for f in [source, *source.rglob("*")]]
            for file in (f for f in sources if f.is_file()):
                target = static / "vendor" / name / file.relative_to(base)
                if not target.is_file() or target.stat().st_size != file.stat().st_size:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, target)


def kernel_environment(layout: Layout, fast: bool) -> None:
    """Set the environment the notebooks' kernels inherit: the mode, matplotlib's inline backend
    (an ``MPLBACKEND`` such as Agg would leave the pages without figures) and a matplotlib cache
    of this build (a shared cache that lists removed fonts makes kernels warn on stderr)."""
    if fast:
        os.environ[FAST_ENV] = "1"
    else:
        os.environ.pop(FAST_ENV, None)
    os.environ.pop("MPLBACKEND", None)
    os.environ["MPLCONFIGDIR"] = str(layout.root / "matplotlib")


def build_site(root: Path | None = None, *, fast: bool = False, strict: bool = False) -> Layout:
    """Build the site; return its layout (the site is ``layout.html``).

    Args:
        root: the build folder (default: ``docs/_build``, or ``docs/_build/fast`` in fast mode).
        fast: execute the notebooks in fast mode (``MINIS2L_FAST=1``).
        strict: turn Sphinx warnings into errors.

    Raises:
        SiteError: the vendored scripts or a study report are missing, or an exercise breaks the
            format.
        sphinx.errors.SphinxError: the build failed (a notebook raised, for instance).
    """
    from sphinx.application import Sphinx

    layout = Layout((root or default_root(fast)).resolve())
    copy_vendored(layout.static)
    prepare_sources(layout.src, fast)
    kernel_environment(layout, fast)
    overrides = {
        "html_static_path": [str(DOCS / "_static"), str(layout.static)],
        "nb_execution_cache_path": str(layout.cache),
        "nb_execution_timeout": FAST_TIMEOUT_S if fast else DEFAULT_TIMEOUT_S,
    }
    app = Sphinx(
        str(layout.src),
        str(DOCS),
        str(layout.html),
        str(layout.doctrees),
        "html",
        confoverrides=overrides,
        warningiserror=strict,
    )
    app.build()
    if app.statuscode:
        raise SiteError(f"Sphinx finished with status {app.statuscode}")
    return layout


def main(argv: list[str] | None = None) -> int:
    """Command line: build the site, then say where it is and how to open it."""
    parser = argparse.ArgumentParser(
        prog="python docs/build.py",
        description="Build the course website (every notebook executed; works offline). "
        "Set MINIS2L_FAST=1 or pass --fast for the quick build CI uses.",
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="execute the notebooks in fast mode (default: on when MINIS2L_FAST=1)",
    )
    parser.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="build folder; the site goes to DIR/html "
        "(default: docs/_build, or docs/_build/fast in fast mode)",
    )
    parser.add_argument("--strict", action="store_true", help="turn Sphinx warnings into errors")
    args = parser.parse_args(argv)
    fast = args.fast or fast_mode()
    start = time.perf_counter()
    try:
        layout = build_site(args.root, fast=fast, strict=args.strict)
    except SiteError as err:
        print(f"docs/build.py: error: {err}", file=sys.stderr)
        return 1
    html = layout.html
    shown = html.relative_to(ROOT) if html.is_relative_to(ROOT) else html
    print(
        f"\nThe {'fast-mode ' if fast else ''}site is in {shown} "
        f"(built in {time.perf_counter() - start:.0f} s). Open it with:\n"
        f"  python -m http.server -d {shown} 8000   then http://127.0.0.1:8000/\n"
        f"or open {(html / 'index.html').as_uri()} in a browser."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
