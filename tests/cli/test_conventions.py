"""CLI conventions: exit 1 for failures and 2 for usage errors, one line for every user error (broken schema files
included), one JSON shape for boxes, ``--budget`` on ``agent``, and a demo that leaves the working folder alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import docvlm as dv
from docvlm import cli
from docvlm.errors import UsageError
from docvlm.schemas import load_schema

runner = CliRunner()


@pytest.fixture
def invoice(tmp_path: Path) -> Path:
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(dv.samples.invoice_pdf())
    return pdf


GOOD = "from pydantic import BaseModel\n\nclass Invoice(BaseModel):\n    invoice_number: str | None = None\n"


@pytest.mark.parametrize(
    ("source", "spec", "message"),
    [
        (GOOD, "{file}:BaseModel", "is pydantic's BaseModel itself, not a schema (name your model class, e.g. {file}:Invoice)"),
        (GOOD, "{file}:Invoce", "no class 'Invoce' in {file} (its pydantic models: Invoice)"),
        (GOOD, "{file}:BaseModel.x", "no class 'BaseModel.x' in {file}"),
        (GOOD, "{file}", "bad schema '{file}' (write module:Class or path/to/file.py:Class)"),
        (GOOD, "{dir}/missing.py:Invoice", "no schema file '{dir}/missing.py'"),
        ("class Invoice(BaseModel:\n    pass\n", "{file}:Invoice", "syntax error in the schema file {file}, line 1: "),
        ("from pydantic import BaseModel\nx = 1\nraise RuntimeError('boom')\n", "{file}:Invoice",
         "the schema file {file} failed at line 3: RuntimeError: boom"),
        ("import not_a_module_anywhere\n", "{file}:Invoice", "ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
        ("from pydantic import BaseModel\nInvoice = 3\n", "{file}:Invoice", "is a int, not a pydantic model class"),
        ("from pydantic import BaseModel\nclass Invoice(BaseModel):\n    pass\n", "{file}:Invoice", "has no fields to extract"),
        ("", "not_a_module_anywhere.sub:Invoice", "no module 'not_a_module_anywhere.sub' to load the schema from"),
    ],
)
def test_every_broken_schema_is_one_usage_error(tmp_path: Path, invoice: Path, source: str, spec: str,
                                                message: str) -> None:
    schema = tmp_path / "schema.py"
    schema.write_text(source)
    spec = spec.format(file=schema, dir=tmp_path)
    with pytest.raises(UsageError) as caught:
        load_schema(spec)
    assert message.format(file=schema, dir=tmp_path) in str(caught.value)
    res = runner.invoke(cli.app, ["extract", str(invoice), "--schema", spec, "--model", "test"])
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert res.stderr.splitlines() == [f"docvlm: error: {caught.value}"]


def test_a_broken_schema_file_is_one_line_from_the_installed_command(tmp_path: Path, invoice: Path) -> None:
    schema = tmp_path / "schema.py"
    schema.write_text("class Invoice(BaseModel:\n    pass\n")
    res = subprocess.run([sys.executable, "-m", "docvlm", "extract", str(invoice), "--schema", f"{schema}:Invoice"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert (res.returncode, res.stdout) == (2, "")
    (line,) = res.stderr.splitlines()  # the syntax error's wording depends on the Python version
    assert line.startswith(f"docvlm: error: syntax error in the schema file {schema}, line 1: ")


def test_the_same_schema_file_loads_under_the_same_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batch records name the schema by module and class, and a resumed run compares them: loading the same file
    again (by a relative or an absolute path) must give the same name."""
    (tmp_path / "totals_schema.py").write_text(GOOD)
    monkeypatch.chdir(tmp_path)
    first = load_schema("totals_schema.py:Invoice")
    again = load_schema(f"{tmp_path / 'totals_schema.py'}:Invoice")
    assert f"{first.__module__}.{first.__qualname__}" == f"{again.__module__}.{again.__qualname__}" == "totals_schema.Invoice"


def test_a_schema_file_named_like_a_module_does_not_shadow_it(tmp_path: Path) -> None:
    schema = tmp_path / "json.py"
    schema.write_text(GOOD)
    assert load_schema(f"{schema}:Invoice").model_fields.keys() == {"invoice_number"}
    assert json.dumps({"a": 1}) == '{"a": 1}'  # the standard library's json is still json


