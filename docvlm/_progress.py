"""Progress on stderr for long work (model loads, pages, batch documents, eval samples), with rich.

Shown only when stderr is a terminal, and never with ``quiet=True`` (the CLI's ``--quiet``) or when the
environment variable ``DOCVLM_QUIET`` is set to anything but ``0`` / empty. Bars are transient: they vanish
when the work ends, so piped output and logs stay clean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["progress", "progress_enabled", "status"]


def progress_enabled(quiet: bool = False) -> bool:
    """Whether progress may be drawn: not quiet, ``DOCVLM_QUIET`` unset, and stderr a terminal."""
    if quiet or os.environ.get("DOCVLM_QUIET", "0") not in ("", "0"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _nothing(n: int = 1) -> None:
    return None


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@contextmanager
def status(what: str, *, enabled: bool | None = None) -> Iterator[None]:
    """A spinner with the elapsed time while the body runs (e.g. ``status("loading model default")``)."""
    if not (progress_enabled() if enabled is None else enabled):
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(SpinnerColumn(), TextColumn(f"[bold]{what}"), TimeElapsedColumn(), console=_console(),
                   transient=True)
    with bar:
        bar.add_task(what, total=None)
        yield


@contextmanager
def progress(total: int, what: str, *, enabled: bool | None = None) -> Iterator[Callable[[int], None]]:
    """A bar of ``total`` steps; the body gets ``advance(n=1)``. Nothing is drawn for fewer than 2 steps."""
    if total < 2 or not (progress_enabled() if enabled is None else enabled):
        yield _nothing
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn(f"[bold]{what}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("eta"), TimeRemainingColumn(), console=_console(), transient=True)
    with bar:
        task = bar.add_task(what, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance
