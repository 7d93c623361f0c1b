"""Family profiles: parser tables per family, coordinate mapping, prompts, and encode/parse round trips."""

from __future__ import annotations

import ast
import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from docvlm.errors import UsageError
from docvlm.models.profiles import (
    FLORENCE2,
    GENERIC,
    IDEFICS3,
    LLAVA,
    PALIGEMMA,
    PROFILES,
    QWEN2_5_VL,
    QWEN2_VL,
    QWEN3_VL,
    SMOLVLM,
    BoxConvention,
    FamilyProfile,
    LabeledBox,
    profile_for,
    smart_resize,
)
from docvlm.types import BoundingBox, Point, Polygon, Size, Space

IMG = Size(width=1000, height=500)  # 0..1000 families: x = v, y = v / 2
QWEN25_INPUT = Size(width=500, height=250)  # Qwen2.5-VL pixels of the input: x 2, y 2
PG_IMG = Size(width=2046, height=1023)  # PaliGemma v / 1023: x = 2 v, y = v

Row = tuple[str | None, tuple[float, float, float, float]]


def boxes(profile: FamilyProfile, text: str, image_size: Size = IMG, input_size: Size | None = None) -> list[Row]:
    out = []
    for label, box in profile.parse_boxes(text, image_size=image_size, input_size=input_size):
        assert box.space is Space.PIXEL
        assert box.image_size == image_size
        out.append((label, box.xyxy))
    return out


def assert_rows(got: list[Row], expected: list[Row]) -> None:
    assert [label for label, _ in got] == [label for label, _ in expected]
    for (_, g), (_, e) in zip(got, expected, strict=True):
        assert g == pytest.approx(e, abs=1e-9)


# -------------------------------------------------------------------------------------------------
# parser tables, one per family
# -------------------------------------------------------------------------------------------------
QWEN2_VL_TABLE: list[tuple[str, str, list[Row]]] = [
    ("plain", "<|object_ref_start|>dog<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|>",
     [("dog", (100, 100, 300, 200))]),
    ("multiple labels",
     "<|object_ref_start|>a dog<|object_ref_end|><|box_start|>(100,200),(300,400)<|box_end|> chases "
     "<|object_ref_start|>a cat<|object_ref_end|><|box_start|>(500, 600), (700, 800)<|box_end|>",
     [("a dog", (100, 100, 300, 200)), ("a cat", (500, 300, 700, 400))]),
    ("one label, two boxes",
     "<|object_ref_start|>apple<|object_ref_end|><|box_start|>(0,0),(10,10)<|box_end|><|box_start|>(20,20),(30,30)<|box_end|>",
     [("apple", (0, 0, 10, 5)), ("apple", (20, 10, 30, 15))]),
    ("special tokens skipped", "The dog(100,200),(300,400) sits.", [(None, (100, 100, 300, 200))]),
    ("out of range clipped", "<|box_start|>(-50,200),(1200,1400)<|box_end|>", [(None, (0, 100, 1000, 500))]),
    ("swapped corners", "<|box_start|>(300,400),(100,200)<|box_end|>", [(None, (100, 100, 300, 200))]),
    ("truncated", "<|box_start|>(100,200),(300,400)<|box_end|><|object_ref_start|>cat<|object_ref_end|><|box_start|>(500,6",
     [(None, (100, 100, 300, 200))]),
    ("json fallback", '```json\n[{"bbox": [100, 200, 300, 400], "label": "x"}]\n```', [("x", (100, 100, 300, 200))]),
    ("empty", "", []),
    ("garbage", "I cannot see any dog here ((( [[ {{", []),
]


@pytest.mark.parametrize(("case", "text", "expected"), QWEN2_VL_TABLE, ids=[c[0] for c in QWEN2_VL_TABLE])
def test_qwen2_vl_parser(case: str, text: str, expected: list[Row]) -> None:
    assert_rows(boxes(QWEN2_VL, text), expected)


