"""Loaders read every format from files the tests write, and report bad records with file, index and reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from docvlm.errors import DocumentError, UsageError
from docvlm.eval import (
    ChoiceSample,
    DatasetError,
    DetectionSample,
    FieldsSample,
    QASample,
    TableSample,
    load_dataset,
    synthetic_dataset,
    table_from_html,
)
from docvlm.types import BoundingBox
from tests.eval.conftest import TABLE_H, TEXTS, XS, YS, Files, icdar_xml, table_pdf
from tests.realdev import realdev


def test_funsd_links_questions_to_answers_and_skips_bad_entities(eval_files: Files) -> None:
    ds = load_dataset(eval_files.funsd, "funsd")
    (sample,) = ds.samples
    assert isinstance(sample, FieldsSample) and sample.document.endswith("form1.pdf")
    assert [(f.name, f.label, f.value) for f in sample.fields] == [
        ("name", "Name:", "John Smith"), ("date", "Date:", "2024-03-01"), ("company", "Company:", "Acme")]
    assert sample.fields[0].box is not None and sample.fields[0].box.xyxy == eval_files.funsd_boxes["John Smith"]
    assert [(Path(s.file).name, s.record) for s in ds.skipped] == [("form1.json", 7), ("orphan.json", "document")]
    assert "4 numbers" in ds.skipped[0].reason
    schema = sample.schema_type()
    assert list(schema.model_fields) == ["name", "date", "company"]
    assert schema.model_fields["name"].description == "Name:" and schema().name is None  # type: ignore[attr-defined]


def test_strict_loading_raises_a_typed_error_naming_file_and_record(eval_files: Files) -> None:
    with pytest.raises(DatasetError) as info:
        load_dataset(eval_files.funsd, "funsd", strict=True)
    err = info.value
    assert isinstance(err, DocumentError) and err.file.endswith("form1.json") and err.record == 7
    assert "form1.json, record 7" in str(err)


@pytest.mark.parametrize(("content", "fmt", "message"), [
    ("{not json", "docvqa", "not valid JSON"),
    ('{"images": []}', "coco", "not a COCO file"),
    ('{"questions": []}', "docvqa", 'a "data" list'),
])
def test_whole_file_problems_raise(tmp_path: Path, content: str, fmt: str, message: str) -> None:
    path = tmp_path / "data.json"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        load_dataset(path, fmt)


def test_unknown_format_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown dataset format"):
        load_dataset(tmp_path, "voc")
    with pytest.raises(DatasetError, match="no such file"):
        load_dataset(tmp_path / "nope.json", "coco")
    (tmp_path / "x-str.xml").write_text("<notdocument/>")
    with pytest.raises(DatasetError, match="root is <notdocument>"):
        load_dataset(tmp_path, "icdar2013")


def test_icdar2013_boxes_move_from_bottom_left_pdf_points_to_page_space(eval_files: Files) -> None:
    ds = load_dataset(eval_files.icdar, "icdar2013")
    assert [s.id for s in ds.samples] == ["us-001/0.0", "us-002/0.0"]
    sample = ds.samples[0]
    assert isinstance(sample, TableSample) and sample.table.shape == (3, 3) and sample.page == 0
    assert sample.region is not None and sample.region.xyxy == (XS[0], YS[0], XS[-1], YS[-1])
    cell = sample.table.cell(1, 2)
    assert cell is not None and cell.text == TEXTS[1][2] and cell.box is not None
    assert cell.box.xyxy == (XS[2], YS[1], XS[3], YS[2])
    # the cell's box holds the words printed in it, as the page's text layer reports them
    import docvlm as dv

    word = next(w for w in dv.open(Path(sample.document))[0].words() if w.text == TEXTS[1][2])
    assert cell.box.contains(word.box)
    (skip,) = ds.skipped
    assert skip.record == "table 2 region 1" and "start-row" in skip.reason


def test_icdar2013_uses_the_cropbox(tmp_path: Path) -> None:
    import pymupdf

    doc = pymupdf.open(stream=table_pdf())
    page = doc[0]
    page.set_cropbox(pymupdf.Rect(20, 30, 380, 280))  # MuPDF coordinates: 20 pt off the left, 30 pt off the top
    (tmp_path / "c.pdf").write_bytes(doc.tobytes())
    (tmp_path / "c-str.xml").write_text(icdar_xml("c.pdf", TEXTS))
    (sample,) = load_dataset(tmp_path, "icdar2013").samples
    assert isinstance(sample, TableSample)
    cell = sample.table.cell(0, 0)
    assert cell is not None and cell.box is not None
    assert cell.box.xyxy == pytest.approx((XS[0] - 20, YS[0] - 30, XS[1] - 20, YS[1] - 30))
    import docvlm as dv

    word = next(w for w in dv.open(tmp_path / "c.pdf")[0].words() if w.text == TEXTS[0][0])
    assert cell.box.contains(word.box)
    assert TABLE_H == 300  # the XML above was written for this page height


def test_sroie_keys_with_boxes_from_the_text_lines(eval_files: Files) -> None:
    ds = load_dataset(eval_files.sroie, "sroie")
    (sample,) = ds.samples
    assert isinstance(sample, FieldsSample)
    fields = {f.name: f for f in sample.fields}
    assert fields["company"].box == BoundingBox(x0=10, y0=10, x1=100, y1=20)
    assert fields["address"].box == BoundingBox(x0=10, y0=25, x1=110, y1=50)  # two lines spell it
    assert fields["total"].box is None  # "9.00" is printed twice: ambiguous
    assert [(s.record, "8 coordinates" in s.reason) for s in ds.skipped] == [(5, True)]


def test_docvqa_questions_and_skips(eval_files: Files) -> None:
    ds = load_dataset(eval_files.docvqa, "docvqa")
    assert [(s.id, s.answers) for s in ds.samples if isinstance(s, QASample)] == [
        ("1", ["john smith", "John Smith"]), ("2", ["2024-03-02"])]
    assert [s.record for s in ds.skipped] == [2, 3]
    assert "no answers" in ds.skipped[0].reason and "missing.png" in ds.skipped[1].reason


def test_coco_boxes_masks_and_skips(eval_files: Files) -> None:
    ds = load_dataset(eval_files.coco, "coco")
    (sample,) = ds.samples
    assert isinstance(sample, DetectionSample)
    logo, stamp = sample.objects
    assert (logo.label, logo.box.xyxy) == ("logo", (10.0, 5.0, 20.0, 15.0))
    assert logo.mask is not None and logo.mask.area == 100  # polygon 10 x 10
    assert stamp.mask is not None and stamp.mask.area == 60 and stamp.mask.bbox is not None
    assert stamp.mask.bbox.xyxy == (0.0, 0.0, 2.0, 30.0)  # RLE: the first 60 pixels, column-major = 2 columns
    assert [s.record for s in ds.skipped] == ["images[1]", "annotations[2]", "annotations[3]"]


def test_pubtabnet_tables_with_spans_and_header(eval_files: Files) -> None:
    ds = load_dataset(eval_files.pubtabnet, "pubtabnet")
    (sample,) = ds.samples
    assert isinstance(sample, TableSample) and sample.id == "7" and sample.document.endswith("val/t1.png")
    t = sample.table
    assert t.shape == (2, 2) and t.header_rows == 1
    head = t.cell(0, 0)
    assert head is not None and (head.text, head.col_span, head.is_header) == ("Hd", 2, True)  # <b> dropped
    empty = t.cell(1, 1)
    assert empty is not None and empty.text == "" and empty.box is None
    assert [s.record for s in ds.skipped] == [2, 3]


def test_mcq_letters_and_indices(eval_files: Files) -> None:
    ds = load_dataset(eval_files.mcq, "mcq")
    assert [(s.id, s.answer) for s in ds.samples if isinstance(s, ChoiceSample)] == [("q1", 0), ("q2", 1)]
    assert [s.record for s in ds.skipped] == [3]


def test_table_from_html_spans() -> None:
    t = table_from_html("<table><tr><td rowspan='2'>a</td><td>b</td></tr><tr><td>c</td></tr></table>")
    assert t.shape == (2, 2)
    c = t.cell(1, 1)
    assert c is not None and c.text == "c"


def test_synthetic_dataset_and_limit() -> None:
    ds = synthetic_dataset("invoice", 2, seed=3)
    assert len(ds) == 2 and all(isinstance(s, FieldsSample) and s.content for s in ds.samples)
    first = ds.samples[0]
    assert isinstance(first, FieldsSample)
    from docvlm.synth import InvoiceFields, generate_dataset

    truth = next(generate_dataset("invoice", 1, seed=3))
    assert first.schema_type() is InvoiceFields
    assert first.truth() == {k: v.value for k, v in truth.fields.items()}
    assert len(load_dataset("table:3:1", "synthetic", limit=2)) == 2
    with pytest.raises(UsageError):
        synthetic_dataset("columns", 1)
    assert json.loads(first.model_dump_json())["kind"] == "fields"  # bytes stay out of the JSON


# the public files as they ship -------------------------------------------------------------------------------
def test_icdar2013_finds_the_pdf_by_the_xml_stem_not_the_filename_attribute(tmp_path: Path) -> None:
    # the real files say <document filename='bm_us-003-str.xml'>: the XML's own name in the competition's tool
    (tmp_path / "us-003.pdf").write_bytes(table_pdf())
    (tmp_path / "us-003-str.xml").write_text(icdar_xml("bm_us-003-str.xml", TEXTS))
    (sample,) = load_dataset(tmp_path, "icdar2013").samples
    assert isinstance(sample, TableSample) and Path(sample.document).name == "us-003.pdf"
    assert sample.table.grid() == TEXTS


def test_a_dataset_whose_every_record_is_skipped_raises(tmp_path: Path) -> None:
    (tmp_path / "us-004-str.xml").write_text(icdar_xml("bm_us-004-str.xml", TEXTS))  # no us-004.pdf
    with pytest.raises(DatasetError, match=r"every record was skipped \(1\); the first: no PDF us-004.pdf"):
        load_dataset(tmp_path, "icdar2013")


def camelot_files(root: Path) -> Path:
    """camelot's layout: data_tables.json, camelot_expected_tables.tsv and the PDFs in files/."""
    import pymupdf

    (root / "files").mkdir(parents=True)
    (root / "files" / "grid.pdf").write_bytes(table_pdf())
    doc = pymupdf.open(stream=table_pdf())
    (root / "files" / "locked.pdf").write_bytes(doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256,
                                                             user_pw="userpass", owner_pw="owner"))
    (root / "data_tables.json").write_text(json.dumps({"data_grid": TEXTS, "data_two": [["a", "b"]]}))
    rows = [
        "test_file\ttest_name\tpdf(s) (camelot/files/...)\texpected_data_var (camelot/gt_tests/data.py)\tflavor\tpages",
        "test_lattice.py\ttest_lattice\tgrid.pdf\tdata_grid\t\t",
        "test_stream.py\ttest_stream\tgrid.pdf\tdata_grid\tstream\t",  # the same PDF and table again: one sample
        "test_common.py\ttest_password\tlocked.pdf\tdata_grid\tstream\t",
        "test_lattice.py\ttest_lattice_us\ttabula/us-030.pdf\tdata_grid\t\t2",
        "test_network.py\ttest_two\tgrid.pdf\tdata_grid,data_missing\tnetwork\t1",
    ]
    (root / "camelot_expected_tables.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_camelot_expected_tables_as_shipped(tmp_path: Path) -> None:
    ds = load_dataset(camelot_files(tmp_path / "camelot"), "camelot")
    (sample,) = ds.samples
    assert isinstance(sample, TableSample) and sample.id == "grid/1/data_grid" and sample.page == 0
    assert sample.table.grid() == TEXTS and sample.table.header_rows == 0 and sample.region is None
    assert [(s.record, s.reason) for s in ds.skipped] == [
        ("test_password locked.pdf", "locked.pdf is encrypted"),
        ("test_lattice_us tabula/us-030.pdf", "the PDF 'tabula/us-030.pdf' is not in files/"),
        ("test_two grid.pdf data_missing", "no expected table 'data_missing' in data_tables.json"),
    ]


def test_realdev_icdar2013_eu_every_cell_box_holds_its_words() -> None:
    import docvlm as dv

    ds = load_dataset(realdev("icdar2013-eu"), "icdar2013")
    assert len(ds.samples) == 76 and len({s.document for s in ds.samples}) == 27
    assert [(Path(s.file).name, s.record) for s in ds.skipped] == [("eu-009b-str.xml", "document")]
    held = total = 0
    pages: dict[tuple[str, int], list[dv.Word]] = {}
    for s in ds.samples:
        assert isinstance(s, TableSample) and s.region is not None
        words = pages.setdefault((s.document, s.page), list(dv.open(s.document)[s.page].words()))
        for cell in s.table.cells:
            if not cell.text or cell.box is None:
                continue
            b = cell.box.pad(2)
            inside = "".join(w.text for w in words if b.x0 <= w.box.center[0] <= b.x1 and b.y0 <= w.box.center[1] <= b.y1)
            held += inside.lower() == "".join(cell.text.split()).lower()
            total += 1
    # boxes are bottom-left PDF points (turned pages: the displayed page) and land on the printed words
    assert total > 2500 and held / total >= 0.99


def test_realdev_camelot_and_pubtabnet_load_as_shipped() -> None:
    ds = load_dataset(realdev("tables-camelot"), "camelot")
    assert len(ds.samples) == 34
    assert ("test_password health_protected.pdf", "health_protected.pdf is encrypted") in [
        (s.record, s.reason) for s in ds.skipped]
    health = next(s for s in ds.samples if s.id == "health/1/data_stream")
    assert isinstance(health, TableSample) and health.table.shape == (29, 8)
    pub = load_dataset(realdev("pubtabnet-examples") / "PubTabNet_Examples.jsonl", "pubtabnet")
    assert len(pub.samples) == 20 and not pub.skipped
    first = next(s for s in pub.samples if "PMC1626454_002_00" in s.document)
    assert isinstance(first, TableSample) and first.table.shape == (9, 12) and first.table.header_rows == 2
    cell = first.table.cell(0, 1)
    assert cell is not None and (cell.text, cell.col_span, cell.is_header) == ("General Practitioners", 5, True)
