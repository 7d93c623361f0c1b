"""docvlm.integrations.ray on a local Ray instance: the records of ``docvlm batch``, JSON lines and Parquet."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray.data")
# Ray's own modules warn about their own deprecated settings when a DataContext is created
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*", "ignore::FutureWarning:ray.*",
                                        "ignore::UserWarning:ray.*")

from docvlm.batch import read_records, run_batch  # noqa: E402
from docvlm.integrations import ray as dv_ray  # noqa: E402
from docvlm.synth import generate_dataset  # noqa: E402

SCHEMA = '''
from pydantic import BaseModel


class Loose(BaseModel):
    invoice_number: str | None = None
    total: float | None = None
'''


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    import pymupdf

    root = tmp_path_factory.mktemp("ray-docs")
    docs = root / "docs"
    docs.mkdir()
    for i, doc in enumerate(generate_dataset("invoice", 5, 11)):
        (docs / f"invoice-{i}.pdf").write_bytes(doc.pdf)
    shutil.copy(docs / "invoice-0.pdf", docs / "copy-of-0.pdf")  # same content: one record only
    (docs / "bad.pdf").write_bytes(b"%PDF-1.7\nnot a pdf")
    merged = pymupdf.open()
    for doc in generate_dataset("invoice", 3, 12):
        with pymupdf.open(stream=doc.pdf, filetype="pdf") as one:
            merged.insert_pdf(one, to_page=0)
    merged.save(docs / "three-pages.pdf")
    merged.close()
    schema_file = root / "ray_schema.py"
    schema_file.write_text(SCHEMA)
    return docs, f"{schema_file}:Loose"


def _shape(record: dict[str, Any]) -> tuple[Any, ...]:
    """What must agree between two runs (values come from a seeded fake model, so they may differ)."""
    return (record["source"], record["sha256"], record["task"], record["model"], record["schema"],
            record.get("page", "-"), record["status"], (record["error"] or {}).get("type"),
            sorted(record["value"] or {}), sorted(record))


def test_jsonl_records_match_docvlm_batch_and_resume(local_ray: None, corpus: tuple[Path, str],
                                                      tmp_path: Path) -> None:
    docs, schema = corpus
    ray_out, batch_out = tmp_path / "ray.jsonl", tmp_path / "batch.jsonl"
    summary = dv_ray.run([docs], schema=schema, model="test", output=ray_out, concurrency=2, num_cpus=0.5)
    reference = run_batch([docs], schema=schema, model="test", output=batch_out, workers=2)
    assert (summary.done, summary.failed, summary.skipped) == (reference.done, reference.failed, reference.skipped)
    assert (summary.done, summary.failed, summary.skipped) == (6, 1, 1)
    ray_records = list(read_records(ray_out))
    assert sorted(map(_shape, ray_records)) == sorted(map(_shape, read_records(batch_out)))
    bad = next(r for r in ray_records if r["source"].endswith("bad.pdf"))
    assert bad["error"]["type"] == "CorruptDocumentError" and str(docs / "bad.pdf") in bad["source"]
    for r in ray_records:
        if r["status"] == "ok":
            assert all(ev["quote"] for ev in r["evidence"].values())

    again = dv_ray.run([docs], schema=schema, model="test", output=ray_out, concurrency=2, num_cpus=0.5)
    assert (again.done, again.failed, again.skipped) == (0, 0, 8)  # every file, the copy too
    assert len(list(read_records(ray_out))) == 7


def test_parquet_per_page(local_ray: None, corpus: tuple[Path, str], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    docs, schema = corpus
    out = tmp_path / "pages.parquet"
    summary = dv_ray.run([docs / "three-pages.pdf", docs / "bad.pdf"], schema=schema, model="test",
                         output=out, per="page", concurrency=1)
    assert (summary.done, summary.failed) == (3, 1)
    table = pq.read_table(out)
    assert table.num_rows == 4
    assert set(table.column_names) == {"source", "sha256", "page", "status", "record"}
    rows = table.to_pylist()
    pages = sorted(r["page"] for r in rows if r["status"] == "ok")
    assert pages == [0, 1, 2]
    for row in rows:
        record = json.loads(row["record"])
        assert (record["page"], record["status"], record["sha256"]) == (row["page"], row["status"], row["sha256"])
        assert record["schema"] == "ray_schema.Loose"
