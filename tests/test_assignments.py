"""Classroom assignments: the notebooks' nbgrader exercises, the releases, and autograding.

The release checks cover every notebook in notebooks/. Autograding executes a notebook (10-20 s
each in fast mode), so the reference, blank and partial submissions are graded for the first
and the last notebook only, and the deliberately wrong solutions (tests/wrong_solutions.py) for
notebooks 01 and 03 only (one autograde run per wrong solution of the longest list); set
``MINIS2L_AUTOGRADE_ALL=1`` to autograde every notebook both ways.
"""

from __future__ import annotations

import ast
import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from wrong_solutions import SHORTCUTS, WRONG

from minis2l.assignments import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    CELL_TIMEOUT_S,
    END_HIDDEN,
    END_SOLUTION,
    AssignmentError,
    autograde,
    build_course,
    exercise_title,
    find_exercises,
    forbidden,
    student_notebook,
    submit,
)
from minis2l.cli import main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
if os.environ.get("MINIS2L_AUTOGRADE_ALL", "").strip().lower() in {"1", "true", "yes", "on"}:
    AUTOGRADED = NOTEBOOKS
    WRONG_GRADED = NOTEBOOKS
else:
    AUTOGRADED = sorted({NOTEBOOKS[0], NOTEBOOKS[-1]}) if NOTEBOOKS else []
    # Two cheap notebooks in every run (about 4 autograde runs of 10-20 s each).
    WRONG_GRADED = [p for p in NOTEBOOKS if p.stem.split("_")[0] in {"01", "03"}]
MARKERS = (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict[str, Any]) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _split(source: str, begin: str, end: str) -> tuple[set[str], set[str]]:
    """Stripped code lines outside and inside the begin/end region."""
    outside, inside, state = set(), set(), "out"
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == begin:
            state = "in"
        elif stripped == end:
            state = "out"
        elif stripped and not stripped.startswith("#"):
            (inside if state == "in" else outside).add(stripped)
    return outside, inside


def _cell_by_id(nb: dict[str, Any], grade_id: str) -> dict[str, Any]:
    matches = [
        c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
    ]
    assert len(matches) == 1, f"{grade_id}: {len(matches)} cells"
    return matches[0]


def _python(source: str) -> ast.Module | None:
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return ast.parse(TransformerManager().transform_cell(source))
    except SyntaxError:
        return None


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_course(tmp_path_factory.mktemp("course"), ROOT / "notebooks")


# --- the exercises in the source notebooks --------------------------------------------------


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 3


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_notebook_has_two_exercises_in_nbgrader_format(path: Path):
    exercises = find_exercises(path)
    assert len(exercises) >= 2
    nb = _load(path)
    for ex in exercises:
        solution = nb["cells"][ex.solution_index]["metadata"]["nbgrader"]
        tests = nb["cells"][ex.tests_index]["metadata"]["nbgrader"]
        assert solution["grade_id"] == f"{ex.name}_solution"
        assert tests["grade_id"] == f"{ex.name}_tests"
        assert solution["solution"] and not solution["grade"] and not solution["locked"]
        assert tests["grade"] and tests["locked"] and not tests["solution"]
        assert tests["points"] > 0 and ex.points == tests["points"]
        assert solution["schema_version"] == tests["schema_version"] == 3
        assert ex.solution_index < ex.tests_index
        assert ex.name.startswith(path.stem.split("_")[0]), "grade_ids start with the notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_only_its_own_tests_use_an_exercise_solution(path: Path):
    """A release must run on past an unsolved exercise: later cells may not call its answer."""
    nb = _load(path)
    exercises = find_exercises(path)
    for ex in exercises:
        tree = _python(_source(nb["cells"][ex.solution_index]))
        assert tree is not None
        defined = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        for index in range(ex.solution_index + 1, len(nb["cells"])):
            cell = nb["cells"][index]
            if index == ex.tests_index or cell["cell_type"] != "code":
                continue
            tree = _python(_source(cell))
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} if tree else set()
            assert not used & defined, f"cell {index} uses {sorted(used & defined)} ({ex.name})"


