"""Classroom assignments: turn the notebooks into an nbgrader course and grade submissions.

``python -m minis2l assignments`` builds an nbgrader course directory (by default
``assignments/`` at the repository root; generated, never committed)::

    assignments/
        nbgrader_config.py
        gradebook.db                        nbgrader's SQLite gradebook
        source/<assignment>/<notebook>.ipynb    one assignment per notebook (the notebook stem)
        release/<assignment>/<notebook>.ipynb   the student version nbgrader generated

Every exercise is a pair of cells (CONTRIBUTING.md, "Exercises"): a solution cell with grade_id
``<prefix>_solution`` whose answer sits between ``### BEGIN SOLUTION`` / ``### END SOLUTION``,
and an autograded, locked test cell ``<prefix>_tests`` with points, visible asserts, then hidden
ones between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``. :func:`find_exercises`
checks that structure; nbgrader's own ``generate_assignment`` writes the releases and
``autograde`` grades submissions placed under ``submitted/<student>/<assignment>/``.

Two additions to nbgrader's releases: each solution stub raises a ``NotImplementedError`` whose
message names its exercise (so the student sees *which* exercise is still open), and hidden
tests can run a student's answer under :func:`forbidden`, which makes a call to the function
that computes the answer (a scikit-learn estimator, the library's finished piece) fail.

nbgrader is imported lazily, so ``python -m minis2l --help`` does not pay for it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOKS = REPO_ROOT / "notebooks"
DEFAULT_COURSE = REPO_ROOT / "assignments"
COURSE_ID = "minis2l"

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
SOLUTION_SUFFIX = "_solution"
TESTS_SUFFIX = "_tests"

CONFIG_TEMPLATE = '''\
"""nbgrader settings for the minis2l course (written by `python -m minis2l assignments`).

Run nbgrader commands from this directory, e.g. `nbgrader autograde 01_isotonic_regression`.
"""

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "{course_id}"
# One assignment per notebook; every notebook of an assignment is graded.
c.CourseDirectory.notebook_id = "*"
# nbgrader's default per-cell limit (30 s) is too short for full-size training cells.
c.Execute.timeout = {timeout}
# The student stub nbgrader puts in place of each solution region (its default).
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
# release_assignment / collect exchange files through a folder every student can write
# (nbgrader's default: /usr/local/share/nbgrader/exchange); uncomment to choose another.
# c.Exchange.root = "/srv/nbgrader/exchange"
'''

Log = Callable[[str], None]


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


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _load(notebook: Path | dict[str, Any]) -> dict[str, Any]:
    if isinstance(notebook, dict):
        return notebook
    return json.loads(Path(notebook).read_text(encoding="utf-8"))


def _marker_lines(source: str) -> list[str]:
    return [line.strip() for line in source.splitlines()]


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
    cells = _load(notebook).get("cells", [])
    solutions: dict[str, int] = {}
    tests: dict[str, tuple[int, float]] = {}
    seen_ids: set[str] = set()
    any_nbgrader = False

    def fail(index: int, message: str) -> AssignmentError:
        return AssignmentError(f"{label}: cell {index}: {message}")

    for index, cell in enumerate(cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        source = _source(cell)
        markers = set(_marker_lines(source)) & {BEGIN_SOLUTION, BEGIN_HIDDEN}
        if not meta:
            if markers and cell.get("cell_type") == "code":
                raise fail(index, f"{sorted(markers)[0]!r} in a cell without nbgrader metadata")
            continue
        any_nbgrader = True
        grade_id = meta.get("grade_id", "")
        if not grade_id:
            raise fail(index, "nbgrader cell without a grade_id")
        if grade_id in seen_ids:
            raise fail(index, f"duplicate grade_id {grade_id!r}")
        seen_ids.add(grade_id)
        if meta.get("solution"):
            if cell.get("cell_type") != "code" or meta.get("grade"):
                raise fail(index, f"solution cell {grade_id!r} must be an ungraded code cell")
            if not grade_id.endswith(SOLUTION_SUFFIX):
                raise fail(index, f"solution grade_id {grade_id!r} must end in {SOLUTION_SUFFIX}")
            try:
                _, body = _code_between(source, BEGIN_SOLUTION, END_SOLUTION)
            except ValueError as err:
                raise fail(index, f"solution cell {grade_id!r} {err}") from None
            if not _has_code(body):
                raise fail(index, f"solution cell {grade_id!r} has an empty solution region")
            solutions[grade_id[: -len(SOLUTION_SUFFIX)]] = index
        elif meta.get("grade"):
            if cell.get("cell_type") != "code" or not meta.get("locked"):
                raise fail(index, f"test cell {grade_id!r} must be a locked code cell")
            if not grade_id.endswith(TESTS_SUFFIX):
                raise fail(index, f"test grade_id {grade_id!r} must end in {TESTS_SUFFIX}")
            points = meta.get("points")
            if not isinstance(points, int | float) or points <= 0:
                raise fail(index, f"test cell {grade_id!r} needs points > 0, has {points!r}")
            try:
                visible, hidden = _code_between(source, BEGIN_HIDDEN, END_HIDDEN)
            except ValueError as err:
                raise fail(index, f"test cell {grade_id!r} {err}") from None
            if not _has_code(visible) or not _has_code(hidden):
                raise fail(index, f"test cell {grade_id!r} needs visible and hidden tests")
            tests[grade_id[: -len(TESTS_SUFFIX)]] = (index, float(points))

    if not any_nbgrader:
        raise AssignmentError(f"{label}: no nbgrader cells (see CONTRIBUTING.md, 'Exercises')")
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
STUB = "raise NotImplementedError()"


def exercise_title(notebook: Path | dict[str, Any], exercise: Exercise) -> str:
    """The heading text of ``exercise`` (e.g. ``"Exercise 1 · Weighted PAV (2 points)"``).

    It is the last ``Exercise <k>`` heading in a markdown cell before the solution cell; the
    exercise's grade_id prefix when there is none.
    """
    cells = _load(notebook).get("cells", [])
    for cell in reversed(cells[: exercise.solution_index]):
        if cell.get("cell_type") == "markdown":
            found = EXERCISE_HEADING.findall(_source(cell))
            if found:
                return found[-1]
    return exercise.name


def named_stub(title: str, name: str) -> str:
    """The line that replaces nbgrader's bare stub: a NotImplementedError naming the exercise."""
    message = f"{title} ({name}) is not solved yet: replace this line with your answer"
    return f"raise NotImplementedError({message!r})"


