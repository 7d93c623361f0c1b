"""A deadline on compiling constraints that a caller can also cancel from another thread.

Compiling is pure Python: it cannot be interrupted from outside, so it checks [`check_budget`][docvlm.decoding.check_budget] at every
nested field, list item and regex node instead. A server compiles a client's schema inside
[`compile_budget`][docvlm.decoding.compile_budget] and sets the event when the client goes away.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from docvlm.errors import ConstraintError, UsageError

__all__ = ["check_budget", "compile_budget"]


@dataclass
class _Budget:
    deadline: float | None
    seconds: float | None
    cancel: threading.Event | None


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("docvlm_compile_budget", default=None)


@contextlib.contextmanager
def compile_budget(seconds: float | None = None, *, cancel: threading.Event | None = None) -> Iterator[None]:
    """Bound the time of every constraint compiled inside the block (this thread or task), or stop it from outside.

    Compiling checks the budget at every nested field, list item and regex node, so a type that would take
    long stops soon after the deadline, or after ``cancel`` is set (from another thread: a server whose
    client went away), with a [`ConstraintError`][docvlm.errors.ConstraintError]. Nothing half-compiled is cached.

    >>> from docvlm.decoding import compile_budget, compile_output_type
    >>> with compile_budget(5.0):
    ...     compile_output_type(list[int]).kind.value
    'json'

    Args:
        seconds: wall-clock seconds for the whole block (``None``: no deadline).
        cancel: an event that stops compiling when set.
    """
    if seconds is not None and not seconds > 0:
        raise UsageError(f"a compile budget must be a positive number of seconds, got {seconds}")
    deadline = None if seconds is None else time.monotonic() + seconds
    token = _BUDGET.set(_Budget(deadline, seconds, cancel))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def check_budget() -> None:
    """Raise [`ConstraintError`][docvlm.errors.ConstraintError] when the [`compile_budget`][docvlm.decoding.compile_budget] in force ran out or was cancelled."""
    budget = _BUDGET.get()
    if budget is None:
        return
    if budget.cancel is not None and budget.cancel.is_set():
        raise ConstraintError("compiling the output type was cancelled")
    if budget.deadline is not None and time.monotonic() > budget.deadline:
        raise ConstraintError(
            f"compiling the output type took longer than its budget of {budget.seconds:g} s",
            hint="make the type smaller (fewer nested lists, shorter max_length values)",
        )