def test_find_exercises_rejects_broken_exercises():
    import nbformat

    def nb(*cells: nbformat.NotebookNode) -> dict[str, Any]:
        return json.loads(nbformat.writes(nbformat.v4.new_notebook(cells=list(cells))))

    def solution(gid: str = "x_ex1_solution") -> nbformat.NotebookNode:
        meta = {"grade": False, "grade_id": gid, "locked": False, "schema_version": 3}
        meta |= {"solution": True, "task": False}
        src = f"def f():\n    {BEGIN_SOLUTION}\n    return 1\n    {END_SOLUTION}"
        return nbformat.v4.new_code_cell(src, metadata={"nbgrader": meta})

    def tests(
        points: float = 1, hidden: bool = True, visible: bool = True
    ) -> nbformat.NotebookNode:
        meta = {"grade": True, "grade_id": "x_ex1_tests", "locked": True, "points": points}
        meta |= {"schema_version": 3, "solution": False, "task": False}
        src = "assert f() == 1\n" if visible else "# nothing visible\n"
        src += f"{BEGIN_HIDDEN}\nassert f()\n{END_HIDDEN}" if hidden else ""
        return nbformat.v4.new_code_cell(src, metadata={"nbgrader": meta})

    assert [ex.name for ex in find_exercises(nb(solution(), tests()))] == ["x_ex1"]
    bare = nbformat.v4.new_code_cell(f"{BEGIN_SOLUTION}\nx = 1\n{END_SOLUTION}")
    cases = {
        "no nbgrader cells": nb(nbformat.v4.new_code_cell("x = 1")),
        "without nbgrader metadata": nb(bare, solution(), tests()),
        "no test cell": nb(solution()),
        "no solution cell": nb(tests()),
        "points > 0": nb(solution(), tests(points=0)),
        "needs both '### BEGIN HIDDEN": nb(solution(), tests(hidden=False)),
        "visible and hidden": nb(solution(), tests(visible=False)),
        "precedes": nb(tests(), solution()),
        "must end in": nb(solution("x_ex1"), tests()),
    }
    for message, notebook in cases.items():
        with pytest.raises(AssignmentError, match=message):
            find_exercises(notebook, name="t.ipynb")


# --- the course directory and the releases ---------------------------------------------------


def test_course_layout(course: Path):
    assert (course / "nbgrader_config.py").is_file()
    assert (course / "gradebook.db").is_file()
    for path in NOTEBOOKS:
        assert (course / "source" / path.stem / path.name).read_bytes() == path.read_bytes()
        assert (course / "release" / path.stem / path.name).is_file()


def test_graded_cells_get_the_time_limit_with_headroom(course: Path, tmp_path: Path):
    """nbgrader reads the per-cell limit from the course's config; bad limits are refused."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    assert config.Execute.timeout == CELL_TIMEOUT_S >= 600  # nbgrader's own default is 30 s
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="timeout"):
            build_course(tmp_path / "c", ROOT / "notebooks", timeout=bad)
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_release_has_no_solutions_and_no_hidden_tests(course: Path, path: Path):
    release_path = course / "release" / path.stem / path.name
    text = release_path.read_text(encoding="utf-8")
    for marker in MARKERS:
        assert marker not in text
    source, release = _load(path), _load(release_path)
    for ex in find_exercises(path):
        src_cell = _source(source["cells"][ex.solution_index])
        rel_cell = _source(_cell_by_id(release, ex.solution_id))
        outside, answer = _split(src_cell, BEGIN_SOLUTION, END_SOLUTION)
        released = {line.strip() for line in rel_cell.splitlines()}
        # The stub names its exercise: heading and grade_id.
        title = exercise_title(source, ex)
        assert title.startswith("Exercise "), f"{ex.name}: no 'Exercise <k>' heading above it"
        stubs = [ln for ln in released if ln.startswith("raise NotImplementedError(")]
        assert len(stubs) == 1, f"{ex.solution_id}: {stubs}"
        assert title in stubs[0] and ex.name in stubs[0], stubs[0]
        assert not (answer - outside) & released, f"{ex.solution_id}: solution code released"
        assert outside <= released, f"{ex.solution_id}: the stub lost the exercise's signature"

        src_tests = _source(source["cells"][ex.tests_index])
        rel_tests = _source(_cell_by_id(release, ex.tests_id))
        visible, hidden = _split(src_tests, BEGIN_HIDDEN, END_HIDDEN)
        released = {line.strip() for line in rel_tests.splitlines()}
        assert visible <= released, f"{ex.tests_id}: visible tests missing from the release"
        assert not (hidden - visible) & released, f"{ex.tests_id}: hidden tests released"
    assert all(not c.get("outputs") for c in release["cells"] if c["cell_type"] == "code")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_the_student_edition_has_the_cells_of_the_release(course: Path, path: Path):
    """python -m minis2l student makes, without nbgrader's gradebook, what a release shows."""
    release = _load(course / "release" / path.stem / path.name)
    edition = student_notebook(_load(path), name=path.name)
    assert [(c.cell_type, c.source) for c in edition.cells] == [
        (c["cell_type"], _source(c)) for c in release["cells"]
    ]


