"""Small datasets in each public format, written by the tests themselves (documents generated with PyMuPDF / Pillow).

Built once per session; tests must not modify them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FORM_W, FORM_H = 320.0, 200.0
TABLE_W, TABLE_H = 400.0, 300.0
# a ruled 3 x 3 grid: column and row lines in page space (y down)
XS = [50.0, 150.0, 250.0, 350.0]
YS = [60.0, 90.0, 120.0, 150.0]
TEXTS = [["abc", "def", "ghi"], ["jkl", "mno", "pqr"], ["stu", "vwx", "yza"]]


@dataclass
class Files:
    root: Path
    funsd: Path           # folder: annotations/ + images/
    funsd_boxes: dict[str, tuple[float, float, float, float]]
    icdar: Path           # folder of two PDFs and their -str.xml
    sroie: Path
    docvqa: Path
    coco: Path
    pubtabnet: Path
    mcq: Path


def _words_box(pdf: bytes, text: str) -> tuple[float, float, float, float]:
    """The union of the text-layer boxes of the consecutive words that spell ``text``."""
    import docvlm as dv

    words = list(dv.open(pdf)[0].words())
    parts = text.split()
    for i in range(len(words) - len(parts) + 1):
        if [w.text for w in words[i:i + len(parts)]] == parts:
            boxes = [w.box for w in words[i:i + len(parts)]]
            return (min(b.x0 for b in boxes), min(b.y0 for b in boxes), max(b.x1 for b in boxes), max(b.y1 for b in boxes))
    raise AssertionError(f"{text!r} is not on the page")


def form_pdf() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=FORM_W, height=FORM_H)
    page.insert_text((20, 30), "REGISTRATION", fontsize=12)
    page.insert_text((20, 70), "Name:", fontsize=10)
    page.insert_text((160, 70), "John Smith", fontsize=10)
    page.insert_text((20, 110), "Date:", fontsize=10)
    page.insert_text((160, 110), "2024-03-01", fontsize=10)
    page.insert_text((20, 150), "Company:", fontsize=10)
    data: bytes = doc.tobytes()
    doc.close()
    return data


def table_pdf() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    page = doc.new_page(width=TABLE_W, height=TABLE_H)
    page.insert_text((50, 40), "Quarterly figures", fontsize=11)
    for x in XS:
        page.draw_line((x, YS[0]), (x, YS[-1]), width=0.8)
    for y in YS:
        page.draw_line((XS[0], y), (XS[-1], y), width=0.8)
    for r, row in enumerate(TEXTS):
        for c, text in enumerate(row):
            page.insert_text((XS[c] + 8, YS[r] + 20), text, fontsize=10)
    data: bytes = doc.tobytes()
    doc.close()
    return data


def icdar_xml(pdf_name: str, texts: list[list[str]], *, bad_region: bool = False) -> str:
    """ICDAR-2013 structure XML: PDF points, origin bottom-left (y_pdf = page height - y_page)."""
    cells = []
    for r, row in enumerate(texts):
        for c, text in enumerate(row):
            x1, x2 = XS[c], XS[c + 1]
            y1, y2 = TABLE_H - YS[r + 1], TABLE_H - YS[r]
            cells.append(f'<cell id="{len(cells)}" start-col="{c}" start-row="{r}">'
                         f'<bounding-box x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"/><content>{text}</content></cell>')
    region = (f'<region id="1" page="1"><bounding-box x1="{XS[0]}" y1="{TABLE_H - YS[-1]}" x2="{XS[-1]}" '
              f'y2="{TABLE_H - YS[0]}"/>{"".join(cells)}</region>')
    bad = '<table id="2"><region id="1" page="1"><cell id="0" start-col="0"><content>x</content></cell></region></table>'
    return (f'<?xml version="1.0" encoding="UTF-8"?><document filename="{pdf_name}"><table id="1">{region}</table>'
            f'{bad if bad_region else ""}</document>')


def png(width: int, height: int, color: tuple[int, int, int] = (255, 255, 255)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture(scope="session")
def eval_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Files]:
    root = tmp_path_factory.mktemp("eval-data")
    form = form_pdf()

    # FUNSD: annotations/form1.json + images/form1.pdf (a page image in the original; any document docvlm opens)
    funsd = root / "funsd"
    (funsd / "images").mkdir(parents=True)
    (funsd / "images" / "form1.pdf").write_bytes(form)
    boxes = {t: _words_box(form, t) for t in ("REGISTRATION", "Name:", "John Smith", "Date:", "2024-03-01", "Company:")}
    acme = (160.0, 140.0, 200.0, 152.0)  # the truth says "Acme", which the page does not print

    def entity(i: int, label: str, text: str, box: Any, links: list[list[int]]) -> dict[str, Any]:
        return {"id": i, "label": label, "text": text, "box": list(box), "linking": links, "words": []}

    _write_json(funsd / "annotations" / "form1.json", {"form": [
        entity(0, "header", "REGISTRATION", boxes["REGISTRATION"], []),
        entity(1, "question", "Name:", boxes["Name:"], [[1, 2]]),
        entity(2, "answer", "John Smith", boxes["John Smith"], [[1, 2]]),
        entity(3, "question", "Date:", boxes["Date:"], [[3, 4]]),
        entity(4, "answer", "2024-03-01", boxes["2024-03-01"], [[3, 4]]),
        entity(5, "question", "Company:", boxes["Company:"], [[5, 6]]),
        entity(6, "answer", "Acme", acme, [[5, 6]]),
        {"id": 7, "label": "answer", "text": "broken", "box": "not a box", "linking": []},  # skipped
    ]})
    _write_json(funsd / "annotations" / "orphan.json", {"form": []})  # no page: skipped

    # ICDAR 2013: two copies of one ruled table; the second truth misspells one cell ("abd" for "abc")
    icdar = root / "icdar"
    icdar.mkdir()
    table = table_pdf()
    for name in ("us-001", "us-002"):
        (icdar / f"{name}.pdf").write_bytes(table)
    (icdar / "us-001-str.xml").write_text(icdar_xml("us-001.pdf", TEXTS, bad_region=True))
    wrong = [row[:] for row in TEXTS]
    wrong[0][0] = "abd"
    (icdar / "us-002-str.xml").write_text(icdar_xml("us-002.pdf", wrong))

    # SROIE: key/, box/, img/
    sroie = root / "sroie"
    (sroie / "img").mkdir(parents=True)
    (sroie / "img" / "r1.png").write_bytes(png(200, 120))
    _write_json(sroie / "key" / "r1.json", {"company": "ACME STORE", "date": "01/03/2024",
                                          "address": "1 MAIN ST SPRINGFIELD", "total": "9.00"})
    (sroie / "box").mkdir()
    (sroie / "box" / "r1.txt").write_text(
        "10,10,100,10,100,20,10,20,ACME STORE\n"
        "10,25,90,25,90,35,10,35,1 MAIN ST\n"
        "10,40,110,40,110,50,10,50,SPRINGFIELD\n"
        "10,55,60,55,60,65,10,65,01/03/2024\n"
        "1,2,3,broken line\n"
        "10,70,50,70,50,80,10,80,9.00\n"
        "10,85,50,85,50,95,10,95,9.00\n")

    # DocVQA: the page is the form PDF
    docvqa = root / "docvqa"
    (docvqa / "documents").mkdir(parents=True)
    (docvqa / "documents" / "form1.pdf").write_bytes(form)
    _write_json(docvqa / "val_v1.0.json", {"dataset_name": "docvqa", "data": [
        {"questionId": 1, "question": "Whose registration is it?", "image": "documents/form1.pdf",
         "answers": ["john smith", "John Smith"]},
        {"questionId": 2, "question": "What is the date?", "image": "documents/form1.pdf", "answers": ["2024-03-02"]},
        {"questionId": 3, "question": "Test split question", "image": "documents/form1.pdf"},  # no answers: skipped
        {"questionId": 4, "question": "Where?", "image": "documents/missing.png", "answers": ["x"]},  # skipped
    ]})

    # COCO: one 40 x 30 image
    coco = root / "coco"
    (coco / "images").mkdir(parents=True)
    (coco / "images" / "a.png").write_bytes(png(40, 30))
    _write_json(coco / "instances.json", {
        "images": [{"id": 1, "file_name": "a.png", "width": 40, "height": 30},
                   {"id": 2, "file_name": "gone.png", "width": 40, "height": 30}],  # skipped
        "categories": [{"id": 1, "name": "logo"}, {"id": 2, "name": "stamp"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 5, 10, 10],
             "segmentation": [[10, 5, 20, 5, 20, 15, 10, 15]], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 2, 30],
             "segmentation": {"size": [30, 40], "counts": [0, 60, 1140]}, "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 1},  # crowd: skipped
            {"id": 4, "image_id": 1, "category_id": 9, "bbox": [0, 0, 5, 5]},  # unknown category: skipped
        ],
    })

    # PubTabNet: one good line, one broken JSON line, one with too few cells
    pubtabnet = root / "pubtabnet"
    (pubtabnet / "val").mkdir(parents=True)
    (pubtabnet / "val" / "t1.png").write_bytes(png(60, 40))
    good = {"filename": "t1.png", "split": "val", "imgid": 7, "html": {
        "structure": {"tokens": ["<thead>", "<tr>", "<td", ' colspan="2"', ">", "</td>", "</tr>", "</thead>", "<tbody>",
                                 "<tr>", "<td>", "</td>", "<td>", "</td>", "</tr>", "</tbody>"]},
        "cells": [{"tokens": ["<b>", "H", "d", "</b>"], "bbox": [1, 1, 59, 15]}, {"tokens": ["a"], "bbox": [1, 20, 20, 35]},
                  {"tokens": []}]}}
    short = {"filename": "t1.png", "split": "val", "html": {"structure": {"tokens": ["<tr>", "<td>", "</td>", "</tr>"]},
                                                           "cells": []}}
    (pubtabnet / "PubTabNet_val.jsonl").write_text("\n".join([json.dumps(good), "{not json", json.dumps(short)]) + "\n")

    # multiple choice
    mcq = root / "mcq"
    mcq.mkdir()
    (mcq / "form1.pdf").write_bytes(form)
    (mcq / "questions.jsonl").write_text("\n".join(json.dumps(r) for r in [
        {"id": "q1", "document": "form1.pdf", "question": "Whose form is it?",
         "choices": ["John Smith", "Jane Doe", "Acme", "Nobody"], "answer": "A"},
        {"id": "q2", "document": "form1.pdf", "question": "What date?", "choices": ["2023", "2024-03-01"], "answer": 1},
        {"id": "q3", "document": "form1.pdf", "question": "Bad", "choices": ["a", "b"], "answer": 5},  # skipped
    ]) + "\n")

    yield Files(root=root, funsd=funsd, funsd_boxes={**boxes, "Acme": acme}, icdar=icdar, sroie=sroie,
                docvqa=docvqa / "val_v1.0.json", coco=coco / "instances.json",
                pubtabnet=pubtabnet / "PubTabNet_val.jsonl", mcq=mcq / "questions.jsonl")
