"""Exact regexes for the string formats of JSON schema that docvlm can constrain: every match is a valid value.

``date`` knows the days of each month and leap years (``2024-02-29`` matches, ``2023-02-29`` does not), so a
value decoded under it always validates as a Python ``date``. Years run from 1000 to 9999. ``date-time`` and
``time`` always carry an offset (``Z`` or ``+hh:mm``), as RFC 3339 asks. ``email`` is a conservative subset of
addresses (dot-separated ASCII local part of at most 62 characters, lower-case domain labels, a top-level
domain of two or three letters, which leaves out the reserved names ``.test``, ``.local``, ``.invalid`` ...)
that the ``email-validator`` package accepts; ``uuid`` is lower-case hex.
"""

from __future__ import annotations

import datetime as dt
import uuid

__all__ = ["FORMAT_PATTERNS", "FORMAT_TYPES"]

_YEAR = "[1-9][0-9]{3}"
_LEAP = "(?:[1-9][0-9](?:0[48]|[2468][048]|[13579][26])|(?:1[26]|[2468][048]|[3579][26])00)"
_D31 = "(?:0[1-9]|[12][0-9]|3[01])"
_D30 = "(?:0[1-9]|[12][0-9]|30)"
_D28 = "(?:0[1-9]|1[0-9]|2[0-8])"
_DATE = f"(?:{_YEAR}-(?:(?:0[13578]|1[02])-{_D31}|(?:0[469]|11)-{_D30}|02-{_D28})|{_LEAP}-02-29)"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
_OFFSET = "(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_HEX = "[0-9a-f]"
_LABEL = "[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?"
_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"

#: JSON schema ``format`` -> a regex (Python syntax, docvlm's portable subset) whose every match is valid.
FORMAT_PATTERNS: dict[str, str] = {
    "date": _DATE,
    "date-time": f"{_DATE}T{_TIME}{_OFFSET}",
    "time": f"{_TIME}{_OFFSET}",
    "uuid": f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}",
    "email": rf"[A-Za-z0-9_+-]{{1,20}}(?:\.[A-Za-z0-9_+-]{{1,20}}){{0,2}}@(?:{_LABEL}\.){{1,2}}[a-z]{{2,3}}",
    "ipv4": rf"(?:{_OCTET}\.){{3}}{_OCTET}",
}

#: Python types the constraint compiler writes with a format's regex (and pydantic reads back).
FORMAT_TYPES: dict[type, str] = {
    dt.datetime: "date-time",  # before date: a datetime is a date
    dt.date: "date",
    dt.time: "time",
    uuid.UUID: "uuid",
}