QWEN25_TABLE: list[tuple[str, str, list[Row]]] = [
    ("fenced list",
     '```json\n[\n\t{"bbox_2d": [10, 20, 30, 40], "label": "cat"},\n\t{"bbox_2d": [100, 50, 200, 125], "label": "dog"}\n]\n```',
     [("cat", (20, 40, 60, 80)), ("dog", (200, 100, 400, 250))]),
    ("single object", '{"bbox_2d": [10, 20, 30, 40], "label": "a"}', [("a", (20, 40, 60, 80))]),
    ("prose around", 'Sure! Here it is: {"bbox_2d": [10, 20, 30, 40]} Hope this helps.', [(None, (20, 40, 60, 80))]),
    ("out of range clipped", '[{"bbox_2d": [-10, 20, 600, 300], "label": "big"}]', [("big", (0, 40, 1000, 500))]),
    ("swapped corners", '[{"bbox_2d": [30, 40, 10, 20], "label": "s"}]', [("s", (20, 40, 60, 80))]),
    ("truncated list",
     '```json\n[{"bbox_2d": [10, 20, 30, 40], "label": "a"}, {"bbox_2d": [50, 6',
     [("a", (20, 40, 60, 80))]),
    ("truncated in the label", '[{"bbox_2d": [10, 20, 30, 40], "label": "a"}, {"bbox_2d": [1, 2, 3, 4], "label": "ca',
     [("a", (20, 40, 60, 80))]),
    ("truncated wrapper", '{"objects": [{"bbox_2d": [10, 20, 30, 40], "label": "a"}, {"bbox_2d": [1',
     [("a", (20, 40, 60, 80))]),
    ("trailing garbage", '[{"bbox_2d": [10, 20, 30, 40], "label": "a"}] and then {', [("a", (20, 40, 60, 80))]),
    ("bare list", "[10, 20, 30, 40]", [(None, (20, 40, 60, 80))]),
    ("bare lists", "[[10, 20, 30, 40], [0, 0, 5, 5]]", [(None, (20, 40, 60, 80)), (None, (0, 0, 10, 10))]),
    ("label as key", '{"cat": [10, 20, 30, 40], "dog": [[0, 0, 5, 5], [1, 1, 2, 2]]}',
     [("cat", (20, 40, 60, 80)), ("dog", (0, 0, 10, 10)), ("dog", (2, 2, 4, 4))]),
    ("python-ish json", "[{'bbox_2d': [10, 20, 30, 40], 'label': 'cat',},]", [("cat", (20, 40, 60, 80))]),
    ("not json at all", "{bbox_2d: [10, 20, 30, 40], label: cat}", [("cat", (20, 40, 60, 80))]),
    ("bbox and box keys", '[{"box": [10, 20, 30, 40], "text": "t"}, {"bbox": [0, 0, 5, 5], "name": "n"}]',
     [("t", (20, 40, 60, 80)), ("n", (0, 0, 10, 10))]),
    ("corner pairs and dict corners", '[{"bbox_2d": [[10, 20], [30, 40]]}, {"bbox_2d": {"x1": 0, "y1": 0, "x2": 5, "y2": 5}}]',
     [(None, (20, 40, 60, 80)), (None, (0, 0, 10, 10))]),
    ("non-finite and wrong arity dropped", '[{"bbox_2d": [NaN, 1, 2, 3]}, {"bbox_2d": [1, 2, 3]}, {"bbox_2d": [true, 1, 2, 3]}]',
     []),
    ("float strings", '[{"bbox_2d": ["10", "20.5", "30", "40"]}]', [(None, (20, 41, 60, 80))]),
    ("empty list", "```json\n[]\n```", []),
    ("empty", "", []),
    ("garbage", "no objects found", []),
]


@pytest.mark.parametrize(("case", "text", "expected"), QWEN25_TABLE, ids=[c[0] for c in QWEN25_TABLE])
def test_qwen2_5_vl_parser(case: str, text: str, expected: list[Row]) -> None:
    assert_rows(boxes(QWEN2_5_VL, text, input_size=QWEN25_INPUT), expected)


def test_qwen2_5_vl_defaults_to_the_processor_resize() -> None:
    # 1000x500 -> smart_resize -> 1008x504: a box over the whole input is the whole image
    assert QWEN2_5_VL.default_input_size(IMG) == Size(width=1008, height=504)
    assert_rows(boxes(QWEN2_5_VL, '{"bbox_2d": [504, 252, 1008, 504]}'), [(None, (500, 250, 1000, 500))])


QWEN3_TABLE: list[tuple[str, str, list[Row]]] = [
    ("fenced list", '```json\n[{"bbox_2d": [100, 200, 300, 400], "label": "title"}]\n```', [("title", (100, 100, 300, 200))]),
    ("two labels", '[{"bbox_2d": [0, 0, 500, 1000], "label": "left"}, {"bbox_2d": [500, 0, 1000, 1000], "label": "right"}]',
     [("left", (0, 0, 500, 500)), ("right", (500, 0, 1000, 500))]),
    ("out of range clipped", '[{"bbox_2d": [-5, -5, 1001, 1500]}]', [(None, (0, 0, 1000, 500))]),
    ("swapped corners", '[{"bbox_2d": [300, 400, 100, 200]}]', [(None, (100, 100, 300, 200))]),
    ("truncated", '```json\n[{"bbox_2d": [100, 200, 300, 400], "label": "a"},\n{"bbox_2d": [1', [("a", (100, 100, 300, 200))]),
    ("empty", "", []),
]


@pytest.mark.parametrize(("case", "text", "expected"), QWEN3_TABLE, ids=[c[0] for c in QWEN3_TABLE])
def test_qwen3_vl_parser(case: str, text: str, expected: list[Row]) -> None:
    assert_rows(boxes(QWEN3_VL, text), expected)


REL1_TABLE: list[tuple[str, str, list[Row]]] = [
    ("bare list", "[0.12, 0.34, 0.56, 0.78]", [(None, (120, 170, 560, 390))]),
    ("in prose", "The box is [0.12, 0.34, 0.56, 0.78].", [(None, (120, 170, 560, 390))]),
    ("json object", '{"bbox": [0.1, 0.2, 0.3, 0.4], "label": "title"}', [("title", (100, 100, 300, 200))]),
    ("no leading zeros", "[.1, .2, .3, .4]", [(None, (100, 100, 300, 200))]),
    ("several", "[[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]]", [(None, (100, 100, 300, 200)), (None, (500, 300, 700, 400))]),
    ("out of range clipped", "[-0.1, 0.2, 1.2, 0.4]", [(None, (0, 100, 1000, 200))]),
    ("swapped corners", "[0.3, 0.4, 0.1, 0.2]", [(None, (100, 100, 300, 200))]),
    ("truncated", "[0.1, 0.2, 0.3, 0.4] and [0.12, 0.34, 0.5", [(None, (100, 100, 300, 200))]),
    ("fenced", "```\n[0.1, 0.2, 0.3, 0.4]\n```", [(None, (100, 100, 300, 200))]),
    ("empty", "", []),
    ("garbage", "The image shows a document.", []),
]


