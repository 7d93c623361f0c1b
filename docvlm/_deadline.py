"""Time limits for long calls: ``timeout=`` on generate, score, extract, ask, batch and eval.

A limit is a deadline held in a context variable, so nested calls share it (an ``extract(timeout=30)`` whose
model calls each take ``timeout=None`` still stops at 30 s) and a nested ``timeout=`` can only shorten it. The
work checks the deadline where it can stop cleanly: between pages, between model calls, at every generated
token (a transformers stopping criterion) and between scoring chunks. Nothing runs in a helper thread, so when
[`TimeLimitError`][docvlm.errors.TimeLimitError] is raised nothing is left running; subprocesses (Tesseract) get the time
left as their own timeout and batch workers are terminated.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from docvlm.errors import TimeLimitError, UsageError

__all__ = ["check", "deadline", "remaining", "with_timeout"]

_DEADLINE: ContextVar[tuple[float, float, str] | None] = ContextVar("docvlm_deadline", default=None)

F = TypeVar("F", bound=Callable[..., Any])


def _validate(timeout: float | None) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds or None, got {timeout!r}")


@contextmanager
def deadline(timeout: float | None, what: str) -> Iterator[None]:
    """Run the body under a time limit of ``timeout`` seconds (``None``: no new limit; an outer one still holds)."""
    _validate(timeout)
    if timeout is None:
        yield
        return
    end = time.monotonic() + float(timeout)
    outer = _DEADLINE.get()
    token = _DEADLINE.set((end, float(timeout), what) if outer is None or end < outer[0] else outer)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def remaining() -> float | None:
    """Seconds left before the current deadline (may be negative), or ``None`` when there is none."""
    current = _DEADLINE.get()
    return None if current is None else current[0] - time.monotonic()


def expired() -> bool:
    """Whether the current deadline has passed."""
    left = remaining()
    return left is not None and left <= 0


def check(where: str | None = None) -> None:
    """Raise [`TimeLimitError`][docvlm.errors.TimeLimitError] when the current deadline has passed."""
    current = _DEADLINE.get()
    if current is None or time.monotonic() < current[0]:
        return
    _, seconds, what = current
    at = f" (stopped in {where})" if where else ""
    raise TimeLimitError(f"{what} ran past its time limit of {seconds:g} s{at}", seconds=seconds, what=what)


def with_timeout(what: str, parameter: str = "timeout") -> Callable[[F], F]:
    """Decorate a function that takes a ``timeout`` argument: its body runs under that deadline.

    The function declares and documents the parameter; this decorator is what enforces it (the deadline is
    checked by the model calls and loops inside), so its body needs no change.
    """

    def wrap(fn: F) -> F:
        signature = inspect.signature(fn)
        if parameter not in signature.parameters:
            raise TypeError(f"{fn.__qualname__} has no parameter {parameter!r}")

        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            timeout = kwargs.get(parameter)
            if timeout is None and len(args) > list(signature.parameters).index(parameter):
                timeout = args[list(signature.parameters).index(parameter)]
            with deadline(timeout, what):
                check(what)
                result = fn(*args, **kwargs)
                check(what)  # an answer that came after the limit is not an answer within it
                return result

        return inner  # type: ignore[return-value]

    return wrap
