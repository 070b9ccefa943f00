"""``python -m minis2l assignments``: build the nbgrader course and its student releases."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from minis2l.assignments.course import CELL_TIMEOUT_S, DEFAULT_COURSE, build_course
from minis2l.assignments.exercises import DEFAULT_NOTEBOOKS, AssignmentError


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
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=int,
        default=CELL_TIMEOUT_S,
        help="how long one cell may run when autograding (default: %(default)s)",
    )
    parser.epilog = (
        "Then, from the course directory: nbgrader autograde ASSIGNMENT, "
        "nbgrader generate_feedback ASSIGNMENT, nbgrader export (course/nbgrader.md)."
    )


def run(args: argparse.Namespace) -> int:
    """Build the course and the student releases; print progress; return the exit status."""
    try:
        course = build_course(args.out, args.notebooks, timeout=args.timeout, log=print)
    except (AssignmentError, ValueError) as err:
        print(f"minis2l assignments: error: {err}", file=sys.stderr)
        return 1
    print(f"student releases in {course / 'release'}; grade with nbgrader from {course}")
    return 0