@pytest.mark.parametrize("profile", [LLAVA, IDEFICS3, SMOLVLM], ids=lambda p: p.name)
@pytest.mark.parametrize(("case", "text", "expected"), REL1_TABLE, ids=[c[0] for c in REL1_TABLE])
def test_rel1_parsers(profile: FamilyProfile, case: str, text: str, expected: list[Row]) -> None:
    assert_rows(boxes(profile, text), expected)


SEGS = "".join(f"<seg{i:03d}>" for i in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 127))
PALIGEMMA_TABLE: list[tuple[str, str, list[Row]]] = [
    ("plain", "<loc0100><loc0200><loc0300><loc0400> cat", [("cat", (400, 100, 800, 300))]),
    ("multiple labels", "<loc0100><loc0200><loc0300><loc0400> cat ; <loc0000><loc0000><loc1023><loc1023> dog",
     [("cat", (400, 100, 800, 300)), ("dog", (0, 0, 2046, 1023))]),
    ("no label", "<loc0100><loc0200><loc0300><loc0400>", [(None, (400, 100, 800, 300))]),
    ("with mask codes", f"<loc0100><loc0200><loc0300><loc0400>{SEGS} cat", [("cat", (400, 100, 800, 300))]),
    ("eos", "<loc0100><loc0200><loc0300><loc0400> cat<eos>", [("cat", (400, 100, 800, 300))]),
    ("out of range clipped", "<loc0100><loc0200><loc2000><loc9999> big", [("big", (400, 100, 2046, 1023))]),
    ("swapped corners", "<loc0300><loc0400><loc0100><loc0200> s", [("s", (400, 100, 800, 300))]),
    ("truncated box", "<loc0100><loc0200><loc0300><loc0400> cat ; <loc0100><loc0200><loc03",
     [("cat", (400, 100, 800, 300))]),
    ("truncated mask", f"<loc0100><loc0200><loc0300><loc0400> cat ; <loc0100><loc0200><loc0300><loc0400>{SEGS[:60]}",
     [("cat", (400, 100, 800, 300))]),
    ("empty", "", []),
    ("garbage", "a cat ; <loc12> dog", []),
]


@pytest.mark.parametrize(("case", "text", "expected"), PALIGEMMA_TABLE, ids=[c[0] for c in PALIGEMMA_TABLE])
def test_paligemma_parser(case: str, text: str, expected: list[Row]) -> None:
    assert_rows(boxes(PALIGEMMA, text, PG_IMG), expected)


def test_paligemma_segments() -> None:
    text = (
        f"<loc0100><loc0200><loc0300><loc0400>{SEGS} cat ; "
        "<loc0000><loc0000><loc0010><loc0010> no mask ; "
        f"<loc0000><loc0000><loc1023><loc1023>{SEGS} dog ; "
        f"<loc0000><loc0000><loc1023><loc1023>{SEGS[:40]}"
    )
    segs = PALIGEMMA.parse_segments(text, image_size=PG_IMG)
    assert [(s.label, s.box.xyxy, s.seg_codes) for s in segs] == [
        ("cat", (400, 100, 800, 300), (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 127)),
        ("dog", (0, 0, 2046, 1023), (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 127)),
    ]
    # boxes include the mask-less entry; the cut-off one is dropped
    assert [label for label, _ in PALIGEMMA.parse_boxes(text, image_size=PG_IMG)] == ["cat", "no mask", "dog"]
    # a code outside the 128-entry codebook makes the entry malformed
    assert PALIGEMMA.parse_segments("<loc0000><loc0000><loc0001><loc0001>" + "<seg128>" * 16 + " x", image_size=PG_IMG) == []
    assert QWEN2_VL.parse_segments(text, image_size=PG_IMG) == []


def flat(points: list[tuple[float, float]]) -> list[float]:
    return [v for p in points for v in p]


def fl(n: float, side: float) -> float:
    """Florence-2's bin centre in pixels."""
    return (n + 0.5) * side / 1000


FLORENCE_TABLE: list[tuple[str, str, list[Row]]] = [
    ("plain", "car<loc_10><loc_20><loc_300><loc_400>", [("car", (10.5, 10.25, 300.5, 200.25))]),
    ("multiple labels, special tokens", "</s><s>car<loc_10><loc_20><loc_300><loc_400>door<loc_0><loc_0><loc_999><loc_999></s>",
     [("car", (10.5, 10.25, 300.5, 200.25)), ("door", (0.5, 0.25, 999.5, 499.75))]),
    ("phrase grounding, two boxes", "<s>a wheel<loc_0><loc_0><loc_9><loc_9><loc_10><loc_10><loc_19><loc_19></s>",
     [("a wheel", (0.5, 0.25, 9.5, 4.75)), ("a wheel", (10.5, 5.25, 19.5, 9.75))]),
    ("no label (region proposal)", "<loc_10><loc_20><loc_300><loc_400>", [(None, (10.5, 10.25, 300.5, 200.25))]),
    ("out of range clipped", "big<loc_10><loc_20><loc_1500><loc_400>", [("big", (10.5, 10.25, 1000, 200.25))]),
    ("swapped corners", "s<loc_300><loc_400><loc_10><loc_20>", [("s", (10.5, 10.25, 300.5, 200.25))]),
    ("truncated", "car<loc_10><loc_20><loc_300><loc_400>bus<loc_1><loc_2><loc_3", [("car", (10.5, 10.25, 300.5, 200.25))]),
    ("empty", "", []),
    ("garbage", "</s><s>A car parked on a street.</s>", []),
]