def name_release_stubs(release: Path, exercises: list[Exercise], titles: dict[str, str]) -> int:
    """Rewrite the stubs of a generated release so that each names its exercise.

    nbgrader puts one stub (``raise NotImplementedError()``) in every solution region; its
    message is empty, so a student who runs the notebook does not see which exercise stopped
    it. Solution cells are neither locked nor graded, so nbgrader's autograder leaves them as
    the student wrote them, and changing the stub changes nothing in grading.

    Returns:
        The number of stubs rewritten.
    """
    nb = json.loads(release.read_text(encoding="utf-8"))
    by_id = {ex.solution_id: ex for ex in exercises}
    count = 0
    for cell in nb.get("cells", []):
        ex = by_id.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))
        if ex is None:
            continue
        lines = _source(cell).splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.strip() == STUB:
                indent = line[: len(line) - len(line.lstrip())]
                end = "\n" if line.endswith("\n") else ""
                lines[i] = indent + named_stub(titles[ex.name], ex.name) + end
                count += 1
        cell["source"] = "".join(lines)
    release.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return count


class _Forbidden:
    """Stands in for a forbidden function while a hidden test runs: any call fails."""

    def __init__(self, name: str, exercise: str) -> None:
        self.name, self.exercise = name, exercise

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError(
            f"{self.exercise} must not call {self.name}: the exercise asks you to compute "
            "this yourself"
        )


