"""``docvlm eval`` writes results.jsonl, metrics.json and a self-contained report.html (the issue's done-when)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from docvlm.cli import app
from tests.eval import conftest as eval_conftest
from tests.eval.conftest import Files

runner = CliRunner()
eval_files = eval_conftest.eval_files  # the session fixture of tests/eval


def _outputs(out: Path) -> tuple[list[dict[str, object]], dict[str, object], str]:
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "report.html", "results.jsonl"]
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return results, json.loads((out / "metrics.json").read_text()), (out / "report.html").read_text()


def test_eval_tables_on_icdar2013_with_the_classical_path(eval_files: Files, tmp_path: Path) -> None:
    out = tmp_path / "report"
    res = runner.invoke(app, ["eval", "--task", "tables", "--data", str(eval_files.icdar), "--format", "icdar2013",
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    results, metrics, page = _outputs(out)
    assert json.loads(res.stdout) == metrics
    assert (metrics["samples"], metrics["failed"], metrics["skipped"], metrics["model"]) == (2, 0, 1, "none")
    m = metrics["metrics"]
    assert isinstance(m, dict)
    # us-001: the ruled grid is read exactly; us-002's truth misspells one cell ("abd" vs the printed "abc"):
    # rename cost NL = 1/3 in a 14-node tree (table, tbody, 3 tr, 9 td) -> TEDS 1 - 1/42; the mean is 1 - 1/84
    assert m["teds"] == pytest.approx(1 - 1 / 84, abs=1e-6)
    assert m["teds_struct"] == 1.0 and m["tables_found"] == 1.0 and m["cells_iou50"] == 1.0
    assert [r["id"] for r in results] == ["us-001/0.0", "us-002/0.0"]
    assert results[0]["scores"]["teds"] == 1.0 and results[1]["scores"]["teds"] == pytest.approx(1 - 1 / 42, abs=1e-6)
    assert len(results[0]["true_boxes"]) == 9 and len(results[0]["predicted_boxes"]) == 9
    # self-contained: the pages are inlined, the plots are inline SVG, the skipped record is listed
    assert page.count("src='data:image/png;base64,") == 2 and page.count("<svg") == 2
    assert "table 2 region 1" in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_eval_extract_on_funsd_with_the_test_model(eval_files: Files, tmp_path: Path) -> None:
    out = tmp_path / "funsd-report"
    res = runner.invoke(app, ["eval", "--task", "extract", "--data", str(eval_files.funsd), "--format", "funsd",
                              "--model", "test", "-o", str(out)])
    assert res.exit_code == 0, res.output
    results, metrics, page = _outputs(out)
    assert (metrics["samples"], metrics["skipped"], metrics["model"]) == (1, 2, "test")
    m = metrics["metrics"]
    assert isinstance(m, dict)
    assert m["fields_expected"] == 3  # three linked question -> answer pairs
    # whatever the seeded fake chose, the pooled numbers are the counts' ratios
    assert m["precision"] == (m["fields_correct"] / m["fields_predicted"] if m["fields_predicted"] else 0.0)
    assert m["recall"] == pytest.approx(m["fields_correct"] / 3)
    # "Acme" is not printed: extraction can only copy printed values, so at most 2 of 3 can be right
    assert m["fields_correct"] <= 2
    (row,) = results
    assert row["truth"] == {"name": "John Smith", "date": "2024-03-01", "company": "Acme"}
    assert set(row["prediction"]) == {"name", "date", "company"}
    assert "orphan.json" in page and "data:image/png;base64," in page


def test_eval_bad_input_is_one_line_exit_1_or_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["eval", "--task", "tables", "--data", str(tmp_path / "none"), "--format", "icdar2013"])
    assert res.exit_code == 1 and "no such file or folder" in res.stderr  # the data is missing: a failure
    res = runner.invoke(app, ["eval", "--task", "qa", "--data", "table:1", "--format", "synthetic", "--model", "test"])
    assert res.exit_code == 2 and "cannot use TableSample" in res.stderr  # a task that cannot read the format: usage


def test_eval_where_every_record_is_skipped_exits_non_zero(tmp_path: Path) -> None:
    from tests.eval.conftest import TEXTS, icdar_xml

    (tmp_path / "us-009-str.xml").write_text(icdar_xml("bm_us-009-str.xml", TEXTS))  # its PDF is missing
    res = runner.invoke(app, ["eval", "--task", "tables", "--data", str(tmp_path), "--format", "icdar2013",
                              "-o", str(tmp_path / "out")])
    assert res.exit_code == 1 and "every record was skipped" in res.stderr and "us-009.pdf" in res.stderr
