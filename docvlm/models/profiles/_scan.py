"""Lenient reading of free-form model output: every complete box or point in whatever a model wrote.

Shared by the JSON-speaking families (generic, Qwen2/2.5/3-VL, Idefics3 / SmolVLM, LLaVA). It reads JSON (in
code fences, after prose, truncated: complete records before the cut count, the cut-off one does not), almost-JSON
(trailing commas, single quotes, Python literals), bare lists, Qwen2-VL box tokens and Molmo point tags. It never
raises on model text. Pure Python.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

__all__ = ["Raw", "Want", "clip", "fmt_number", "numbers", "scan"]

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_FENCE_RE = re.compile(r"```[A-Za-z0-9_+-]*")
_START_RE = re.compile(r"[\[{(]|<\|object_ref_start\|>|<points?(?=[\s/>])")
_REF_RE = re.compile(r"<\|object_ref_start\|>([^<]*)(?:<\|object_ref_end\|>)?")
_PAREN_BOX_RE = re.compile(rf"\(\s*({_NUM})\s*,\s*({_NUM})\s*\)\s*,?\s*\(\s*({_NUM})\s*,\s*({_NUM})\s*\)")
_POINT_TAG_RE = re.compile(r"<(points?)(\s[^<>]*?)?(/?)>")
_ATTR_RE = re.compile(r"""([A-Za-z_][\w-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_NUMS_LIST_RE = re.compile(rf"^[\[(]\s*({_NUM})((?:\s*,\s*{_NUM})*)\s*[\])]$")
_TRAILING_COMMA_RE = re.compile(r",\s*([}\]])")

_BOX_KEYS = ("bbox_2d", "bbox", "box", "bounding_box", "boundingbox")
_POINT_KEYS = ("point_2d", "point", "coordinate", "coordinates", "position")
_LABEL_KEYS = ("label", "text", "name", "category", "class", "object", "description", "phrase")
_LABEL_ALT = "|".join(_LABEL_KEYS)
_CORNER_KEYS = (
    ("x0", "y0", "x1", "y1"),
    ("x1", "y1", "x2", "y2"),
    ("xmin", "ymin", "xmax", "ymax"),
    ("x_min", "y_min", "x_max", "y_max"),
    ("left", "top", "right", "bottom"),
)

Want = Literal["box", "point"]


class Raw(NamedTuple):
    """One box (4 numbers) or point (2 numbers) as the model wrote it, in its family's own order and scale."""

    label: str | None
    values: tuple[float, ...]
    percent: bool = False  # Molmo-style 0..100 of the image, whatever the family's convention


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        f = float(v)
    elif isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def numbers(values: Sequence[Any], n: int) -> tuple[float, ...] | None:
    if len(values) != n:
        return None
    out = tuple(_number(v) for v in values)
    if any(v is None for v in out):
        return None
    return tuple(v for v in out if v is not None)


def _coords(value: Any, want: Want) -> tuple[float, ...] | None:
    """The numbers of one box (4) or point (2) written as a list, a pair of pairs or a dict."""
    if isinstance(value, (list, tuple)):
        if want == "box":
            if len(value) == 2 and all(isinstance(p, (list, tuple)) for p in value):
                a, b = (numbers(p, 2) for p in value)
                return a + b if a is not None and b is not None else None
            return numbers(value, 4)
        return numbers(value, 2)
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        if want == "point":
            return numbers([lowered.get("x"), lowered.get("y")], 2) if "x" in lowered and "y" in lowered else None
        for keys in _CORNER_KEYS:
            if all(k in lowered for k in keys):
                return numbers([lowered[k] for k in keys], 4)
    return None


def _text_label(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _walk(value: Any, want: Want, label: str | None, out: list[Raw]) -> None:
    """Collect boxes / points from a decoded JSON value, in document order."""
    coords = _coords(value, want)
    if coords is not None:
        out.append(Raw(label, coords))
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, want, label, out)
        return
    if not isinstance(value, dict):
        return
    lowered = {str(k).lower(): k for k in value}
    own_label = label
    for key in _LABEL_KEYS:
        if key in lowered and (text := _text_label(value[lowered[key]])) is not None:
            own_label = text
            break
    for key in _BOX_KEYS if want == "box" else _POINT_KEYS:
        if key in lowered:
            _walk(value[lowered[key]], want, own_label, out)
            return
    for key, item in value.items():
        if str(key).lower() in _LABEL_KEYS:
            continue
        # {"cat": [x0, y0, x1, y1]} or {"cat": [[...], [...]]}: the key is the label
        direct = _coords(item, want) is not None or (
            isinstance(item, list) and bool(item) and all(_coords(i, want) is not None for i in item)
        )
        _walk(item, want, (str(key).strip() or None) if direct else own_label, out)


def _closing_brackets(text: str) -> dict[int, tuple[int, int]]:
    """For each ``[`` / ``{`` that is closed: the index after its closing bracket and its nesting depth.

    One string-aware pass. Brackets are matched by depth, whatever their kind; openers never closed
    (output cut off) are absent. The depth counts the levels inside and including the bracket.
    """
    closes: dict[int, tuple[int, int]] = {}
    stack: list[list[int]] = []  # [index of the opener, deepest nesting inside it so far]
    in_string = False
    escaped = False
    for i, c in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            stack.append([i, 1])
        elif c in "]}" and stack:
            start, depth = stack.pop()
            closes[start] = (i + 1, depth)
            if stack:
                stack[-1][1] = max(stack[-1][1], depth + 1)
    return closes


_FAIL = object()


def _lenient_json(span: str) -> Any:
    """Decode almost-JSON: trailing commas, single quotes, Python literals; ``_FAIL`` if still invalid."""
    fixed = _TRAILING_COMMA_RE.sub(r"\1", span)
    if '"' not in fixed:
        fixed = fixed.replace("'", '"')
    fixed = re.sub(r"\bNone\b", "null", re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", fixed)))
    try:
        return json.loads(fixed)
    except (ValueError, RecursionError):
        pass
    m = _NUMS_LIST_RE.match(span.strip())
    if m:  # e.g. [.1, .2, .3, .4] or (1, 2, 3, 4)
        return [float(v) for v in re.findall(_NUM, span)]
    return _FAIL


def _salvage_record(span: str, want: Want) -> list[Raw]:
    """A box / point record that is not JSON at all (``{bbox_2d: [1, 2, 3, 4], label: cat}``)."""
    keys = "|".join(_BOX_KEYS if want == "box" else _POINT_KEYS)
    n = 4 if want == "box" else 2
    nums = r"\s*,\s*".join([f"({_NUM})"] * n)
    m = re.search(rf"""["']?(?:{keys})["']?\s*[:=]\s*[\[(]\s*{nums}\s*[\])]""", span, re.I)
    if not m:
        return []
    values = numbers(m.groups(), n)
    if values is None:
        return []
    lab = re.search(rf"""["']?(?:{_LABEL_ALT})["']?\s*[:=]\s*(?:"([^"]*)"|'([^']*)'|([^,}}]+))""", span, re.I)
    label = next((g.strip() for g in lab.groups() if g is not None), None) if lab else None
    return [Raw(label or None, values)]


_RECORD_KEY_RE = {
    want: re.compile(rf"""["']?(?:{"|".join(keys)})["']?\s*[:=]""", re.I)
    for want, keys in (("box", _BOX_KEYS), ("point", _POINT_KEYS))
}
_MAX_DEPTH = 64


def _opens_record(text: str, start: int, want: Want) -> bool:
    """Whether an unclosed ``{`` at ``start`` is itself a box / point record (so it was cut off)."""
    end = text.find("{", start + 1)
    return _RECORD_KEY_RE[want].search(text, start + 1, end if end >= 0 else len(text)) is not None


def _point_tag(match: re.Match[str], text: str) -> tuple[list[Raw], int]:
    """Molmo-style ``<point x="12.5" y="40" alt="cat">cat</point>`` / ``<points x1=.. y1=.. ...>`` (0..100)."""
    tag, attrs_text, self_closing = match.group(1), match.group(2) or "", match.group(3)
    attrs = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _ATTR_RE.finditer(attrs_text)}
    end = match.end()
    inner: str | None = None
    if not self_closing:
        close = re.compile(rf"([^<]*)</{tag}\s*>").match(text, end)
        if close is not None:
            inner = close.group(1)
            end = close.end()
    label = (inner.strip() if inner else None) or (attrs.get("alt") or "").strip() or None
    pairs: list[tuple[str | None, str | None]] = []
    if tag == "point":
        pairs.append((attrs.get("x"), attrs.get("y")))
    else:
        i = 1
        while f"x{i}" in attrs and f"y{i}" in attrs:
            pairs.append((attrs[f"x{i}"], attrs[f"y{i}"]))
            i += 1
    out = []
    for x, y in pairs:
        values = numbers([x, y], 2)
        if values is not None:
            out.append(Raw(label, values, percent=True))
    return out, end


def scan(text: str, want: Want) -> list[Raw]:
    """Every complete box (4 numbers) or point (2 numbers) in free-form model output, in order.

    Reads JSON (also inside code fences, after prose, or truncated: complete records before the cut
    count, the cut-off one does not), bare lists, Qwen2-VL ``<|object_ref_start|>label<|object_ref_end|>
    <|box_start|>(x0,y0),(x1,y1)<|box_end|>`` and, for points, Molmo ``<point>`` tags.
    """
    if not isinstance(text, str) or not text:
        return []
    text = _FENCE_RE.sub(" ", text)
    decoder = json.JSONDecoder()
    closes: dict[int, tuple[int, int]] | None = None  # bracket matches, computed at the first bracket
    out: list[Raw] = []
    pending: str | None = None  # a Qwen2-VL object_ref label that labels the boxes after it
    pos = 0
    while True:
        m = _START_RE.search(text, pos)
        if m is None:
            break
        i, token = m.start(), m.group()
        if token == "<|object_ref_start|>":
            ref = _REF_RE.match(text, i)
            assert ref is not None  # the pattern matches whatever follows the start tag
            pending = ref.group(1).strip() or None
            pos = max(ref.end(), i + 1)
            continue
        if token.startswith("<point"):
            tag = _POINT_TAG_RE.match(text, i)
            if tag is None:
                pos = i + 1
                continue
            if want == "point":
                raws, pos = _point_tag(tag, text)
                out.extend(raws)
            else:
                pos = tag.end()
            continue
        if token == "(":
            pair = _PAREN_BOX_RE.match(text, i) if want == "box" else None
            if pair is not None:
                values = numbers(pair.groups(), 4)
                if values is not None:
                    out.append(Raw(pending, values))
                pos = pair.end()
            else:
                pos = i + 1
            continue
        # "{" or "["
        if closes is None:
            closes = _closing_brackets(text)
        match = closes.get(i)
        if match is None:  # never closed: the output was cut off inside this value
            if token == "{" and _opens_record(text, i, want):
                break  # a cut-off record: nothing complete follows
            pos = i + 1  # a cut-off wrapper: its complete children still count
            continue
        close, depth = match
        if depth > _MAX_DEPTH:  # no box answer nests this deep: look inside instead of decoding it all
            pos = i + 1
            continue
        try:
            value, end = decoder.raw_decode(text, i)
        except RecursionError:  # absurdly deep nesting: look inside instead
            pos = i + 1
            continue
        except ValueError:
            value = _lenient_json(text[i:close])
            if value is _FAIL:
                salvaged = _salvage_record(text[i:close], want) if token == "{" else []
                if salvaged:
                    out.extend(r._replace(label=r.label or pending) for r in salvaged)
                    pos = close
                else:
                    pos = i + 1
                continue
            end = close
        found: list[Raw] = []
        try:
            _walk(value, want, pending, found)
        except RecursionError:  # absurdly nested JSON: nothing usable in it
            found = []
        out.extend(found)
        pos = end
    return out


def clip(v: float, hi: float) -> float:
    """``v`` clipped to ``[0, hi]``."""
    return min(max(v, 0.0), hi)


def fmt_number(v: float) -> str:
    """``12`` for a whole number, else the float's repr (as a model writes coordinates)."""
    return str(int(v)) if float(v).is_integer() else repr(float(v))