# --- autograding ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", AUTOGRADED, ids=_ids(AUTOGRADED))
def test_reference_solutions_get_full_marks(course: Path, path: Path):
    exercises = find_exercises(path)
    submit(course, "reference", path.stem, course / "source" / path.stem / path.name)
    scores = autograde(course, "reference", path.stem)
    assert scores["max_score"] == sum(ex.points for ex in exercises)
    assert scores["score"] == scores["max_score"]
    assert scores["grades"] == {ex.tests_id: ex.points for ex in exercises}


@pytest.mark.parametrize("path", AUTOGRADED, ids=_ids(AUTOGRADED))
def test_untouched_release_scores_zero_and_stops_at_the_first_exercise(course: Path, path: Path):
    exercises = find_exercises(path)
    submit(course, "blank", path.stem, course / "release" / path.stem / path.name)
    scores = autograde(course, "blank", path.stem)
    assert scores["score"] == 0
    assert scores["max_score"] == sum(ex.points for ex in exercises)
    assert scores["grades"] == {ex.tests_id: 0 for ex in exercises}

    # Run top to bottom, the first failure is NotImplementedError in the first exercise's
    # tests, and every failure is an exercise's NotImplementedError, nothing obscure.
    graded = _load(course / "autograded" / "blank" / path.stem / path.name)
    failures = [
        (c["metadata"].get("nbgrader", {}).get("grade_id"), out["ename"])
        for c in graded["cells"]
        if c["cell_type"] == "code"
        for out in c.get("outputs", [])
        if out["output_type"] == "error"
    ]
    assert failures, "the untouched release ran without an error"
    assert failures[0] == (exercises[0].tests_id, "NotImplementedError")
    assert set(failures) <= {(ex.tests_id, "NotImplementedError") for ex in exercises}


@pytest.mark.parametrize("path", AUTOGRADED, ids=_ids(AUTOGRADED))
def test_a_partial_solution_gets_partial_credit(course: Path, path: Path, tmp_path: Path):
    exercises = find_exercises(path)
    solved = exercises[0]
    source = _load(path)
    release = _load(course / "release" / path.stem / path.name)
    answer = _source(source["cells"][solved.solution_index]).splitlines(keepends=True)
    cell = _cell_by_id(release, solved.solution_id)
    cell["source"] = "".join(ln for ln in answer if ln.strip() not in MARKERS)
    work = tmp_path / path.name
    work.write_text(json.dumps(copy.deepcopy(release)), encoding="utf-8")

    submit(course, "partial", path.stem, work)
    scores = autograde(course, "partial", path.stem)
    assert scores["grades"][solved.tests_id] == solved.points
    assert all(scores["grades"][ex.tests_id] == 0 for ex in exercises[1:])
    assert 0 < scores["score"] == solved.points < scores["max_score"]


# --- wrong answers and shortcuts ------------------------------------------------------------


def _defined_function(source: str) -> str:
    """Name of the (single) function a solution cell defines."""
    tree = _python(source)
    assert tree is not None, "not valid Python"
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert len(names) == 1, f"defines {names}"
    return names[0]


