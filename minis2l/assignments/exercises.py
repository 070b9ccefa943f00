"""The exercise format of the notebooks (CONTRIBUTING.md, "Exercises") and its checks.

Every exercise is a pair of cells: a solution cell with grade_id ``<prefix>_solution`` whose
answer sits between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, and an autograded, locked test
cell ``<prefix>_tests`` with points, visible asserts, then hidden ones between
``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``. :func:`find_exercises` checks that
structure; :func:`exercise_title` reads the heading that names an exercise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minis2l.config import REPO_ROOT

DEFAULT_NOTEBOOKS = REPO_ROOT / "notebooks"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
SOLUTION_SUFFIX = "_solution"
TESTS_SUFFIX = "_tests"

Log = Callable[[str], None]  # called with one progress line at a time


class AssignmentError(Exception):
    """A notebook or course directory that cannot be turned into assignments (one-line message)."""


@dataclass(frozen=True)
class Exercise:
    """One nbgrader exercise: a solution cell and its autograded test cell.

    Attributes:
        name: the shared grade_id prefix, e.g. ``"01_ex1"``.
        solution_index: index of the solution cell in the notebook's ``cells``.
        tests_index: index of the test cell (after the solution cell).
        points: points of the test cell (> 0).
    """

    name: str
    solution_index: int
    tests_index: int
    points: float

    @property
    def solution_id(self) -> str:
        """grade_id of the solution cell."""
        return self.name + SOLUTION_SUFFIX

    @property
    def tests_id(self) -> str:
        """grade_id of the test cell."""
        return self.name + TESTS_SUFFIX


def cell_source(cell: dict[str, Any]) -> str:
    """A cell's source as one string (notebook files may store it as a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def load_notebook(notebook: Path | dict[str, Any]) -> dict[str, Any]:
    """A notebook as a dict: read from an ``.ipynb`` path, or returned as is when already one."""
    if isinstance(notebook, dict):
        return notebook
    return json.loads(Path(notebook).read_text(encoding="utf-8"))


def list_notebooks(notebooks_dir: Path | str) -> list[Path]:
    """Every ``*.ipynb`` in ``notebooks_dir``, sorted by name.

    Raises:
        AssignmentError: the folder does not exist or holds no notebook.
    """
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise AssignmentError(f"notebooks directory not found: {folder}")
    notebooks = sorted(p for p in folder.glob("*.ipynb") if p.is_file())
    if not notebooks:
        raise AssignmentError(f"no notebooks (*.ipynb) in {folder}")
    return notebooks


def _code_between(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """Lines outside and inside the ``begin``/``end`` region (raises ValueError if malformed)."""
    outside: list[str] = []
    inside: list[str] = []
    state = "before"
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == begin:
            if state != "before":
                raise ValueError(f"more than one {begin!r}")
            state = "inside"
        elif stripped == end:
            if state != "inside":
                raise ValueError(f"{end!r} without {begin!r}")
            state = "after"
        else:
            (inside if state == "inside" else outside).append(line)
    if state != "after":
        raise ValueError(f"needs both {begin!r} and {end!r}")
    return outside, inside


def _has_code(lines: list[str]) -> bool:
    return any(line.strip() and not line.strip().startswith("#") for line in lines)


def _check_solution(cell: dict[str, Any], grade_id: str) -> str:
    """The exercise prefix of a solution cell; ValueError saying what breaks the format."""
    if cell.get("cell_type") != "code" or cell["metadata"]["nbgrader"].get("grade"):
        raise ValueError(f"solution cell {grade_id!r} must be an ungraded code cell")
    if not grade_id.endswith(SOLUTION_SUFFIX):
        raise ValueError(f"solution grade_id {grade_id!r} must end in {SOLUTION_SUFFIX}")
    try:
        _, body = _code_between(cell_source(cell), BEGIN_SOLUTION, END_SOLUTION)
    except ValueError as err:
        raise ValueError(f"solution cell {grade_id!r} {err}") from None
    if not _has_code(body):
        raise ValueError(f"solution cell {grade_id!r} has an empty solution region")
    return grade_id[: -len(SOLUTION_SUFFIX)]


def _check_tests(cell: dict[str, Any], grade_id: str) -> tuple[str, float]:
    """The exercise prefix and points of a test cell; ValueError saying what breaks the format."""
    meta = cell["metadata"]["nbgrader"]
    if cell.get("cell_type") != "code" or not meta.get("locked"):
        raise ValueError(f"test cell {grade_id!r} must be a locked code cell")
    if not grade_id.endswith(TESTS_SUFFIX):
        raise ValueError(f"test grade_id {grade_id!r} must end in {TESTS_SUFFIX}")
    points = meta.get("points")
    if not isinstance(points, int | float) or points <= 0:
        raise ValueError(f"test cell {grade_id!r} needs points > 0, has {points!r}")
    try:
        visible, hidden = _code_between(cell_source(cell), BEGIN_HIDDEN, END_HIDDEN)
    except ValueError as err:
        raise ValueError(f"test cell {grade_id!r} {err}") from None
    if not _has_code(visible) or not _has_code(hidden):
        raise ValueError(f"test cell {grade_id!r} needs visible and hidden tests")
    return grade_id[: -len(TESTS_SUFFIX)], float(points)


def _nbgrader_cells(cells: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any], str]]:
    """(index, cell, grade_id) of every cell with nbgrader metadata; ValueError on bad ones."""
    found: list[tuple[int, dict[str, Any], str]] = []
    seen_ids: set[str] = set()
    for index, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if not meta:
            lines = {line.strip() for line in cell_source(cell).splitlines()}
            markers = lines & {BEGIN_SOLUTION, BEGIN_HIDDEN}
            if markers and cell.get("cell_type") == "code":
                message = f"{sorted(markers)[0]!r} in a cell without nbgrader metadata"
                raise ValueError(f"cell {index}: {message}")
            continue
        grade_id = meta.get("grade_id", "")
        if not grade_id:
            raise ValueError(f"cell {index}: nbgrader cell without a grade_id")
        if grade_id in seen_ids:
            raise ValueError(f"cell {index}: duplicate grade_id {grade_id!r}")
        seen_ids.add(grade_id)
        found.append((index, cell, grade_id))
    return found


