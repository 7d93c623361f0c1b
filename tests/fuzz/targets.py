"""The fuzz targets: seed inputs, mutation strategies, and what is run on each input (see the package docstring)."""

from __future__ import annotations

import functools
import html as html_lib
import io
import json
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

# ---------------------------------------------------------------------------------------------------------
# seeds


def _uncompressed(pdf: bytes) -> bytes:
    import pymupdf

    doc = pymupdf.open(stream=pdf, filetype="pdf")
    try:
        data: bytes = doc.tobytes(expand=255, deflate=False, garbage=0)
    finally:
        doc.close()
    return data


def _pdf_with_image() -> bytes:
    import pymupdf
    from PIL import Image

    img = Image.new("RGB", (40, 30), (200, 30, 30))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    doc = pymupdf.open()
    page = doc.new_page(width=200, height=150)
    page.insert_image(pymupdf.Rect(10, 10, 110, 85), stream=buf.getvalue())
    page.insert_text((20, 120), "Total 12.50", fontsize=11)
    data: bytes = doc.tobytes()
    doc.close()
    return data


def _three_pages() -> bytes:
    import pymupdf

    from docvlm import synth

    out = pymupdf.open()
    for pdf in (synth.generate_invoice(4).pdf, synth.generate_columns_page(5).pdf):
        src = pymupdf.open(stream=pdf, filetype="pdf")
        out.insert_pdf(src)
        src.close()
    page = out.new_page(width=300, height=200)
    page.insert_text((30, 40), "Rotated page", fontsize=14)
    page.set_rotation(90)
    data: bytes = out.tobytes()
    out.close()
    return data


@functools.cache
def pdf_seeds() -> list[bytes]:
    from docvlm import synth

    raw = [
        synth.generate_invoice(1).pdf,
        synth.generate_form(2).pdf,
        synth.generate_table_page(3).pdf,
        synth.generate_table_page(6, ruled=False).pdf,
        _pdf_with_image(),
        _three_pages(),
    ]
    return [_uncompressed(pdf) for pdf in raw]


@functools.cache
def image_seeds() -> list[bytes]:
    import numpy as np
    from PIL import Image

    base = Image.new("RGB", (64, 48), "white")
    base.paste((0, 0, 0), (16, 12, 40, 30))
    out = []

    def save(img: Any, fmt: str, **kw: Any) -> None:
        buf = io.BytesIO()
        img.save(buf, format=fmt, **kw)
        out.append(buf.getvalue())

    save(base, "PNG", dpi=(150, 150))
    save(base.convert("RGBA"), "PNG")
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    save(pal, "PNG", transparency=0)
    save(Image.fromarray(np.tile(np.linspace(0, 4000, 64, dtype=np.uint16), (48, 1))), "PNG")
    save(base.convert("1"), "PNG")
    exif = Image.Exif()
    exif[0x0112] = 6
    save(base, "JPEG", exif=exif.tobytes(), quality=80)
    save(base.convert("L"), "JPEG", progressive=True)
    save(base, "GIF", save_all=True, append_images=[base.rotate(90)])
    save(base.convert("L"), "TIFF", save_all=True, append_images=[base.convert("L").resize((32, 24))],
         compression="tiff_deflate")
    save(base, "TIFF", compression="raw")
    save(base, "BMP")
    save(base, "WEBP", lossless=True)
    return out


# ---------------------------------------------------------------------------------------------------------
# mutations

_HOSTILE_NUMBERS = [
    "-1", "0", "1", "2", "-0", "65535", "65536", "2147483647", "2147483648", "-2147483649", "4294967296",
    "99999999999", "1e308", "3.4e38", "1.0e-300", "-1e9", "0.0000001", "100000", "12000", "nan", "9" * 30,
]
_NAMES = [
    "/Count", "/Kids", "/Parent", "/Type", "/Page", "/Pages", "/Contents", "/Resources", "/Font", "/XObject",
    "/Length", "/Filter", "/FlateDecode", "/DCTDecode", "/LZWDecode", "/Rotate", "/MediaBox", "/CropBox",
    "/Width", "/Height", "/BitsPerComponent", "/ColorSpace", "/Subtype", "/Image", "/Form", "/Annots", "/Root",
    "/Encrypt", "/ObjStm", "/XRef", "/Prev", "/Size", "/Index", "/W", "/Pattern", "/Shading", "/Widths",
]
_KEYWORDS = [b"obj", b"endobj", b"stream", b"endstream", b"R", b"xref", b"trailer", b"startxref", b"null",
             b"true", b"<<", b">>", b"[", b"]", b"q", b"Q", b"cm", b"Do", b"Tf", b"BT", b"ET", b"re", b"f"]