def _instructions(nb: dict[str, Any], solution_index: int) -> str:
    """The markdown of an exercise: from its 'Exercise' heading down to its solution cell."""
    text: list[str] = []
    for cell in reversed(nb["cells"][:solution_index]):
        if cell["cell_type"] != "markdown":
            break
        text.insert(0, _source(cell))
        if re.search(r"^#+\s*Exercise\s+\d+", _source(cell), re.MULTILINE):
            break
    return "\n".join(text)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_every_exercise_has_wrong_solutions_and_a_forbidden_shortcut(path: Path):
    nb = _load(path)
    for ex in find_exercises(path):
        wanted = _defined_function(_source(nb["cells"][ex.solution_index]))
        assert len(WRONG.get(ex.name, {})) >= 3, f"{ex.name}: needs at least 3 wrong solutions"
        for label, source in {**WRONG[ex.name], **SHORTCUTS.get(ex.name, {})}.items():
            assert _defined_function(source) == wanted, f"{ex.name} {label!r}"
            assert BEGIN_SOLUTION not in source and "NotImplementedError" not in source
        # Where the library, scikit-learn or torch computes the answer, the instructions say
        # not to call it and a hidden test runs the answer with that function forbidden.
        for label in SHORTCUTS.get(ex.name, {}):
            called = re.match(r"calls ([\w.]+)", label)
            assert called, f"{ex.name}: shortcut label {label!r} must read 'calls <function>'"
            name = called.group(1).split(".")[-1]
            told = _instructions(nb, ex.solution_index)
            assert name in told, f"{ex.name}: the instructions must say not to call {name}"
            _, hidden = _split(_source(nb["cells"][ex.tests_index]), BEGIN_HIDDEN, END_HIDDEN)
            assert any("forbidden(" in line for line in hidden), f"{ex.name}: no forbidden()"


def test_forbidden_blocks_module_and_notebook_names_and_restores_them():
    import numpy as np

    namespace = {"argsort": np.argsort, "np": np}
    original = np.argsort
    with forbidden(namespace, "numpy.argsort", "no_such_module.f", "numpy.no_such_attr"):
        for call in (np.argsort, namespace["argsort"]):
            with pytest.raises(AssertionError, match="must not call numpy.argsort"):
                call([2, 0, 1])
        assert np.sort([2, 0, 1]).tolist() == [0, 1, 2], "other functions still work"
    assert np.argsort is original and namespace["argsort"] is original
    with pytest.raises(RuntimeError), forbidden(namespace, "numpy.argsort"):
        raise RuntimeError("a failing answer")
    assert np.argsort is original and namespace["argsort"] is original


_CELL_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _visible_lines(test_source: str) -> int:
    """How many lines of a test cell come before its hidden tests."""
    lines = [line.strip() for line in test_source.splitlines()]
    return lines.index(BEGIN_HIDDEN)


def _failure(cell: dict[str, Any]) -> tuple[str, int | None] | None:
    """(exception name, line of the test cell that raised) of an executed cell, if it failed."""
    for out in cell.get("outputs", []):
        if out["output_type"] == "error":
            found = _CELL_LINE.search(_ANSI.sub("", "\n".join(out["traceback"])))
            return out["ename"], int(found.group(1)) if found else None
    return None


def _wrong_rounds(exercises: list[Any]) -> list[dict[str, tuple[str, str, bool]]]:
    """Submissions to grade: each fills every exercise with one wrong answer or shortcut.

    Exercises are independent (test_only_its_own_tests_use_an_exercise_solution), so one
    autograde run checks one wrong answer of every exercise at once.
    """
    entries = {
        ex.name: [(label, src, False) for label, src in WRONG[ex.name].items()]
        + [(label, src, True) for label, src in SHORTCUTS.get(ex.name, {}).items()]
        for ex in exercises
    }
    rounds = max(len(e) for e in entries.values())
    return [{name: e[r % len(e)] for name, e in entries.items()} for r in range(rounds)]


@pytest.mark.parametrize("path", WRONG_GRADED, ids=_ids(WRONG_GRADED))
def test_wrong_solutions_lose_points_and_fail_a_visible_test(
    course: Path, path: Path, tmp_path: Path
):
    exercises = find_exercises(path)
    source = _load(path)
    problems = []
    for r, chosen in enumerate(_wrong_rounds(exercises)):
        release = _load(course / "release" / path.stem / path.name)
        for ex in exercises:
            _cell_by_id(release, ex.solution_id)["source"] = chosen[ex.name][1].strip() + "\n"
        work = tmp_path / f"wrong{r}" / path.name
        work.parent.mkdir()
        work.write_text(json.dumps(release), encoding="utf-8")
        submit(course, f"wrong{r}", path.stem, work)
        scores = autograde(course, f"wrong{r}", path.stem)
        graded = _load(course / "autograded" / f"wrong{r}" / path.stem / path.name)
        for ex in exercises:
            label, _, shortcut = chosen[ex.name]
            what = f"{ex.name} {'shortcut' if shortcut else 'wrong solution'} {label!r}"
            if scores["grades"][ex.tests_id] >= ex.points:
                problems.append(f"{what} gets full marks")
                continue
            failure = _failure(_cell_by_id(graded, ex.tests_id))
            if failure is None or failure[0] == "NotImplementedError":
                problems.append(f"{what}: unexpected failure {failure}")
            elif not shortcut:
                visible = _visible_lines(_source(source["cells"][ex.tests_index]))
                if failure[1] is None or failure[1] > visible:
                    problems.append(f"{what} passes every visible test (fails line {failure[1]})")
    assert not problems, "\n".join(problems)


