"""A three-page PDF built from the synthetic generators, with their exact truth: page 0 running text, page 1 a
ruled table, page 2 an invoice."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pytest

from docvlm import synth
from docvlm.documents import PageImage
from docvlm.models import FunctionInfo, Message
from docvlm.types import BoundingBox, Space


@dataclass(frozen=True)
class Bundle:
    pdf: bytes
    parts: tuple[synth.SyntheticDocument, ...]

    @property
    def invoice(self) -> synth.SyntheticDocument:
        return self.parts[2]


@pytest.fixture(scope="session")
def bundle() -> Bundle:
    import pymupdf

    # the invoice in English, values in their own column: the tests read its spans ("Balance due:", "$2,502.26")
    parts = (synth.generate_columns_page(1), synth.generate_table_page(2),
             synth.generate_invoice(3, language="en", inline=False))
    out = pymupdf.open()
    for part in parts:
        src = pymupdf.open(stream=part.pdf, filetype="pdf")
        out.insert_pdf(src)
        src.close()
    data: bytes = out.tobytes()
    out.close()
    return Bundle(data, parts)


def answer_ground(messages: list[Message], info: FunctionInfo, truth: BoundingBox) -> Any:
    """A vision model's answer to docvlm's ground prompt: ``truth`` (page space) in the generic convention,
    integers 0..1000 of the image it was shown, rounded outwards."""
    (image,) = [p for p in messages[-1].page_images if isinstance(p, PageImage)]
    n = truth.to(Space.NORMALIZED, image.frame)
    box = [max(0, math.floor(n.x0 * 1000)), max(0, math.floor(n.y0 * 1000)),
           min(1000, math.ceil(n.x1 * 1000)), min(1000, math.ceil(n.y1 * 1000))]
    phrase = re.search(r'Find "(.*?)" in the image', messages[-1].text)
    assert phrase is not None, messages[-1].text
    return [{"bbox": box, "label": phrase.group(1)}]


def boxes_in(text: str) -> list[BoundingBox]:
    """The ``[x0, y0, x1, y1]`` boxes printed in an observation."""
    found = re.findall(r"\[(-?[\d.]+), (-?[\d.]+), (-?[\d.]+), (-?[\d.]+)\]", text)
    return [BoundingBox.from_corners(*(float(v) for v in row)) for row in found]