@pytest.mark.parametrize(("case", "text", "expected"), FLORENCE_TABLE, ids=[c[0] for c in FLORENCE_TABLE])
def test_florence2_parser(case: str, text: str, expected: list[Row]) -> None:
    assert_rows(boxes(FLORENCE2, text), expected)


def test_florence2_polygons() -> None:
    text = (
        "</s><s><loc_100><loc_100><loc_200><loc_100><loc_200><loc_200><loc_100><loc_200>"
        "<sep><loc_500><loc_500><loc_600><loc_500><loc_600><loc_600><loc_7>"  # odd coordinate dropped
        "<sep><loc_1><loc_1><loc_2><loc_2></s>"  # two vertices: not a polygon
    )
    polys = FLORENCE2.parse_polygons(text, image_size=IMG)
    assert [label for label, _ in polys] == [None, None]
    first, second = (p.polygon for p in polys)
    assert first.space is Space.PIXEL and first.image_size == IMG
    assert flat(first.points) == pytest.approx(
        flat([(fl(100, 1000), fl(100, 500)), (fl(200, 1000), fl(100, 500)), (fl(200, 1000), fl(200, 500)), (fl(100, 1000), fl(200, 500))])
    )
    assert flat(second.points) == pytest.approx(
        flat([(fl(500, 1000), fl(500, 500)), (fl(600, 1000), fl(500, 500)), (fl(600, 1000), fl(600, 500))])
    )
    labelled = FLORENCE2.parse_polygons("roof<poly><loc_0><loc_0><loc_10><loc_0><loc_10><loc_10></poly>", image_size=IMG)
    assert [(p.label, len(p.polygon.points)) for p in labelled] == [("roof", 3)]
    assert FLORENCE2.parse_polygons("", image_size=IMG) == []
    assert QWEN3_VL.parse_polygons(text, image_size=IMG) == []


def test_florence2_quads() -> None:
    text = "</s><s>TOTAL<loc_100><loc_100><loc_300><loc_100><loc_300><loc_150><loc_100><loc_150>$9.99<loc_400><loc_100><loc_500><loc_100><loc_500>"
    quads = FLORENCE2.parse_quads(text, image_size=IMG)
    assert [q.label for q in quads] == ["TOTAL"]  # the cut-off second quad is dropped
    quad = quads[0].quad
    assert flat(quad.points) == pytest.approx(
        flat([(fl(100, 1000), fl(100, 500)), (fl(300, 1000), fl(100, 500)), (fl(300, 1000), fl(150, 500)), (fl(100, 1000), fl(150, 500))])
    )
    assert quad.angle == pytest.approx(0)


# -------------------------------------------------------------------------------------------------
# points
# -------------------------------------------------------------------------------------------------
POINT_TABLE: list[tuple[str, FamilyProfile, str, Size | None, list[tuple[str | None, tuple[float, float]]]]] = [
    ("qwen2.5 point_2d", QWEN2_5_VL, '```json\n[{"point_2d": [100, 50], "label": "dot"}, {"point_2d": [600, -3]}]\n```',
     QWEN25_INPUT, [("dot", (200, 100)), (None, (1000, 0))]),
    ("qwen3 point_2d", QWEN3_VL, '[{"point_2d": [500, 500], "label": "c"}]', None, [("c", (500, 250))]),
    ("bare pair", QWEN3_VL, "[250, 1000]", None, [(None, (250, 500))]),
    ("x/y dict", GENERIC, '{"point": {"x": 100, "y": 200}, "label": "p"}', None, [("p", (100, 100))]),
    ("molmo point", LLAVA, 'It is <point x="10.5" y="50" alt="the logo">the logo</point>.', None, [("the logo", (105, 250))]),
    ("molmo points", QWEN3_VL, '<points x1="10" y1="10" x2="20" y2="120" alt="dots">dots</points>', None,
     [("dots", (100, 50)), ("dots", (200, 500))]),
    ("rel-1 pair", SMOLVLM, "[0.5, 0.5]", None, [(None, (500, 250))]),
    ("truncated", QWEN3_VL, '[{"point_2d": [500, 500], "label": "c"}, {"point_2d": [5', None, [("c", (500, 250))]),
    ("boxes are not points", QWEN3_VL, '[{"bbox_2d": [1, 2, 3, 4]}]', None, []),
    ("paligemma has none", PALIGEMMA, "<loc0100><loc0200>", None, []),
    ("florence has none", FLORENCE2, "<loc_1><loc_2>", None, []),
    ("empty", QWEN3_VL, "", None, []),
]


@pytest.mark.parametrize(("case", "profile", "text", "input_size", "expected"), POINT_TABLE, ids=[c[0] for c in POINT_TABLE])
def test_point_parsers(
    case: str, profile: FamilyProfile, text: str, input_size: Size | None, expected: list[tuple[str | None, tuple[float, float]]]
) -> None:
    got = profile.parse_points(text, image_size=IMG, input_size=input_size)
    assert [(p.label, p.point.label) for p in got] == [(label, label) for label, _ in expected]
    for p, (_, xy) in zip(got, expected, strict=True):
        assert p.point.space is Space.PIXEL and p.point.image_size == IMG
        assert p.point.xy == pytest.approx(xy)