_NUMBER = re.compile(rb"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")
_NAME = re.compile(rb"/[A-Za-z][A-Za-z0-9]*")
_KEYWORD = re.compile(rb"\b(?:obj|endobj|stream|endstream|xref|trailer|startxref|R|null|true|false)\b")

_pos = st.integers(0, 10**6)
_pdf_mutation = st.one_of(
    st.tuples(st.just("num"), _pos, st.one_of(st.sampled_from(_HOSTILE_NUMBERS),
                                               st.integers(-(2**40), 2**40).map(str))),
    st.tuples(st.just("name"), _pos, st.sampled_from(_NAMES)),
    st.tuples(st.just("kw"), _pos, st.sampled_from(_KEYWORDS)),
    st.tuples(st.just("splice"), _pos, st.integers(0, 64), st.binary(max_size=24)),
    st.tuples(st.just("dup"), _pos, st.integers(1, 400)),
    st.tuples(st.just("truncate"), _pos),
)


def _nth(matches: list[re.Match[bytes]], k: int) -> re.Match[bytes] | None:
    return matches[k % len(matches)] if matches else None


def mutate_pdf(data: bytes, mutations: list[tuple[Any, ...]]) -> bytes:
    for m in mutations:
        op, k = m[0], m[1]
        if op in ("num", "name", "kw"):
            pattern = {"num": _NUMBER, "name": _NAME, "kw": _KEYWORD}[op]
            hit = _nth(list(pattern.finditer(data)), k)
            if hit is not None:
                value = m[2] if isinstance(m[2], bytes) else str(m[2]).encode()
                data = data[:hit.start()] + value + data[hit.end():]
        elif op == "splice":
            i = k % (len(data) + 1)
            data = data[:i] + m[3] + data[i + m[2]:]
        elif op == "dup":
            i = k % (len(data) + 1)
            data = data[:i] + data[i:i + m[2]] + data[i:]
        elif op == "truncate":
            data = data[:max(8, k % (len(data) + 1))]
    return data


_HOSTILE_INTS = [0, 1, 2, 3, 4, 8, 16, 255, 256, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 12000, 100_000, 0x7FFFFFFF,
                 0x80000000, 0xFFFFFFFF]
_image_mutation = st.one_of(
    st.tuples(st.just("int"), st.one_of(st.integers(0, 160), _pos), st.sampled_from([1, 2, 4]),
              st.sampled_from(["<", ">"]), st.one_of(st.sampled_from(_HOSTILE_INTS), st.integers(0, 2**32 - 1))),
    st.tuples(st.just("splice"), _pos, st.integers(0, 32), st.binary(max_size=16)),
    st.tuples(st.just("truncate"), _pos),
)


