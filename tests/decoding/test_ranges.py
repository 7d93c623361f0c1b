"""Integer and fixed-point range regexes: exhaustive on small ranges, hypothesis on huge ones."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from docvlm.decoding import float_range_regex, int_range_regex

JUNK = ["", "-", "-0", "00", "01", "-01", "+1", "1.0", " 1", "1 ", "--1", "0-", "1e3"]
FAR = [n * s for n in (99, 100, 999, 1000, 9999, 10000, 10**6) for s in (1, -1)]


@pytest.mark.parametrize(
    ("lo", "hi", "regex"),
    [
        (0, 1000, "(?:0|[1-9][0-9]{0,2}|1000)"),
        (0, 9, "[0-9]"),
        (5, 5, "5"),
        (1, 999, "[1-9][0-9]{0,2}"),
        (-9, -1, "-[1-9]"),
        (10, 99, "[1-9][0-9]"),
    ],
)
def test_known_int_regexes(lo: int, hi: int, regex: str) -> None:
    assert int_range_regex(lo, hi) == regex


def test_int_range_exhaustive_on_small_ranges() -> None:
    checked = 0
    for lo in range(-30, 31):
        for hi in range(lo, 131):
            pattern = re.compile(int_range_regex(lo, hi))
            universe = [str(n) for n in range(lo - 12, hi + 13)] + [str(n) for n in FAR] + JUNK
            accepted = {s for s in universe if pattern.fullmatch(s)}
            expected = {str(n) for n in range(lo, hi + 1)}
            assert accepted == expected, (lo, hi, pattern.pattern)
            checked += 1
    assert checked == 61 * 131  # every (lo, hi) pair with lo in -30..30, hi in lo..130


def test_empty_int_range_is_refused() -> None:
    with pytest.raises(ValueError):
        int_range_regex(3, 2)


BIG = st.integers(min_value=-(10**20), max_value=10**20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lo=BIG, hi=BIG, data=st.data())
def test_int_range_big(lo: int, hi: int, data: st.DataObject) -> None:
    lo, hi = min(lo, hi), max(lo, hi)
    pattern = re.compile(int_range_regex(lo, hi))
    probes = {lo, hi, lo - 1, hi + 1, (lo + hi) // 2, 0, -1, 1}
    for k in range(1, 22):
        probes |= {10**k, 10**k - 1, -(10**k), -(10**k) + 1}
    probes.add(data.draw(st.integers(min_value=lo, max_value=hi)))
    probes.add(data.draw(BIG))
    for n in probes:
        assert bool(pattern.fullmatch(str(n))) == (lo <= n <= hi), (lo, hi, n)
    sample = data.draw(st.from_regex(pattern.pattern, fullmatch=True))
    assert lo <= int(sample) <= hi
    assert str(int(sample)) == sample  # canonical: no leading zeros, no -0


# --------------------------------------------------------------------------------------------
# fixed-point decimals
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "decimals", "regex"),
    [
        (0, 1, 4, r"(?:0(?:\.[0-9]{1,4})?|1(?:\.0{1,4})?)"),
        (0, 1, 0, "(?:0|1)"),
        (0.5, 0.5, 1, r"0\.5"),
    ],
)
def test_known_float_regexes(lo: float, hi: float, decimals: int, regex: str) -> None:
    assert float_range_regex(lo, hi, decimals=decimals) == regex


def _universe(decimals: int) -> list[str]:
    out: list[str] = []
    fracs = [""] + [str(f).zfill(n) for n in range(1, decimals + 2) for f in range(10**n)]
    for whole in ("0", "1", "2", "3", "00", "01"):
        for frac in fracs:
            text = whole + ("." + frac if frac else "")
            out += [text, "-" + text]
    return [*out, "", ".", "-", "1.", ".5", "+1", "1e0"]


def _canonical(text: str, decimals: int) -> bool:
    m = re.fullmatch(r"-?(0|[1-9][0-9]*)(?:\.([0-9]+))?", text)
    if not m or (m.group(2) is not None and len(m.group(2)) > decimals):
        return False
    return not (text.startswith("-") and Decimal(text) == 0)


BOUNDS = [-2.5, -1, -0.25, 0, 0.1, 0.33, 1, 1.05, 2.5]


@pytest.mark.parametrize("decimals", [1, 2])
def test_float_range_exhaustive(decimals: int) -> None:
    universe = _universe(decimals)
    canonical = [s for s in universe if _canonical(s, decimals)]
    for i, lo in enumerate(BOUNDS):
        for hi in BOUNDS[i:]:
            for lo_ex in (False, True):
                for hi_ex in (False, True):
                    try:
                        regex = float_range_regex(lo, hi, decimals=decimals, lo_exclusive=lo_ex, hi_exclusive=hi_ex)
                    except ValueError:
                        assert not any(
                            (float(s) > lo if lo_ex else float(s) >= lo)
                            and (float(s) < hi if hi_ex else float(s) <= hi)
                            for s in canonical
                        )
                        continue
                    pattern = re.compile(regex)
                    accepted = {s for s in universe if pattern.fullmatch(s)}
                    expected = {
                        s
                        for s in canonical
                        if (float(s) > lo if lo_ex else float(s) >= lo) and (float(s) < hi if hi_ex else float(s) <= hi)
                    }
                    assert accepted == expected, (lo, hi, lo_ex, hi_ex, regex)


FLOATS = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=FLOATS, b=FLOATS, decimals=st.integers(0, 6), lo_ex=st.booleans(), hi_ex=st.booleans(), data=st.data())
def test_float_range_samples_respect_bounds(
    a: float, b: float, decimals: int, lo_ex: bool, hi_ex: bool, data: st.DataObject
) -> None:
    lo, hi = min(a, b), max(a, b)
    try:
        regex = float_range_regex(lo, hi, decimals=decimals, lo_exclusive=lo_ex, hi_exclusive=hi_ex)
    except ValueError:
        step = Decimal(1).scaleb(-decimals)
        assert Decimal(repr(hi)) - Decimal(repr(lo)) <= step
        return
    text = data.draw(st.from_regex(regex, fullmatch=True))
    value = float(text)
    assert (value > lo if lo_ex else value >= lo) and (value < hi if hi_ex else value <= hi), (lo, hi, text)
    assert _canonical(text, decimals)
    pattern = re.compile(regex)
    for probe in (lo, hi):
        rendered = f"{probe:.{decimals}f}"
        inside = (float(rendered) > lo if lo_ex else float(rendered) >= lo) and (
            float(rendered) < hi if hi_ex else float(rendered) <= hi
        )
        if _canonical(rendered, decimals):
            assert bool(pattern.fullmatch(rendered)) == inside, (lo, hi, rendered)