@contextlib.contextmanager
def forbidden(namespace: dict[str, Any], *names: str, exercise: str = "this exercise"):
    """Make the named functions unusable while a hidden test runs a student's answer.

    An exercise that asks for, say, weighted isotonic regression must not be passed by calling
    scikit-learn's ``IsotonicRegression``. Inside ``with forbidden(globals(), ...)`` each named
    function is replaced by a stub whose call raises ``AssertionError`` naming it, both where
    it lives (``module.attr``, so ``from sklearn.isotonic import ...`` inside the answer finds
    the stub too) and under every name in ``namespace`` bound to it (the notebook's own
    imports). Everything is put back on exit.

    Args:
        namespace: the notebook's globals (``globals()`` in a test cell).
        names: dotted paths ``"package.module.attr"``; one whose module is not installed or
            lacks the attribute is skipped (nothing can call it then).
        exercise: how the failure message names the exercise.

    Yields:
        None.
    """
    import importlib

    undo: list[tuple[Any, str, Any, bool]] = []  # (owner, attr, old value, owner is a dict)
    try:
        for dotted in names:
            module_name, _, attr = dotted.rpartition(".")
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            if not hasattr(module, attr):
                continue
            original = getattr(module, attr)
            stub = _Forbidden(dotted, exercise)
            undo.append((module, attr, original, False))
            setattr(module, attr, stub)
            for key, value in list(namespace.items()):
                if value is original:
                    undo.append((namespace, key, value, True))
                    namespace[key] = stub
        yield
    finally:
        for owner, attr, old, is_dict in reversed(undo):
            if is_dict:
                owner[attr] = old
            else:
                setattr(owner, attr, old)


