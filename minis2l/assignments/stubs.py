"""The student version of a notebook: solutions become stubs that name their exercise.

Two routes hand a notebook to a student, and they share this module. The nbgrader release
(:mod:`minis2l.assignments.course`) runs nbgrader's ``generate_assignment`` and then
:func:`name_stubs` on its output; the student edition (:mod:`minis2l.assignments.student`)
needs no course directory or gradebook and calls :func:`student_notebook`, which runs the same
nbgrader preprocessors that clear solutions, hidden tests and outputs, with the same stub, then
:func:`name_stubs`. Both give the same cells.

nbgrader puts one bare stub, ``raise NotImplementedError()``, in every solution region. Its
message is empty, so a student who runs the notebook would not see which exercise stopped it;
:func:`name_stubs` gives it the exercise's heading and grade_id. Solution cells are neither
locked nor graded, so nbgrader's autograder keeps them as the student wrote them, and the
message changes nothing in grading.
"""

from __future__ import annotations

import json
from typing import Any

from minis2l.assignments.exercises import (
    AssignmentError,
    Exercise,
    cell_source,
    exercise_title,
    find_exercises,
)

# nbgrader's default code stub; the course config and the student edition both state it.
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
STUB = "raise NotImplementedError()"


def named_stub(title: str, name: str) -> str:
    """The line that replaces nbgrader's bare stub: a NotImplementedError naming the exercise."""
    message = f"{title} ({name}) is not solved yet: replace this line with your answer"
    return f"raise NotImplementedError({message!r})"


def name_stubs(nb: dict[str, Any], exercises: list[Exercise], titles: dict[str, str]) -> int:
    """Rewrite, in place, the bare stub of each exercise's solution cell so that it names it.

    Args:
        nb: a student version of a notebook (a dict or ``NotebookNode``), solutions cleared.
        exercises: the exercises of its source notebook (:func:`find_exercises`).
        titles: exercise name -> heading text (:func:`exercise_title`).

    Returns:
        The number of stubs rewritten (one per exercise when all went well).
    """
    by_id = {ex.solution_id: ex for ex in exercises}
    count = 0
    for cell in nb.get("cells", []):
        ex = by_id.get(cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", ""))
        if ex is None:
            continue
        lines = cell_source(cell).splitlines(keepends=True)
        for i, line in enumerate(lines):
            if line.strip() == STUB:
                indent = line[: len(line) - len(line.lstrip())]
                end = "\n" if line.endswith("\n") else ""
                lines[i] = indent + named_stub(titles[ex.name], ex.name) + end
                count += 1
        cell["source"] = "".join(lines)
    return count


def exercise_titles(source: dict[str, Any], exercises: list[Exercise]) -> dict[str, str]:
    """Exercise name -> heading text, read from the source notebook."""
    return {ex.name: exercise_title(source, ex) for ex in exercises}


def student_notebook(source: dict[str, Any], name: str = "notebook") -> Any:
    """The student version of a source notebook, as nbgrader's release would show it.

    Solution regions become a stub naming their exercise, hidden test regions are removed,
    outputs and execution counts are cleared; every other cell, the visible tests, the hints
    and all metadata stay as in the source. ``source`` itself is not modified.

    Args:
        source: the source notebook as a dict (for example ``json.load`` of an ``.ipynb``).
        name: how to name the notebook in error messages.

    Returns:
        The student version as an ``nbformat.NotebookNode`` (write it with ``nbformat.writes``).

    Raises:
        AssignmentError: the notebook's exercises break the format (:func:`find_exercises`), or
            a solution stub could not be named.
    """
    import nbformat
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    exercises = find_exercises(source, name=name)
    nb = nbformat.reads(json.dumps(source), as_version=4)  # a copy, sources joined into strings
    resources: dict[str, Any] = {}
    clear_solutions = ClearSolutions(code_stub={"python": CODE_STUB})
    for step in (clear_solutions, ClearHiddenTests(), ClearOutput()):
        nb, resources = step.preprocess(nb, resources)
    if name_stubs(nb, exercises, exercise_titles(source, exercises)) != len(exercises):
        raise AssignmentError(f"{name}: expected one solution stub per exercise")
    return nb
