"""The course apparatus every notebook carries (CONTRIBUTING.md, "Notebook style guide").

At the top: a list of learning goals, then prerequisites and an estimated time. At the end:
ungraded "try this" questions (one of them pencil-and-paper), a "what you learned" recap and
references with a DOI or arXiv id for every paper the notebook cites. Exercise headings read
``Exercise <k> · <title> (<p> points)`` with the points of their nbgrader test cell.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from minis2l.assignments import exercise_title, find_exercises

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Notebooks whose issue-12 apparatus is still being added (none now). The marks are strict:
# once a notebook passes, its test fails until it leaves this set.
PENDING: frozenset[str] = frozenset()


def _notebooks(pending: frozenset[str] = PENDING) -> list[Any]:
    mark = pytest.mark.xfail(strict=True, reason="issue 12: not yet in this notebook")
    return [
        pytest.param(p, id=p.stem, marks=[mark] if p.stem in pending else []) for p in NOTEBOOKS
    ]


# "Blondel et al. 2020", "Blondel et al. (2020)", "Noroozi & Favaro, 2016", "Carr et al., 2021"
CITATION = re.compile(r"\b([A-Z][A-Za-z-]+)(?: et al\.| & [A-Z][A-Za-z-]+),? \(?((?:19|20)\d\d)")
LINK = re.compile(r"arXiv:\s*\d{4}\.\d{4,5}|doi\.org/10\.\d{4,}/|\bdoi:\s*10\.\d{4,}/", re.I)
HEADING = re.compile(r"^Exercise (\d+) · \S.* \((\d+(?:\.\d+)?) points?\)$")


def _markdown(path: Path) -> list[str]:
    nb: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in nb["cells"]
        if c["cell_type"] == "markdown"
    ]


def _section(cells: list[str], title: str) -> tuple[int, str]:
    """Index among the markdown cells and text of the cell opening with ``## <title>``."""
    found = [
        (i, c) for i, c in enumerate(cells) if c.lstrip().lower().startswith(f"## {title.lower()}")
    ]
    assert len(found) == 1, f"needs one '## {title}' section, has {len(found)}"
    return found[0]


def _items(text: str) -> list[str]:
    """The items of the markdown list(s) in ``text`` (numbered or bulleted)."""
    return re.findall(r"^(?:\d+\.|[-*]) (.*(?:\n {2,}.*)*)", text, re.MULTILINE)


@pytest.mark.parametrize("path", _notebooks())
def test_prerequisites_and_estimated_time_at_the_top(path: Path):
    top = "\n".join(_markdown(path)[:2])
    assert re.search(r"\*\*Prerequisites:\*\*\s*\S", top), "no '**Prerequisites:**' at the top"
    found = re.search(r"\*\*Estimated time:\*\*[^\n]*?\d+\s*(minutes?|min|hours?)", top)
    assert found, "no '**Estimated time:** ... <number> minutes' at the top"


@pytest.mark.parametrize("path", _notebooks())
def test_learning_goals_at_the_top(path: Path):
    top = _markdown(path)[0]
    found = re.search(r"\*\*Learning goals\*\*(.*?)\*\*Prerequisites:\*\*", top, re.DOTALL)
    assert found, "no '**Learning goals**' before '**Prerequisites:**' in the opening cell"
    goals = _items(found.group(1))
    assert len(goals) >= 3, f"{len(goals)} learning goals, needs at least 3"


@pytest.mark.parametrize("path", _notebooks())
def test_try_this_recap_and_references_at_the_end(path: Path):
    cells = _markdown(path)
    try_at, try_this = _section(cells, "Try this")
    recap_at, recap = _section(cells, "What you learned")
    refs_at, refs = _section(cells, "References")
    assert try_at < recap_at < refs_at == len(cells) - 1, "order: try this, recap, references"

    questions = _items(try_this)
    assert len(questions) >= 3, f"'Try this' has {len(questions)} questions, needs 3"
    assert any("pencil and paper" in q.lower() for q in questions), "no pencil-and-paper question"
    assert len(_items(recap)) >= 3, "the recap needs at least 3 points"

    entries = _items(refs)
    assert entries, "no references"
    for entry in entries:
        assert LINK.search(entry), f"reference without a DOI or arXiv id: {entry[:60]!r}"
    body = "\n".join(cells[:refs_at])
    for author, year in set(CITATION.findall(body)):
        assert any(author in e and year in e for e in entries), f"{author} {year} not in references"


@pytest.mark.parametrize("path", _notebooks())
def test_exercise_headings_are_numbered_with_their_points(path: Path):
    for k, ex in enumerate(find_exercises(path), start=1):
        title = exercise_title(path, ex)
        found = HEADING.match(title)
        assert found, f"{ex.name}: heading {title!r} is not 'Exercise <k> · <title> (<p> points)'"
        assert int(found.group(1)) == k and ex.name.endswith(f"_ex{k}"), f"{ex.name}: {title!r}"
        assert float(found.group(2)) == ex.points, f"{ex.name}: {title!r} vs {ex.points:g} points"
        unit = "point" if ex.points == 1 else "points"
        assert title.endswith(f" {unit})"), f"{ex.name}: {title!r}"


@pytest.mark.parametrize("path", _notebooks(frozenset()))
def test_no_promise_of_hidden_tests_where_nothing_is_graded(path: Path):
    """Only a graded exercise has hidden tests; prose elsewhere must not say it is checked."""
    for text in _markdown(path):
        assert "hidden tests check" not in text.lower(), text[:80]


def test_the_apparatus_checks_catch_what_is_missing(tmp_path: Path):
    import nbformat

    def notebook(top: str, refs: str) -> Path:
        cells = [top, "## Try this\n\n1. (Pencil and paper) a\n2. b\n3. c", "## What you learned"]
        cells[-1] += "\n\n- a\n- b\n- c"
        cells.append(f"## References\n\n{refs}")
        path = tmp_path / f"nb{len(list(tmp_path.iterdir()))}.ipynb"
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(c) for c in cells])
        nbformat.write(nb, path)
        return path

    goals = "**Learning goals**\n\n- one\n- two\n- three\n\n"
    top = f"# T\n\nAs Blondel et al. (2020) show.\n\n{goals}**Prerequisites:** none.\n\n"
    good_ref = "- M. Blondel et al. 2020. [arXiv:2002.08871](https://arxiv.org/abs/2002.08871)"
    good = notebook(top + "**Estimated time:** about 30 minutes.", good_ref)
    test_prerequisites_and_estimated_time_at_the_top(good)
    test_try_this_recap_and_references_at_the_end(good)
    test_learning_goals_at_the_top(good)

    no_goals = notebook(top.replace(goals, "") + "**Estimated time:** 30 minutes.", good_ref)
    with pytest.raises(AssertionError, match="no '\\*\\*Learning goals"):
        test_learning_goals_at_the_top(no_goals)
    two_goals = notebook(top.replace("- three\n", "") + "**Estimated time:** 30 minutes.", good_ref)
    with pytest.raises(AssertionError, match="2 learning goals"):
        test_learning_goals_at_the_top(two_goals)

    with pytest.raises(AssertionError, match="Estimated time"):
        test_prerequisites_and_estimated_time_at_the_top(notebook(top, good_ref))
    with pytest.raises(AssertionError, match="without a DOI or arXiv id"):
        test_try_this_recap_and_references_at_the_end(notebook(top, "- M. Blondel et al. 2020."))
    with pytest.raises(AssertionError, match="Carr 2021 not in references"):
        test_try_this_recap_and_references_at_the_end(
            notebook(top + "And Carr et al. 2021.", good_ref)
        )
