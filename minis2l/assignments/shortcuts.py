"""Forbidding shortcuts: a hidden test runs a student's answer with the function that computes it
made unusable (CONTRIBUTING.md, "Tests that catch wrong answers")."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any


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
def forbidden(
    namespace: dict[str, Any], *names: str, exercise: str = "this exercise"
) -> Iterator[None]:
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