def test_runtime_failures_exit_1_usage_errors_exit_2(invoice: Path, tmp_path: Path) -> None:
    res = runner.invoke(cli.app, ["ask", str(invoice), "total?", "--model", "openai:m@http://127.0.0.1:9/v1"])
    assert res.exit_code == 1 and res.stderr.startswith("docvlm: error: cannot connect to http://127.0.0.1:9/v1")
    assert len(res.stderr.splitlines()) == 1
    res = runner.invoke(cli.app, ["ask", str(invoice), "total?", "--model", "nonsense:"])
    assert res.exit_code == 2 and "unknown model spec 'nonsense:'" in res.stderr
    res = runner.invoke(cli.app, ["words", str(invoice), "--pages", "0"])
    assert res.exit_code == 2
    res = runner.invoke(cli.app, ["words"])  # click's own usage error
    assert res.exit_code == 2


def _boxes(obj: object) -> list[dict[str, object]]:
    if isinstance(obj, dict):
        if {"x0", "y0", "x1", "y1"} <= obj.keys():
            return [obj]
        return [b for v in obj.values() for b in _boxes(v)]
    if isinstance(obj, list):
        return [b for v in obj for b in _boxes(v)]
    return []


def test_one_box_shape_in_every_command(invoice: Path, tmp_path: Path) -> None:
    schema = tmp_path / "schema.py"
    schema.write_text("from pydantic import BaseModel\nclass Inv(BaseModel):\n    total: float | None = None\n"
                      "    invoice_number: str | None = None\n")
    outputs = {
        "words": runner.invoke(cli.app, ["words", str(invoice)]),
        "tables": runner.invoke(cli.app, ["tables", str(invoice)]),
        "extract": runner.invoke(cli.app, ["extract", str(invoice), "--schema", f"{schema}:Inv", "--model", "test:1"]),
        "ground": runner.invoke(cli.app, ["ground", str(invoice), "the total", "--model", "test:5"]),
        "detect": runner.invoke(cli.app, ["detect", str(invoice), "--labels", "logo", "--model", "test:5"]),
        "ask": runner.invoke(cli.app, ["ask", str(invoice), "What is the total?", "--model", "test"]),
    }
    shapes = {}
    for name, res in outputs.items():
        assert res.exit_code == 0, (name, res.output)
        text = res.stdout
        docs = [json.loads(line) for line in text.splitlines()] if name in ("words", "tables", "ground", "detect") \
            else [json.loads(text)]
        boxes = _boxes(docs)
        assert boxes, name
        for box in boxes:
            assert list(box) == ["space", "image_size", "x0", "y0", "x1", "y1"], (name, box)
            assert box["space"] == "page"
            assert all(isinstance(box[k], (int, float)) and round(box[k], 3) == box[k]  # type: ignore[call-overload]
                       for k in ("x0", "y0", "x1", "y1")), (name, box)
        shapes[name] = len(boxes)
    assert shapes["words"] > 40 and shapes["tables"] > 16 and shapes["extract"] == 2


def test_agent_has_a_budget(invoice: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}

    class Spy(dv.workflows.Agent):
        def __init__(self, model: dv.Model, **kwargs: object) -> None:
            seen.update(kwargs)
            super().__init__(model, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(dv.workflows, "Agent", Spy)
    res = runner.invoke(cli.app, ["agent", str(invoice), "total?", "--model", "test", "--budget", "0.000001"])
    assert seen["budget"] == 0.000001
    assert res.exit_code == 1 and "ran out of its 1e-06 s budget" in res.stderr
    runner.invoke(cli.app, ["agent", str(invoice), "total?", "--model", "test", "--budget", "0"])
    assert seen["budget"] is None  # 0: no limit
    res = runner.invoke(cli.app, ["agent", str(invoice), "total?", "--model", "test", "--budget", "-1"])
    assert res.exit_code == 2 and "budget must be a positive number of seconds" in res.stderr


def test_the_demo_writes_into_a_new_folder_not_the_working_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the files go (the demo itself runs in tests/cli/test_cli.py::test_demo)."""
    import tempfile

    from docvlm import demo

    folders: list[Path] = []

    def fake_run(out: Path, console: object = None, model: object = "default") -> dict[str, str]:
        folders.append(out)
        out.mkdir(exist_ok=True)
        (out / "report.html").write_text("<p>")
        return {}

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(demo, "run", fake_run)
    assert runner.invoke(cli.app, ["demo"]).exit_code == 0
    assert list(work.iterdir()) == []
    (folder,) = tmp_path.glob("docvlm-demo-*")
    assert folders == [folder] and (folder / "report.html").exists()
    assert runner.invoke(cli.app, ["demo", "-o", str(tmp_path / "given")]).exit_code == 0
    assert folders[-1] == tmp_path / "given"
