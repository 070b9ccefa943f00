"""The student edition (python -m minis2l student): no spoilers, and a learner's work is kept.

The edition of every notebook is built once per run (a few seconds); the rebuild rules run on
copies of two notebooks; one notebook (01) is executed up to its first exercise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

from minis2l.assignments import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    END_HIDDEN,
    END_SOLUTION,
    build_student_edition,
    exercise_title,
    find_exercises,
    student_notebook,
)
from minis2l.assignments.student import MANIFEST
from minis2l.cli import main

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MARKERS = [m.removeprefix("### ") for m in (BEGIN_SOLUTION, END_SOLUTION, BEGIN_HIDDEN, END_HIDDEN)]


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _source(cell: dict[str, Any]) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def _code_lines(source: str) -> set[str]:
    return {
        ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")
    }


def _regions(source: str, begin: str, end: str) -> tuple[set[str], set[str]]:
    """Code lines outside and inside the begin/end regions of one cell."""
    outside, inside, state = [], [], "out"
    for line in source.splitlines():
        if line.strip() == begin:
            state = "in"
        elif line.strip() == end:
            state = "out"
        else:
            (inside if state == "in" else outside).append(line)
    return _code_lines("\n".join(outside)), _code_lines("\n".join(inside))


def _secret_lines(source_nb: dict[str, Any]) -> set[str]:
    """Code lines found only inside solution or hidden-test regions of the source notebook."""
    public, secret = set(), set()
    for cell in source_nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        out1, in1 = _regions(_source(cell), BEGIN_SOLUTION, END_SOLUTION)
        out2, in2 = _regions(_source(cell), BEGIN_HIDDEN, END_HIDDEN)
        public |= out1 & out2
        secret |= in1 | in2
    return secret - public


@pytest.fixture(scope="module")
def edition(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("student")
    build_student_edition(out, ROOT / "notebooks")
    return out


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_no_solution_and_no_hidden_test_in_view(edition: Path, path: Path):
    student_path = edition / path.name
    text = student_path.read_text(encoding="utf-8")
    for marker in MARKERS:
        assert marker not in text, f"{marker!r} left in the student edition"
    source, student = _load(path), _load(student_path)
    secret = _secret_lines(source)
    assert secret, "the source notebook has solutions and hidden tests to hide"
    shown = set().union(*(_code_lines(_source(c)) for c in student["cells"]))
    assert not secret & shown, f"solution or hidden-test lines in view: {sorted(secret & shown)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_stubs_name_their_exercise_and_the_rest_is_the_source(edition: Path, path: Path):
    source, student = _load(path), _load(edition / path.name)
    assert len(student["cells"]) == len(source["cells"])
    exercises = find_exercises(path)
    changed = {ex.solution_index for ex in exercises} | {ex.tests_index for ex in exercises}
    for ex in exercises:
        src, mine = source["cells"][ex.solution_index], student["cells"][ex.solution_index]
        outside, _ = _regions(_source(src), BEGIN_SOLUTION, END_SOLUTION)
        lines = _code_lines(_source(mine))
        stubs = [ln for ln in lines if ln.startswith("raise NotImplementedError(")]
        assert len(stubs) == 1, stubs
        assert exercise_title(source, ex) in stubs[0] and ex.name in stubs[0], stubs[0]
        assert outside <= lines, f"{ex.name}: the stub lost the signature or docstring"
        visible, _ = _regions(_source(source["cells"][ex.tests_index]), BEGIN_HIDDEN, END_HIDDEN)
        assert visible, f"{ex.name}: no visible tests in the source"
        assert visible <= _code_lines(_source(student["cells"][ex.tests_index]))
    for index, (src, mine) in enumerate(zip(source["cells"], student["cells"], strict=True)):
        assert mine["metadata"] == src["metadata"] and mine["cell_type"] == src["cell_type"]
        assert not mine.get("outputs") and mine.get("execution_count") is None
        if index not in changed:
            assert _source(mine) == _source(src), f"cell {index} differs from the source"


def test_hints_are_kept(edition: Path):
    hints = 0
    for path in NOTEBOOKS:
        student = _load(edition / path.name)
        markdown = [_source(c) for c in student["cells"] if c["cell_type"] == "markdown"]
        hints += sum(md.count("<details>") for md in markdown)
        source = [_source(c) for c in _load(path)["cells"] if c["cell_type"] == "markdown"]
        assert markdown == source, f"{path.name}: markdown differs from the source"
    assert hints > 0, "no <details> hint in any notebook"


def test_a_student_notebook_runs_up_to_its_first_exercise(edition: Path):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    path = next(p for p in NOTEBOOKS if p.name.startswith("01_"))
    first = find_exercises(path)[0]
    nb = nbformat.read(edition / path.name, as_version=4)
    nb.cells = nb.cells[: first.tests_index + 1]  # nothing after the first exercise's tests
    client = NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(edition)}})
    with pytest.raises(CellExecutionError) as caught:
        client.execute()
    assert caught.value.ename == "NotImplementedError"
    assert exercise_title(_load(path), first) in caught.value.evalue
    failed = [
        i
        for i, c in enumerate(nb.cells)
        if any(o.output_type == "error" for o in c.get("outputs", []))
    ]
    assert failed == [first.tests_index], "it stops at the first exercise's tests, nowhere before"


# --- rebuilding never loses a learner's work -----------------------------------------------


@pytest.fixture
def two_notebooks(tmp_path: Path) -> Path:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for path in NOTEBOOKS[:2]:
        shutil.copy(path, folder / path.name)
    return folder


def _edit_markdown(path: Path, text: str) -> None:
    nb = nbformat.read(path, as_version=4)
    next(c for c in nb.cells if c.cell_type == "markdown").source += text
    nbformat.write(nb, path)


def _expected(path: Path) -> bytes:
    return (nbformat.writes(student_notebook(_load(path), name=path.name)) + "\n").encode()


def test_a_changed_notebook_is_never_overwritten(two_notebooks: Path, tmp_path: Path):
    out = tmp_path / "student"
    first, second = sorted(p.name for p in two_notebooks.glob("*.ipynb"))
    build_student_edition(out, two_notebooks)
    mine = out / first
    _edit_markdown(mine, "\n\nMy notes: the pool merges left to right.")
    work = mine.read_bytes()

    # The source did not change: the learner's notebook stays, nothing is written beside it.
    build_student_edition(out, two_notebooks)
    assert mine.read_bytes() == work
    assert sorted(p.name for p in out.glob("*.ipynb")) == [first, second]

    # The source changed: the untouched notebook is refreshed, the learner's one is kept and
    # the new edition lands beside it.
    for name in (first, second):
        _edit_markdown(two_notebooks / name, "\n\nA sentence added to the course.")
    lines: list[str] = []
    where = build_student_edition(out, two_notebooks, log=lines.append)
    assert mine.read_bytes() == work
    fresh = out / f"{Path(first).stem}.fresh.ipynb"
    assert where[first] == fresh and fresh.read_bytes() == _expected(two_notebooks / first)
    assert (out / second).read_bytes() == _expected(two_notebooks / second)
    assert where[second] == out / second
    assert any(first in ln and fresh.name in ln for ln in lines), lines

    # The learner works in the fresh copy too: a later edition goes to the next free name.
    _edit_markdown(fresh, "\n\nMore notes.")
    fresh_work = fresh.read_bytes()
    _edit_markdown(two_notebooks / first, "\n\nAnother sentence.")
    where = build_student_edition(out, two_notebooks)
    assert mine.read_bytes() == work and fresh.read_bytes() == fresh_work
    assert where[first].name == f"{Path(first).stem}.fresh-2.ipynb"
    assert where[first].read_bytes() == _expected(two_notebooks / first)


def test_force_replaces_a_changed_notebook_and_keeps_a_backup(two_notebooks: Path, tmp_path: Path):
    out = tmp_path / "student"
    name = sorted(p.name for p in two_notebooks.glob("*.ipynb"))[0]
    build_student_edition(out, two_notebooks)
    _edit_markdown(out / name, "\n\nMy notes.")
    work = (out / name).read_bytes()
    build_student_edition(out, two_notebooks, force=True)
    assert (out / name).read_bytes() == _expected(two_notebooks / name)
    assert (out / f"{Path(name).stem}.backup.ipynb").read_bytes() == work


def test_without_a_manifest_only_notebooks_holding_the_edition_count_as_ours(
    two_notebooks: Path, tmp_path: Path
):
    out = tmp_path / "student"
    build_student_edition(out, two_notebooks)
    name = sorted(p.name for p in two_notebooks.glob("*.ipynb"))[0]
    (out / MANIFEST).unlink()
    build_student_edition(out, two_notebooks)  # unchanged: recorded again as ours
    _edit_markdown(two_notebooks / name, "\n\nChanged.")
    build_student_edition(out, two_notebooks)
    assert (out / name).read_bytes() == _expected(two_notebooks / name), "refreshed"

    (out / MANIFEST).unlink()
    before = (out / name).read_bytes()
    _edit_markdown(two_notebooks / name, "\n\nChanged again.")
    build_student_edition(out, two_notebooks)
    assert (out / name).read_bytes() == before, "without a record, the notebook counts as yours"
    assert (out / f"{Path(name).stem}.fresh.ipynb").read_bytes() == _expected(two_notebooks / name)


# --- the command line -------------------------------------------------------------------------


def test_cli_writes_the_edition(two_notebooks: Path, tmp_path: Path, capsys):
    out = tmp_path / "student"
    assert main(["student", "--out", str(out), "--notebooks", str(two_notebooks)]) == 0
    names = sorted(p.name for p in two_notebooks.glob("*.ipynb"))
    assert sorted(p.name for p in out.glob("*.ipynb")) == names
    printed = capsys.readouterr().out
    assert all(f"{name}: written" in printed for name in names), printed


def test_cli_errors_are_one_line_and_write_nothing(tmp_path: Path, capsys):
    out = tmp_path / "student"
    assert main(["student", "--out", str(out), "--notebooks", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert "notebooks directory not found" in err and "missing" in err and err.count("\n") == 1

    (tmp_path / "nb").mkdir()
    plain = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(plain, tmp_path / "nb" / "plain.ipynb")
    assert main(["student", "--out", str(out), "--notebooks", str(tmp_path / "nb")]) == 1
    err = capsys.readouterr().err
    assert "plain.ipynb" in err and "no nbgrader cells" in err and err.count("\n") == 1
    assert not out.exists(), "nothing is written for a broken notebook"