# --- the command line -------------------------------------------------------------------------


def test_cli_help():
    result = subprocess.run(
        [sys.executable, "-m", "minis2l", "assignments", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--out" in result.stdout and "--notebooks" in result.stdout


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    import nbformat

    status = main(["assignments", "--out", str(tmp_path / "c"), "--notebooks", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert status != 0 and "notebooks directory not found" in err and err.count("\n") == 1

    (tmp_path / "nb").mkdir()
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(plain, tmp_path / "nb" / "plain.ipynb")
    status = main(
        ["assignments", "--out", str(tmp_path / "c"), "--notebooks", str(tmp_path / "nb")]
    )
    err = capsys.readouterr().err
    assert status != 0 and "plain.ipynb" in err and "no nbgrader cells" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "c").exists(), "nothing is written for a broken notebook"


# --- the nbgrader route of course/nbgrader.md, for one cheap notebook --------------------------


@pytest.mark.filterwarnings("ignore:.*not in session")  # nbgrader's gradebook, not the course
def test_the_nbgrader_route_release_fetch_submit_collect_autograde_feedback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The commands of course/nbgrader.md as written, for a student who solved exercise 1.

    Each ``nbgrader ...`` command runs in this process (nbgrader's own test runner), since
    starting nbgrader costs several seconds per command.
    """
    from nbgrader.tests import run_nbgrader
    from nbgrader.utils import get_username

    path = next(p for p in NOTEBOOKS if p.stem.startswith("01_"))
    name = path.stem
    (tmp_path / "notebooks").mkdir()
    shutil.copy(path, tmp_path / "notebooks" / path.name)
    exchange, home = tmp_path / "exchange", tmp_path / "student_home"
    exchange.mkdir()
    home.mkdir()
    scripts = str(Path(sys.executable).parent)  # nbgrader runs alembic from there
    monkeypatch.setenv("PATH", os.pathsep.join([scripts, os.environ.get("PATH", "")]))

    def nbgrader(cwd: Path, *args: str) -> None:
        monkeypatch.chdir(cwd)
        run_nbgrader([*args, f"--Exchange.root={exchange}"])

    course = build_course(tmp_path / "course", tmp_path / "notebooks")  # minis2l assignments
    nbgrader(course, "release_assignment", name)
    nbgrader(home, "fetch_assignment", name, "--course", "minis2l")
    work = home / name / path.name
    nb = _load(work)
    exercises = find_exercises(path)
    solved = exercises[0]
    answer = _source(_load(path)["cells"][solved.solution_index]).splitlines(keepends=True)
    _cell_by_id(nb, solved.solution_id)["source"] = "".join(
        ln for ln in answer if ln.strip() not in MARKERS
    )
    work.write_text(json.dumps(nb), encoding="utf-8")
    nbgrader(home, "submit", name, "--course", "minis2l")
    nbgrader(course, "collect", name)
    student = get_username()
    assert (course / "submitted" / student / name / path.name).is_file()
    nbgrader(course, "autograde", name)
    nbgrader(course, "generate_feedback", name)
    assert (course / "feedback" / student / name / f"{name}.html").is_file()
    nbgrader(course, "release_feedback", name)
    nbgrader(home, "fetch_feedback", name, "--course", "minis2l")
    assert list((home / name / "feedback").rglob(f"{name}.html")), "no feedback fetched"
    nbgrader(course, "export")
    with open(course / "grades.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["assignment"] == name]
    assert [r["student_id"] for r in rows] == [student]
    assert float(rows[0]["score"]) == solved.points
    assert float(rows[0]["max_score"]) == sum(ex.points for ex in exercises) > solved.points