def find_exercises(notebook: Path | dict[str, Any], name: str | None = None) -> list[Exercise]:
    """Check a notebook's nbgrader exercises and return them in notebook order.

    Args:
        notebook: path of an ``.ipynb`` file, or the notebook already loaded as a dict.
        name: how to name the notebook in error messages (default: the path's file name).

    Returns:
        One :class:`Exercise` per solution/test pair, ordered by the solution cell.

    Raises:
        AssignmentError: the notebook has no nbgrader cells, or an exercise breaks the format of
            CONTRIBUTING.md: a solution cell without markers or without its ``_tests`` cell, a
            test cell without points, visible asserts or hidden tests, a duplicated grade_id, or
            solution/hidden-test markers in a cell that has no nbgrader metadata.
    """
    label = name or (Path(notebook).name if not isinstance(notebook, dict) else "notebook")
    try:
        graded = _nbgrader_cells(load_notebook(notebook).get("cells", []))
    except ValueError as err:
        raise AssignmentError(f"{label}: {err}") from None
    if not graded:
        raise AssignmentError(f"{label}: no nbgrader cells (see CONTRIBUTING.md, 'Exercises')")

    def fail(index: int, message: str) -> AssignmentError:
        return AssignmentError(f"{label}: cell {index}: {message}")

    solutions: dict[str, int] = {}
    tests: dict[str, tuple[int, float]] = {}
    for index, cell, grade_id in graded:
        meta = cell["metadata"]["nbgrader"]
        try:
            if meta.get("solution"):
                solutions[_check_solution(cell, grade_id)] = index
            elif meta.get("grade"):
                prefix, points = _check_tests(cell, grade_id)
                tests[prefix] = (index, points)
        except ValueError as err:
            raise fail(index, str(err)) from None
    exercises = []
    for prefix, sol_index in solutions.items():
        if prefix not in tests:
            raise fail(sol_index, f"no test cell {prefix + TESTS_SUFFIX!r} for this solution")
        test_index, points = tests.pop(prefix)
        if test_index < sol_index:
            raise fail(test_index, f"test cell {prefix + TESTS_SUFFIX!r} precedes its solution")
        exercises.append(Exercise(prefix, sol_index, test_index, points))
    for prefix, (test_index, _) in tests.items():
        raise fail(test_index, f"no solution cell {prefix + SOLUTION_SUFFIX!r} for this test")
    return sorted(exercises, key=lambda ex: ex.solution_index)


EXERCISE_HEADING = re.compile(r"^#+\s*(Exercise\s+\d+\b.*?)\s*$", re.MULTILINE)


def exercise_title(notebook: Path | dict[str, Any], exercise: Exercise) -> str:
    """The heading text of ``exercise`` (e.g. ``"Exercise 1 · Weighted PAV (2 points)"``).

    It is the last ``Exercise <k>`` heading in a markdown cell before the solution cell; the
    exercise's grade_id prefix when there is none.
    """
    cells = load_notebook(notebook).get("cells", [])
    for cell in reversed(cells[: exercise.solution_index]):
        if cell.get("cell_type") == "markdown":
            found = EXERCISE_HEADING.findall(cell_source(cell))
            if found:
                return found[-1]
    return exercise.name
