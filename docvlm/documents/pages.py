"""Page-range strings as people type them: ``"1-3,7"`` (1-based, inclusive)."""

from __future__ import annotations

from docvlm.errors import UsageError

__all__ = ["parse_page_range"]


def parse_page_range(spec: str | None, page_count: int) -> list[int]:
    """0-based page indices from a 1-based range string such as ``"1-3,7"``, ``"5-"`` or ``"-2"``.

    ``None`` or ``""`` means every page. Order is kept and duplicates are dropped.

    Raises:
        UsageError: the string is malformed or names a page outside ``1..page_count``.
    """
    if spec is None or not spec.strip():
        return list(range(page_count))
    out: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                start = int(a) if a.strip() else 1
                end = int(b) if b.strip() else page_count
            else:
                start = end = int(part)
        except ValueError:
            raise UsageError(
                f"bad page range {spec!r} at {part!r}", hint="write pages 1-based like '1-3,7' or '5-'"
            ) from None
        if start < 1 or end > page_count or start > end:
            raise UsageError(
                f"page range {part!r} is outside the document's pages 1-{page_count}",
                hint="pages are numbered from 1",
            )
        out.extend(i - 1 for i in range(start, end + 1) if i - 1 not in out)
    return out