def test_boxes_ignore_points_and_points_ignore_boxes() -> None:
    text = '[{"bbox_2d": [100, 200, 300, 400], "label": "b"}, {"point_2d": [10, 20], "label": "p"}]'
    assert [label for label, _ in QWEN3_VL.parse_boxes(text, image_size=IMG)] == ["b"]
    assert [label for label, _ in QWEN3_VL.parse_points(text, image_size=IMG)] == ["p"]


@pytest.mark.parametrize(
    "text",
    ["", "   ", "null", "[]", "{}", "[[[[", "}}}]]]", '{"bbox_2d": "none"}', "<|object_ref_start|>", "<point x=", "\x00\xff",
     '{"a": [1, 2, {"b": [', "<loc_", "<loc0001>" * 3, "```json", "(1, 2), (3", '[1e999, 0, 1, 1]'],
)
@pytest.mark.parametrize("profile", [GENERIC, *dict.fromkeys(PROFILES.values())], ids=lambda p: p.name)
def test_garbage_never_raises(profile: FamilyProfile, text: str) -> None:
    assert profile.parse_boxes(text, image_size=IMG, input_size=QWEN25_INPUT) == []
    assert profile.parse_points(text, image_size=IMG, input_size=QWEN25_INPUT) == []
    assert profile.parse_segments(text, image_size=IMG) == []
    assert profile.parse_polygons(text, image_size=IMG) == []


@pytest.mark.parametrize(
    "text",
    ["[" * 50_000, "{" * 50_000, '{"bbox": ' * 20_000, "[" * 5_000 + "]" * 5_000, "(1, " * 20_000, "<point " * 10_000],
    ids=["open lists", "open objects", "open records", "deep nesting", "open parens", "open tags"],
)
def test_pathological_output_is_empty(text: str) -> None:
    """Huge unbalanced output parses to nothing (a parser with quadratic backtracking would stall this test;
    speed itself is not asserted here: timed tests flake on shared cores)."""
    for profile in (QWEN2_5_VL, QWEN2_VL):
        assert profile.parse_boxes(text, image_size=IMG, input_size=QWEN25_INPUT) == []
        assert profile.parse_points(text, image_size=IMG, input_size=QWEN25_INPUT) == []


def test_long_output_with_many_boxes() -> None:
    text = "```json\n[" + ", ".join(f'{{"bbox_2d": [{i}, 0, {i + 1}, 1], "label": "w{i}"}}' for i in range(2000)) + ", {\"bbox"
    got = QWEN3_VL.parse_boxes(text, image_size=IMG)
    assert len(got) == 2000 and got[-1].label == "w1999"


# -------------------------------------------------------------------------------------------------
# coordinate mapping
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("profile", "values", "input_size", "expected"),
    [
        (QWEN2_VL, (100, 200, 300, 400), None, (100, 100, 300, 200)),
        (QWEN3_VL, (1000, 1000, 0, 0), None, (0, 0, 1000, 500)),
        (QWEN2_5_VL, (10, 20, 30, 40), QWEN25_INPUT, (20, 40, 60, 80)),
        (LLAVA, (0.25, 0.5, 0.75, 1.0), None, (250, 250, 750, 500)),
        (PALIGEMMA, (1023, 0, 0, 1023), None, (0, 0, 1000, 500)),  # y0 x0 y1 x1, swapped
        (FLORENCE2, (0, 0, 999, 999), None, (0.5, 0.25, 999.5, 499.75)),
    ],
    ids=["qwen2", "qwen3", "qwen2.5", "llava", "paligemma", "florence2"],
)
def test_to_pixel_box(profile: FamilyProfile, values: tuple[float, ...], input_size: Size | None, expected: tuple[float, ...]) -> None:
    box = profile.to_pixel_box(values, image_size=IMG, input_size=input_size)
    assert box.xyxy == pytest.approx(expected)
    assert (box.space, box.image_size) == (Space.PIXEL, IMG)


def test_to_pixel_point_order_and_clipping() -> None:
    assert PALIGEMMA.to_pixel_point((1023, 0), image_size=IMG).xy == pytest.approx((0, 500))  # y, x
    assert QWEN3_VL.to_pixel_point((2000, -1), image_size=IMG, label="x").xy == (1000, 0)
    assert QWEN2_5_VL.to_pixel_point((250, 125), image_size=IMG, input_size=QWEN25_INPUT).xy == (500, 250)


@pytest.mark.parametrize("values", [(1, 2, 3), (1, 2, 3, 4, 5), (math.nan, 0, 1, 1), (0, math.inf, 1, 1)])
def test_to_pixel_box_rejects_bad_numbers(values: tuple[float, ...]) -> None:
    with pytest.raises(UsageError):
        QWEN3_VL.to_pixel_box(values, image_size=IMG)


def test_encode_needs_an_image_space() -> None:
    with pytest.raises(UsageError):
        QWEN3_VL.encode_box(BoundingBox(x0=0, y0=0, x1=1, y1=1))  # page space
    with pytest.raises(UsageError):
        QWEN3_VL.encode_box(BoundingBox(x0=0, y0=0, x1=1, y1=1, space=Space.PIXEL))  # no image size
    norm = BoundingBox(x0=0.1, y0=0.2, x1=0.3, y1=0.4, space=Space.NORMALIZED)
    assert QWEN3_VL.encode_box(norm) == (100, 200, 300, 400)
    assert PALIGEMMA.encode_box(norm) == (205, 102, 409, 307)  # y0 x0 y1 x1, round(f * 1023)
    assert FLORENCE2.encode_box(norm) == (100, 200, 300, 400)  # floor(f * 1000), 0.3 * 1000 = 299.99..
    with pytest.raises(UsageError):
        QWEN2_5_VL.encode_box(norm)  # pixels of the input, and no size to find them


