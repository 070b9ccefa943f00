"""Classroom assignments and the student edition, built from the notebooks' nbgrader exercises.

Every exercise is a pair of cells, a solution and its autograded tests (CONTRIBUTING.md,
"Exercises"). From them this package builds the two ways a notebook reaches a student:

- ``python -m minis2l assignments``: an nbgrader course directory with a release per notebook,
  for an instructor who grades (:mod:`~minis2l.assignments.course`; the route step by step is in
  ``course/nbgrader.md``);
- ``python -m minis2l student``: the student edition in ``student/``, for a learner working
  alone, which never overwrites the learner's work (:mod:`~minis2l.assignments.student`).

Modules: :mod:`~minis2l.assignments.exercises` (the format and its checks),
:mod:`~minis2l.assignments.stubs` (a notebook's student version, shared by both routes),
:mod:`~minis2l.assignments.shortcuts` (:func:`forbidden`, used by the notebooks' hidden tests),
:mod:`~minis2l.assignments.course` (nbgrader: releases, submissions, autograding),
:mod:`~minis2l.assignments.student` and :mod:`~minis2l.assignments.cli` (the two commands).
Importing this package does not import nbgrader.
"""

from minis2l.assignments.course import CELL_TIMEOUT_S, autograde, build_course, submit
from minis2l.assignments.exercises import (
    BEGIN_HIDDEN,
    BEGIN_SOLUTION,
    END_HIDDEN,
    END_SOLUTION,
    AssignmentError,
    Exercise,
    exercise_title,
    find_exercises,
)
from minis2l.assignments.shortcuts import forbidden
from minis2l.assignments.stubs import named_stub, student_notebook
from minis2l.assignments.student import build_student_edition

__all__ = [
    "BEGIN_HIDDEN",
    "BEGIN_SOLUTION",
    "CELL_TIMEOUT_S",
    "END_HIDDEN",
    "END_SOLUTION",
    "AssignmentError",
    "Exercise",
    "autograde",
    "build_course",
    "build_student_edition",
    "exercise_title",
    "find_exercises",
    "forbidden",
    "named_stub",
    "student_notebook",
    "submit",
]
