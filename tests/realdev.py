"""Where the real development documents are (``../shared/realdev`` beside the repository), for the few tests
that read them; such a test skips cleanly when they are not there."""

from __future__ import annotations

from pathlib import Path

import pytest

REALDEV = Path(__file__).resolve().parents[1].parent / "shared" / "realdev"


def realdev(part: str) -> Path:
    """``REALDEV / part``, or skip the test when it is missing."""
    path = REALDEV / part
    if not path.exists():
        pytest.skip(f"no real documents at {path}")
    return path