def _transformers_source(relative: str) -> str:
    spec = importlib.util.find_spec("transformers")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("transformers is not installed")
    return (Path(next(iter(spec.submodule_search_locations))) / relative).read_text(encoding="utf-8")


@pytest.mark.parametrize(("height", "width"), [(500, 1000), (1, 50), (3000, 4000), (28, 28), (10, 10), (1080, 1920), (7000, 50)])
def test_smart_resize_matches_transformers(height: int, width: int) -> None:
    # transformers' image processor module needs torchvision to import: run its smart_resize source instead
    source = _transformers_source("models/qwen2_vl/image_processing_qwen2_vl.py")
    fn = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == "smart_resize")
    namespace: dict[str, Any] = {"math": math}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "smart_resize", "exec"), namespace)
    h, w = namespace["smart_resize"](height, width, factor=28, min_pixels=56 * 56, max_pixels=28 * 28 * 1280)
    assert smart_resize(Size(width=width, height=height)) == Size(width=w, height=h)
    assert re.search(r'size = \{"shortest_edge": 56 \* 56, "longest_edge": 28 \* 28 \* 1280\}', source)


def test_smart_resize_rejects_extreme_aspect_ratio() -> None:
    with pytest.raises(UsageError):
        smart_resize(Size(width=201, height=1))


# -------------------------------------------------------------------------------------------------
# constrained decoding types, hints, prompts, flags
# -------------------------------------------------------------------------------------------------
def test_coordinate_types() -> None:
    int1000 = TypeAdapter(QWEN3_VL.coordinate_type())
    assert int1000.validate_python(1000) == 1000
    with pytest.raises(ValidationError):
        int1000.validate_python(1001)
    rel1 = TypeAdapter(LLAVA.coordinate_type())
    assert rel1.validate_python(0.5) == 0.5
    with pytest.raises(ValidationError):
        rel1.validate_python(1.01)
    px = TypeAdapter(QWEN2_5_VL.coordinate_type(input_size=QWEN25_INPUT))
    assert px.validate_python(500) == 500
    with pytest.raises(ValidationError):
        px.validate_python(501)
    py = TypeAdapter(QWEN2_5_VL.coordinate_type(input_size=QWEN25_INPUT, axis="y"))
    with pytest.raises(ValidationError):
        py.validate_python(251)
    with pytest.raises(UsageError):
        QWEN2_5_VL.coordinate_type()
    with pytest.raises(ValidationError):
        TypeAdapter(PALIGEMMA.coordinate_type()).validate_python(1024)
    with pytest.raises(ValidationError):
        TypeAdapter(FLORENCE2.coordinate_type()).validate_python(1000)


def test_coordinate_type_compiles_to_a_bounded_regex() -> None:
    from docvlm.decoding import compile_output_type

    coord = QWEN3_VL.coordinate_type()
    constraint = compile_output_type(tuple[coord, coord, coord, coord])  # type: ignore[valid-type]
    assert constraint.parse("[0,1000,5,999]") == (0, 1000, 5, 999)
    assert re.fullmatch(constraint.regex, "[0,1001,5,999]") is None


def test_native_box_regex() -> None:
    box = BoundingBox(x0=0, y0=0, x1=1000, y1=500, space=Space.PIXEL, image_size=IMG)
    for profile in (PALIGEMMA, FLORENCE2):
        pattern = profile.native_box_regex()
        assert pattern is not None
        assert re.fullmatch(pattern, profile.format_boxes([(None, box)]))
    assert re.fullmatch(PALIGEMMA.native_box_regex(), "<loc1024><loc0000><loc0000><loc0000>") is None
    assert re.fullmatch(FLORENCE2.native_box_regex(), "<loc_1000><loc_0><loc_0><loc_0>") is None
    assert QWEN3_VL.native_box_regex() is None


def test_box_prompt_hints() -> None:
    assert "integers from 0 to 1000 relative to the image width and height" in QWEN3_VL.box_prompt_hint()
    assert '"bbox_2d"' in QWEN3_VL.box_prompt_hint()
    assert "from 0 to 1 with 2 decimals" in LLAVA.box_prompt_hint()
    hint = QWEN2_5_VL.box_prompt_hint(input_size=QWEN25_INPUT)
    assert "pixel" in hint and "500 pixels wide" in hint and "250 pixels high" in hint
    assert "<locNNNN>" in PALIGEMMA.box_prompt_hint() and "<loc_N>" in FLORENCE2.box_prompt_hint()
    assert '"point_2d": [x, y]' in QWEN3_VL.point_prompt_hint()


@pytest.mark.parametrize(
    ("profile", "task", "text", "expected"),
    [
        (FLORENCE2, "detect", None, "<OD>"),
        (FLORENCE2, "<OD>", None, "<OD>"),
        (FLORENCE2, "ocr_with_region", None, "<OCR_WITH_REGION>"),
        (FLORENCE2, "ground", "a red car", "<CAPTION_TO_PHRASE_GROUNDING>a red car"),
        (FLORENCE2, "<CAPTION_TO_PHRASE_GROUNDING>", "a red car", "<CAPTION_TO_PHRASE_GROUNDING>a red car"),
        (FLORENCE2, "segment", "the signature", "<REFERRING_EXPRESSION_SEGMENTATION>the signature"),
        (PALIGEMMA, "detect", "cat ; dog", "detect cat ; dog"),
        (PALIGEMMA, "detect", ["cat", "dog"], "detect cat ; dog"),
        (PALIGEMMA, "segment", "cat", "segment cat"),
        (PALIGEMMA, "ocr", None, "ocr"),
        (PALIGEMMA, "caption", None, "caption en"),
        (PALIGEMMA, "answer", "what is the total?", "answer en what is the total?"),
    ],
)
def test_task_prompts(profile: FamilyProfile, task: str, text: str | list[str] | None, expected: str) -> None:
    assert profile.task_prompt(task, text) == expected