def _fix_png_crcs(data: bytes) -> bytes:
    """Recompute every chunk's CRC, so a mutated header reaches the decoder instead of the checksum test."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return data
    out, i = bytearray(data[:8]), 8
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i:i + 4])
        end = i + 8 + length
        if end + 4 > len(data):
            out += data[i:]
            return bytes(out)
        body = data[i + 4:end]
        out += data[i:end] + struct.pack(">I", zlib.crc32(body))
        i = end + 4
    out += data[i:]
    return bytes(out)


def mutate_image(data: bytes, mutations: list[tuple[Any, ...]], fix_crc: bool) -> bytes:
    for m in mutations:
        op, k = m[0], m[1]
        if op == "int":
            width, endian, value = m[2], m[3], m[4] % (1 << (8 * m[2]))
            i = k % max(1, len(data) - width)
            fmt = endian + {1: "B", 2: "H", 4: "I"}[width]
            data = data[:i] + struct.pack(fmt, value) + data[i + width:]
        elif op == "splice":
            i = k % (len(data) + 1)
            data = data[:i] + m[3] + data[i + m[2]:]
        elif op == "truncate":
            data = data[:max(8, k % (len(data) + 1))]
    return _fix_png_crcs(data) if fix_crc else data


_SPAN = st.sampled_from(["1", "0", "-1", "2", "3", "1000", "65535", "99999999", "2147483648", "abc", "", "1.5"])
_URL = st.sampled_from(["http://10.0.0.1/", "file:///etc/passwd", "javascript:alert(1)", "#top", "/rel",
                        "http://127.0.0.1:9/", "https://example.com/x?a=1&b=2", "data:text/html,<b>x</b>"])
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=24).map(html_lib.escape)
_LEAF = st.one_of(
    _TEXT,
    st.sampled_from(["<br>", "<hr>", "&amp;", "&#0;", "&#xFFFFFF;", "&nbsp;" * 3, "<img src='x.png'>",
                     "<img src='file:///etc/passwd' width=99999 height=99999>", "<input name=q value='v'>",
                     "\u202e\u0301\ufeff", "x" * 300, "<wbr>", "<!-- c -->", "<![CDATA[x]]>", "<svg><circle r=9/></svg>"]),
)


def _element(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    tag = st.sampled_from(["div", "p", "span", "table", "tr", "td", "th", "b", "ul", "li", "h1", "pre", "caption",
                           "thead", "tbody", "a", "section", "font", "sup", "center", "style", "script", "title"])
    attrs = st.lists(st.one_of(
        _SPAN.map(lambda v: f"colspan='{v}'"), _SPAN.map(lambda v: f"rowspan='{v}'"), _URL.map(lambda v: f"href='{v}'"),
        st.sampled_from(["style='font-size:400px'", "style='width:100000px'", "style='position:absolute;top:-9999px'",
                         "style='display:none'", "style='column-count:50'", "dir=rtl", "style='font-size:0'"]),
    ), max_size=3).map(" ".join)
    return st.builds(lambda t, a, kids: f"<{t} {a}>{''.join(kids)}</{t}>", tag, attrs, st.lists(children, max_size=5))


_HTML_TREE = st.recursive(_LEAF, _element, max_leaves=40)
# a fragment repeated up to thousands of times: what makes a parser or a layout superlinear shows at this size
_FRAGMENT = st.one_of(
    st.sampled_from(["<a x ", "<b>", "<i><b>", "<td colspan=1000 rowspan=1000>x", "<tr><td rowspan=0>", "<table>",
                     "<a href='/x'>l</a> ", "<!--", "<p>", "<svg>", "<title ", "&#x", "<div style='height:1e9px'>",
                     "<img src=x width=99999>", "<br>", "word "]),
    _TEXT,
)
_html_doc = st.tuples(
    st.sampled_from(["<!doctype html>", "", "<html><head><meta charset='utf-16'></head>", "<title>t</title>"]),
    st.lists(_HTML_TREE, min_size=1, max_size=4),
    st.integers(0, 300),  # wrap the body in this many nested <div>s
    st.sampled_from(["utf-8", "latin-1", "utf-16"]),
    st.one_of(st.none(), st.tuples(_FRAGMENT, st.integers(1, 4000))),
)


def build_html(value: tuple[str, list[str], int, str, tuple[str, int] | None]) -> bytes:
    head, parts, depth, encoding, repeat = value
    body = "<div>" * depth + "".join(parts) + "</div>" * depth
    if repeat is not None:
        body += repeat[0] * repeat[1]
    return (head + body).encode(encoding, errors="replace")


_NUM = st.one_of(
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 1, 72, 144, 600, 1200, 1e9, -1, 0.001]),
)
_WILD = st.one_of(_NUM, st.text(max_size=20), st.none(), st.booleans(), st.lists(_NUM, max_size=4))
_BOX = st.one_of(st.fixed_dictionaries({"x0": _NUM, "y0": _NUM, "x1": _NUM, "y1": _NUM}),
                 st.fixed_dictionaries({"x0": st.floats(0, 700), "y0": st.floats(0, 900), "x1": st.floats(0, 700),
                                        "y1": st.floats(0, 900)}),
                 _WILD)
_ARGS = st.fixed_dictionaries({}, optional={
    "page": st.one_of(st.integers(-3, 4), _WILD),
    "dpi": st.one_of(_NUM, _WILD),
    "box": _BOX,
    "phrase": st.text(max_size=100),
    "text": st.text(max_size=50),
    "quote": st.text(max_size=30),
    "citations": st.lists(st.fixed_dictionaries({"page": st.integers(-1, 2), "box": _BOX,
                                                 "quote": st.text(max_size=20)}), max_size=3),
    "junk": _WILD,
})
TOOL_NAMES = ["list_pages", "render_page", "zoom", "read_text", "find_tables", "ground", "answer"]
_tool_calls = st.lists(st.tuples(st.one_of(st.sampled_from(TOOL_NAMES), st.text(max_size=12)),
                                 st.one_of(_ARGS, _WILD)), min_size=1, max_size=5)


# ---------------------------------------------------------------------------------------------------------
# what runs on each input

MAX_PAGES = 3


def _exercise(doc: Any) -> str:
    from docvlm.tasks import find_tables

    with doc:
        if len(doc) <= 50:
            doc.info()
        for i in range(min(MAX_PAGES, len(doc))):
            page = doc[i]
            page.words()
            page.text()
            page.render(max_pixels=500_000)  # the default resolution, lowered to fit
            if doc.format == "pdf":
                for table in find_tables(page):
                    table.to_markdown()
        if doc.format == "html":
            doc.links()
            doc.tables()
    return "ok"


def run_pdf(data: bytes) -> str:
    import docvlm as dv

    return _exercise(dv.open(data, format="pdf"))


def run_image(data: bytes) -> str:
    import docvlm as dv

    return _exercise(dv.open(data, format="image"))


def run_html(data: bytes) -> str:
    import docvlm as dv
    from docvlm.documents import WebOptions

    return _exercise(dv.open(data, format="html", web=WebOptions(renderer="story")))


@functools.cache
def _tool_document() -> Any:
    import docvlm as dv

    return dv.open(_three_pages())


def run_tools(data: bytes) -> str:
    """``data`` is the JSON of a list of ``[name, args]`` calls; every call must give a ToolResult."""
    from docvlm.models import TestModel
    from docvlm.workflows import Toolbox
    from docvlm.workflows.tools import ToolResult

    calls = json.loads(data)
    box = Toolbox(_tool_document(), TestModel(seed=1))  # a fresh toolbox: artifacts do not pile up across examples
    for name, args in calls:
        result = box.call(name, args)
        if not isinstance(result, ToolResult):
            raise AssertionError(f"{name} returned {type(result).__name__}, not a ToolResult")
        if result.is_error and "\n" in result.text:
            raise AssertionError(f"{name}: an error observation spans lines: {result.text!r}")
    return "ok"


@dataclass(frozen=True)
class Target:
    """A fuzz target: a strategy, how a drawn value becomes the input bytes, and what runs on them."""

    name: str
    extension: str
    strategy: st.SearchStrategy[Any]
    to_bytes: Callable[[Any], bytes]
    run: Callable[[bytes], str]


def _pdf_value() -> st.SearchStrategy[Any]:
    return st.tuples(st.integers(0, len(pdf_seeds()) - 1), st.lists(_pdf_mutation, min_size=1, max_size=6))


def _image_value() -> st.SearchStrategy[Any]:
    return st.tuples(st.integers(0, len(image_seeds()) - 1), st.lists(_image_mutation, min_size=1, max_size=5),
                     st.booleans())


def targets() -> dict[str, Target]:
    return {
        "pdf": Target("pdf", "pdf", st.deferred(_pdf_value),
                      lambda v: mutate_pdf(pdf_seeds()[v[0]], v[1]), run_pdf),
        "image": Target("image", "img", st.deferred(_image_value),
                        lambda v: mutate_image(image_seeds()[v[0]], v[1], v[2]), run_image),
        "html": Target("html", "html", _html_doc, build_html, run_html),
        "tools": Target("tools", "json", _tool_calls,
                        lambda v: json.dumps(v, allow_nan=True).encode(), run_tools),
    }


def target_for_file(name: str) -> Target:
    """The target a regression file replays through, by its extension."""
    ext = name.rsplit(".", 1)[-1].lower()
    by_ext = {t.extension: t for t in targets().values()}
    by_ext.update({"png": by_ext["img"], "jpg": by_ext["img"], "tiff": by_ext["img"], "gif": by_ext["img"]})
    return by_ext[ext]