def _api(course: Path) -> Any:
    """An ``NbGraderAPI`` configured from ``course/nbgrader_config.py``, rooted at ``course``."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    config_file = course / "nbgrader_config.py"
    if config_file.is_file():
        config.merge(PyFileConfigLoader(config_file.name, path=str(course)).load_config())
    config.CourseDirectory.root = str(course)
    return NbGraderAPI(config=config)


@contextlib.contextmanager
def _nbgrader_env() -> Iterator[None]:
    """Put this interpreter's scripts folder on PATH while nbgrader runs; quiet its warnings.

    nbgrader runs the ``alembic`` command to set up its gradebook, which is missing from PATH
    when the virtual environment's python is called without activating it. Its gradebook code
    also triggers SQLAlchemy warnings that say nothing about the course.
    """
    scripts = str(Path(sys.executable).parent)
    old = os.environ.get("PATH")
    parts = old.split(os.pathsep) if old else []
    if scripts not in parts:
        os.environ["PATH"] = os.pathsep.join([scripts, *parts])
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"nbgrader\.")
            warnings.filterwarnings("ignore", message=r".*not in session")
            yield
    finally:
        if old is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = old


_ERROR_LINE = re.compile(r"^\s*[\w.]*(Error|Exception): ")


def _check_result(result: dict[str, Any], what: str) -> None:
    """Raise AssignmentError with the most telling line of a failed nbgrader API result."""
    if result.get("success"):
        return
    lines = [
        ln.strip() for ln in (result.get("log", "") + "\n" + result.get("error", "")).splitlines()
    ]
    errors = [ln for ln in lines if _ERROR_LINE.match(ln) and "NbGraderException" not in ln]
    detail = errors[0] if errors else next((ln for ln in reversed(lines) if ln), "no details")
    raise AssignmentError(f"{what} failed: {detail}")


def build_course(
    out: Path | str = DEFAULT_COURSE,
    notebooks_dir: Path | str = DEFAULT_NOTEBOOKS,
    *,
    timeout: int = 600,
    log: Log | None = None,
) -> Path:
    """Build (or refresh) an nbgrader course from every ``*.ipynb`` in ``notebooks_dir``.

    Each notebook becomes one assignment named by its stem: it is copied to
    ``out/source/<stem>/<stem>.ipynb``, then nbgrader's ``generate_assignment`` writes the
    student version to ``out/release/<stem>/<stem>.ipynb`` and records the assignment in
    ``out/gradebook.db``; each stub in the release then names its exercise
    (:func:`name_release_stubs`). ``out/nbgrader_config.py`` is (re)written. Submissions,
    autograded work and the gradebook's grades are kept.

    Args:
        out: the course directory (created if missing).
        notebooks_dir: where the source notebooks are.
        timeout: nbgrader's per-cell execution limit in seconds, for autograding.
        log: called with one progress line at a time (default: print nothing).

    Returns:
        The course directory as an absolute path.

    Raises:
        AssignmentError: missing notebooks directory, no notebooks, a notebook whose exercises
            break the format (see :func:`find_exercises`), or nbgrader failing.
    """
    say = log or (lambda _msg: None)
    notebooks_dir = Path(notebooks_dir)
    if not notebooks_dir.is_dir():
        raise AssignmentError(f"notebooks directory not found: {notebooks_dir}")
    notebooks = sorted(p for p in notebooks_dir.glob("*.ipynb") if p.is_file())
    if not notebooks:
        raise AssignmentError(f"no notebooks (*.ipynb) in {notebooks_dir}")
    found = {nb: find_exercises(nb) for nb in notebooks}  # check everything before writing

    course = Path(out).resolve()
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(
        CONFIG_TEMPLATE.format(course_id=COURSE_ID, timeout=int(timeout)), encoding="utf-8"
    )
    say(f"course directory {course} ({len(notebooks)} notebooks from {notebooks_dir})")
    for nb in notebooks:
        source_dir = course / "source" / nb.stem
        if source_dir.exists():
            shutil.rmtree(source_dir)
        source_dir.mkdir(parents=True)
        shutil.copy2(nb, source_dir / nb.name)

    api = _api(course)
    for nb, exercises in found.items():
        with _nbgrader_env():
            result = api.generate_assignment(nb.stem)
        _check_result(result, f"nbgrader generate_assignment {nb.stem}")
        points = sum(ex.points for ex in exercises)
        release = course / "release" / nb.stem / nb.name
        titles = {ex.name: exercise_title(nb, ex) for ex in exercises}
        if name_release_stubs(release, exercises, titles) != len(exercises):
            raise AssignmentError(f"{nb.name}: expected one solution stub per exercise")
        say(
            f"  {nb.stem}: {len(exercises)} exercises, {points:g} points -> "
            f"{release.relative_to(course)}"
        )
    return course


def submit(course: Path | str, student_id: str, assignment: str, notebook: Path | str) -> Path:
    """Place ``notebook`` as ``student_id``'s submission of ``assignment``, ready to autograde.

    The file is copied to ``course/submitted/<student_id>/<assignment>/<assignment>.ipynb``
    (replacing an earlier submission). Returns that path.
    """
    dest_dir = Path(course) / "submitted" / student_id / assignment
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / f"{assignment}.ipynb"
    shutil.copyfile(notebook, dest)
    return dest


def autograde(course: Path | str, student_id: str, assignment: str) -> dict[str, Any]:
    """Run nbgrader's ``autograde`` on one submission and read its scores from the gradebook.

    The submission must be in ``course/submitted/<student_id>/<assignment>/`` (see
    :func:`submit`); the student is added to the gradebook if new. The executed, graded
    notebook lands in ``course/autograded/<student_id>/<assignment>/``.

    Returns:
        ``{"score": total, "max_score": total possible, "grades": {grade_id: score}}`` with one
        entry in ``grades`` per autograded test cell.

    Raises:
        AssignmentError: nbgrader failed (e.g. no such submission or assignment).
    """
    course = Path(course).resolve()
    api = _api(course)
    with _nbgrader_env():
        result = api.autograde(assignment, student_id)
        _check_result(result, f"nbgrader autograde {assignment} for {student_id}")
        gradebook = api.gradebook
        try:
            submission = gradebook.find_submission(assignment, student_id)
            grades = {
                grade.name: float(grade.score)
                for notebook in submission.notebooks
                for grade in notebook.grades
                if grade.max_score > 0
            }
            return {
                "score": float(submission.score),
                "max_score": float(submission.max_score),
                "grades": grades,
            }
        finally:
            gradebook.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``assignments`` subcommand's options to ``parser``."""
    parser.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        default=DEFAULT_COURSE,
        help="course directory to build (default: assignments/ at the repository root)",
    )
    parser.add_argument(
        "--notebooks",
        metavar="DIR",
        type=Path,
        default=DEFAULT_NOTEBOOKS,
        help="where the source notebooks are (default: notebooks/ at the repository root)",
    )
    parser.epilog = (
        "Then, from the course directory: nbgrader autograde ASSIGNMENT, "
        "nbgrader generate_feedback ASSIGNMENT, nbgrader export (README, 'For instructors')."
    )


def run(args: argparse.Namespace) -> int:
    """Build the course and the student releases; print progress; return the exit status."""
    try:
        course = build_course(args.out, args.notebooks, log=print)
    except AssignmentError as err:
        print(f"minis2l assignments: error: {err}", file=sys.stderr)
        return 1
    print(f"student releases in {course / 'release'}; grade with nbgrader from {course}")
    return 0