def test_task_prompt_errors() -> None:
    with pytest.raises(UsageError):
        FLORENCE2.task_prompt("ground")  # needs a phrase
    with pytest.raises(UsageError):
        FLORENCE2.task_prompt("detect", "cat")  # <OD> takes none
    with pytest.raises(UsageError):
        FLORENCE2.task_prompt("fly")
    with pytest.raises(UsageError):
        QWEN2_5_VL.task_prompt("detect", "cat")  # a chat model: free-form prompts
    assert PALIGEMMA.task_prompt("caption", language="fr") == "caption fr"
    assert "detect" in PALIGEMMA.supported_tasks and "<OD>" not in FLORENCE2.supported_tasks
    assert GENERIC.supported_tasks == ()


def test_raw_prompts_and_flags() -> None:
    assert PALIGEMMA.raw_prompt("detect cat", num_images=2) == "<image><image>detect cat"
    assert FLORENCE2.raw_prompt("<OD>") == "<OD>"  # the processor adds the image tokens itself
    assert {p.name for p in PROFILES.values() if not p.uses_chat_template} == {"paligemma", "florence2"}
    assert {p.name for p in PROFILES.values() if p.image_token_in_prompt} == {"paligemma"}
    assert {p.name for p in PROFILES.values() if not p.supports_grounding} == {"idefics3", "smolvlm"}
    assert GENERIC.uses_chat_template and not GENERIC.supports_grounding


# -------------------------------------------------------------------------------------------------
# the registry
# -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model_type", "expected"),
    [
        ("qwen2_vl", QWEN2_VL),
        ("qwen2_5_vl", QWEN2_5_VL),
        ("qwen3_vl", QWEN3_VL),
        ("qwen3_vl_moe", QWEN3_VL),
        ("idefics3", IDEFICS3),
        ("smolvlm", SMOLVLM),
        ("llava", LLAVA),
        ("llava_next", LLAVA),
        ("paligemma", PALIGEMMA),
        ("florence2", FLORENCE2),
        (" Qwen2_5_VL ", QWEN2_5_VL),
        ("llama", GENERIC),
        ("", GENERIC),
        (None, GENERIC),
    ],
)
def test_profile_for(model_type: str | None, expected: FamilyProfile) -> None:
    assert profile_for(model_type) is expected


def test_profile_conventions() -> None:
    assert {name: p.box_convention for name, p in PROFILES.items()} == {
        "qwen2_vl": BoxConvention.REL_1000,
        "qwen2_5_vl": BoxConvention.INPUT_PIXELS,
        "qwen3_vl": BoxConvention.REL_1000,
        "qwen3_vl_moe": BoxConvention.REL_1000,
        "idefics3": BoxConvention.REL_1,
        "smolvlm": BoxConvention.REL_1,
        "llava": BoxConvention.REL_1,
        "llava_next": BoxConvention.REL_1,
        "paligemma": BoxConvention.LOC_1024_YX,
        "florence2": BoxConvention.LOC_1000,
    }
    assert all(name in p.model_types for name, p in PROFILES.items())
    assert len({hash(p) for p in PROFILES.values()}) == len(set(PROFILES.values()))  # frozen and hashable


@pytest.mark.parametrize("model_type", sorted(PROFILES))
def test_model_types_exist_in_transformers(model_type: str) -> None:
    folder = {"qwen3_vl_moe": "qwen3_vl_moe"}.get(model_type, model_type)
    source = _transformers_source(f"models/{folder}/configuration_{folder}.py")
    assert re.search(rf'^\s+model_type = "{model_type}"$', source, re.M)


def test_florence2_and_paligemma_conventions_match_transformers_source() -> None:
    florence = _transformers_source("models/florence2/processing_florence2.py")
    assert "self.quantize_bins = (1000, 1000)" in florence
    assert "(xmin + 0.5) * per_bin_w" in florence  # bin centres
    assert "(xmin / per_bin_w).floor().clamp(0, bins_w - 1)" in florence
    for token in ("<OD>", "<CAPTION_TO_PHRASE_GROUNDING>", "<OCR_WITH_REGION>", "<REFERRING_EXPRESSION_SEGMENTATION>"):
        assert f'"{token}"' in florence
    paligemma = _transformers_source("models/paligemma/processing_paligemma.py")
    assert 'EXTRA_TOKENS = [f"<loc{i:0>4}>" for i in range(1024)] + [f"<seg{i:0>3}>" for i in range(128)]' in paligemma


