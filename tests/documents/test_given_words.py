"""Words the caller already has (a dataset's line boxes, an OCR service) replace the text layer and OCR."""

from __future__ import annotations

import io

import pytest
from PIL import Image

import docvlm as dv
from docvlm.documents import ocr


def png(width: int = 400, height: int = 300) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 255).save(buf, format="PNG")
    return buf.getvalue()


def test_lines_are_split_into_words_along_their_box_and_grouped_into_text_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ocr, "ocr_words", lambda *a, **k: pytest.fail("OCR must not run when words are given"))
    doc = dv.open(png(), words={0: [
        ("TOTAL 9.00", (10, 100, 110, 120)),              # one item, two words
        ("DATE", [200, 101, 240, 101, 240, 119, 200, 119]),  # a quadrilateral, same text line
        {"text": "THANK YOU", "box": dv.BoundingBox(x0=50, y0=200, x1=140, y1=215)},
    ]})
    words = doc[0].words(ocr=True)
    assert words.texts == ["TOTAL", "9.00", "DATE", "THANK", "YOU"]
    total, amount, date = words[0], words[1], words[2]
    # "TOTAL 9.00" is 10 characters: TOTAL takes the first 5/10 of the box, 9.00 the last 4/10
    assert total.box.xyxy == pytest.approx((10, 100, 60, 120))
    assert amount.box.xyxy == pytest.approx((70, 100, 110, 120))
    assert date.box.xyxy == (200, 101, 240, 119)
    assert (total.line, amount.line, date.line) == (0, 0, 0) and words[3].line == 1  # side by side: one line
    assert [w.index for w in words[:3]] == [0, 1, 2]
    assert doc[0].text() == "TOTAL 9.00 DATE\nTHANK YOU"


def test_words_given_later_replace_the_text_layer_of_a_pdf() -> None:
    doc = dv.open(dv.samples.invoice_pdf())
    assert "INV-2026-0042" in doc[0].words().texts
    doc.use_words({0: [("hello world", (72, 72, 150, 84))]})
    assert doc[0].words().texts == ["hello", "world"]
    assert dv.read(None, doc[0]) == "hello world"
    assert dv.open(dv.samples.invoice_pdf())[0].words() != doc[0].words()  # only this document changed


@pytest.mark.parametrize(("words", "message"), [
    ({3: []}, "words given for page 3, but the document has 1 page"),
    ({0: [("a", (1, 2, 0, 4))]}, r"words\[0\]\[0\]: the box \(1.0, 2.0, 0.0, 4.0\) has x1 < x0"),
    ({0: [("a", (1, 2, 3))]}, r"words\[0\]\[0\]: a box has 4 numbers"),
    ({0: [("a", (1, float("nan"), 3, 4))]}, "is not finite"),
    ({0: [(7, (1, 2, 3, 4))]}, "the text must be a string"),
    ({0: ["just text"]}, r"expected \(text, box\)"),
    ({0: "TOTAL"}, "must be a list of"),
    ([("a", (1, 2, 3, 4))], "words must be a mapping of page index"),
])
def test_malformed_words_are_one_line_usage_errors(words: object, message: str) -> None:
    with pytest.raises(dv.UsageError, match=message) as info:
        dv.open(png(), words=words)  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