def test_import_is_light() -> None:
    code = (
        "import sys, docvlm.models.profiles\n"
        "heavy = [m for m in ('torch', 'transformers', 'outlines', 'cv2') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -------------------------------------------------------------------------------------------------
# round trips: a pixel box encoded in the family's dialect parses back within its quantization
# -------------------------------------------------------------------------------------------------
LABELS = st.one_of(st.none(), st.from_regex(r"[a-z][a-z ]{0,10}[a-z]|[a-z]", fullmatch=True))


@st.composite
def image_and_box(draw: st.DrawFn) -> tuple[Size, BoundingBox]:
    w = draw(st.integers(1, 4000))
    h = draw(st.integers(1, 4000).filter(lambda v: max(w, v) / min(w, v) <= 200))
    xs = sorted(draw(st.floats(0, w)) for _ in range(2))
    ys = sorted(draw(st.floats(0, h)) for _ in range(2))
    size = Size(width=w, height=h)
    return size, BoundingBox(x0=xs[0], y0=ys[0], x1=xs[1], y1=ys[1], space=Space.PIXEL, image_size=size)


ALL_PROFILES = [GENERIC, *dict.fromkeys(PROFILES.values())]


def _close(got: BoundingBox, want: BoundingBox, tol: tuple[float, float]) -> None:
    tx, ty = tol[0] + 1e-6 * (1 + tol[0]), tol[1] + 1e-6 * (1 + tol[1])
    assert abs(got.x0 - want.x0) <= tx and abs(got.x1 - want.x1) <= tx
    assert abs(got.y0 - want.y0) <= ty and abs(got.y1 - want.y1) <= ty


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
@settings(max_examples=60, deadline=None)
@given(image_box=image_and_box(), labels=st.lists(LABELS, min_size=1, max_size=3), data=st.data())
def test_format_then_parse_round_trip(
    profile: FamilyProfile, image_box: tuple[Size, BoundingBox], labels: list[str | None], data: st.DataObject
) -> None:
    size, box = image_box
    input_size = None
    if profile.box_convention is BoxConvention.INPUT_PIXELS:
        input_size = data.draw(st.one_of(st.none(), st.builds(Size, width=st.integers(28, 3000), height=st.integers(28, 3000))))
    items = [(label, box) for label in labels]
    text = profile.format_boxes(items, input_size=input_size)
    parsed = profile.parse_boxes(text, image_size=size, input_size=input_size)
    if profile in (FLORENCE2, QWEN2_VL):
        # their syntax has a label before its boxes: an unlabelled box after a labelled one belongs to it
        labels = [next((lab for lab in reversed(labels[: i + 1]) if lab is not None), None) for i in range(len(labels))]
    assert [p.label for p in parsed] == labels
    tol = profile.quantization_error(size, input_size=input_size)
    for p in parsed:
        assert isinstance(p, LabeledBox)
        _close(p.box, box, tol)


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
@settings(max_examples=60, deadline=None)
@given(image_box=image_and_box())
def test_encode_then_to_pixel_round_trip(profile: FamilyProfile, image_box: tuple[Size, BoundingBox]) -> None:
    size, box = image_box
    values = profile.encode_box(box)
    _close(profile.to_pixel_box(values, image_size=size), box, profile.quantization_error(size))


@pytest.mark.parametrize("profile", [p for p in ALL_PROFILES if p not in (PALIGEMMA, FLORENCE2)], ids=lambda p: p.name)
@settings(max_examples=40, deadline=None)
@given(image_box=image_and_box(), label=LABELS)
def test_point_round_trip(profile: FamilyProfile, image_box: tuple[Size, BoundingBox], label: str | None) -> None:
    size, box = image_box
    point = Point(x=box.x0, y=box.y1, space=Space.PIXEL, image_size=size)
    parsed = profile.parse_points(profile.format_points([(label, point)]), image_size=size)
    assert [p.label for p in parsed] == [label]
    tx, ty = profile.quantization_error(size)
    assert abs(parsed[0].point.x - point.x) <= tx + 1e-6 * (1 + tx)
    assert abs(parsed[0].point.y - point.y) <= ty + 1e-6 * (1 + ty)


@settings(max_examples=40, deadline=None)
@given(image_box=image_and_box(), codes=st.lists(st.integers(0, 127), min_size=16, max_size=16), label=LABELS)
def test_paligemma_segment_round_trip(image_box: tuple[Size, BoundingBox], codes: list[int], label: str | None) -> None:
    size, box = image_box
    text = PALIGEMMA.format_segments([(label, box, codes), (label, box, codes)])
    segs = PALIGEMMA.parse_segments(text, image_size=size)
    assert [(s.label, s.seg_codes) for s in segs] == [(label, tuple(codes))] * 2
    _close(segs[0].box, box, PALIGEMMA.quantization_error(size))


@settings(max_examples=40, deadline=None)
@given(
    size=st.builds(Size, width=st.integers(1, 4000), height=st.integers(1, 4000)),
    fractions=st.lists(st.tuples(st.floats(0, 1), st.floats(0, 1)), min_size=3, max_size=12),
    label=LABELS,
)
def test_florence2_polygon_round_trip(size: Size, fractions: list[tuple[float, float]], label: str | None) -> None:
    poly = Polygon(points=[(fx * size.width, fy * size.height) for fx, fy in fractions], space=Space.PIXEL, image_size=size)
    parsed = FLORENCE2.parse_polygons(FLORENCE2.format_polygons([(label, poly)]), image_size=size)
    assert [p.label for p in parsed] == [label]
    tx, ty = FLORENCE2.quantization_error(size)
    for (gx, gy), (wx, wy) in zip(parsed[0].polygon.points, poly.points, strict=True):
        assert abs(gx - wx) <= tx + 1e-6 * (1 + tx) and abs(gy - wy) <= ty + 1e-6 * (1 + ty)
