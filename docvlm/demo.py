"""``docvlm demo``: the main job, offline.

A generated invoice (born-digital PDF) and a scan of it (rendered, slightly rotated, noisy: no text layer, read
by OCR) are turned into a typed `DemoInvoice` (fields and line items) by a model (the offline default,
SmolLM2-135M-Instruct, unless ``--model`` says otherwise). Every field's evidence box is drawn on the page in a
self-contained HTML report, and the JSON is printed.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import time
import warnings
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console

from docvlm import samples
from docvlm.documents import open_document
from docvlm.errors import DocVLMWarning

__all__ = ["DemoInvoice", "LineItem", "run", "scan_pdf_page"]


class LineItem(BaseModel):
    """One row of the invoice's line-item table."""

    description: str
    quantity: int
    unit_price: float
    amount: float


class DemoInvoice(BaseModel):
    """What the demo extracts."""

    vendor: str = Field(description="the company that issued the invoice")
    invoice_number: str
    date: dt.date
    customer: str = Field(description="who the invoice is billed to")
    tax: float | None = None
    total: float
    items: list[LineItem] = []


def scan_pdf_page(pdf: bytes, *, dpi: int = 200, angle: float = 0.6, seed: int = 0) -> bytes:
    """A PNG 'scan' of the first page: rendered at ``dpi``, rotated by ``angle`` degrees, with noise."""
    import numpy as np
    from PIL import Image

    with open_document(pdf) as doc:
        image = doc[0].render(dpi=dpi).image
    rotated = image.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=(255, 255, 255))
    rng = np.random.default_rng(seed)
    pixels = np.asarray(rotated, dtype=np.float32) + rng.normal(0, 6, (rotated.height, rotated.width, 1))
    noisy = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    noisy.save(buf, format="PNG", dpi=(dpi, dpi))
    return buf.getvalue()


def _png_data_url(image: Any) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _section(title: str, path: Path, result: Any, page: Any, seconds: float, notes: list[str]) -> str:
    from docvlm.draw import draw

    drawn = draw(page, result, dpi=90)
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(ev.value))}</td><td>{html.escape(ev.quote or '')}</td>"
        f"<td>{ev.page}</td><td>{', '.join(f'{v:.1f}' for v in ev.box.xyxy) if ev.box else ''}</td></tr>"
        for k, ev in result.evidence.items()
    )
    value = html.escape(result.value.model_dump_json(indent=2))
    return (
        f"<section><h2>{html.escape(title)}</h2><p>{html.escape(str(path))} — extracted in {seconds:.1f} s by "
        f"<code>{html.escape(result.model)}</code></p>"
        + "".join(f"<p class='warn'>warning: {html.escape(n)}</p>" for n in notes)
        + f"<div class='row'><img src='{_png_data_url(drawn.image)}'>"
        f"<div><pre>{value}</pre><table><tr><th>field</th><th>value</th><th>quote</th><th>page</th>"
        f"<th>box (page space)</th></tr>{rows}</table></div></div></section>"
    )


def run(out: Path, console: Console | None = None, model: Any = "default") -> dict[str, Any]:
    """Run the demo, writing into ``out``; return the summary that is also written to ``summary.json``."""
    from docvlm.models import load_model
    from docvlm.tasks.extract import extract

    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    pdf_path, scan_path = out / "invoice.pdf", out / "invoice-scan.png"
    pdf = samples.invoice_pdf()
    pdf_path.write_bytes(pdf)
    scan_path.write_bytes(scan_pdf_page(pdf, seed=6))
    console.print(f"documents: [bold]{pdf_path}[/] (born-digital) and [bold]{scan_path}[/] (a scan: OCR)")
    with console.status("loading the model (the first run converts the default model once, about a minute)"):
        started = time.perf_counter()
        m = load_model(model)
    console.print(f"model [bold]{m.spec}[/] loaded in {time.perf_counter() - started:.1f} s")
    summary: dict[str, Any] = {"model": m.spec, "documents": {}}
    sections = []
    for title, path in (("Born-digital PDF", pdf_path), ("Scanned image (OCR)", scan_path)):
        with open_document(path) as doc:
            with console.status(f"extracting from {path.name}"), warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DocVLMWarning)
                started = time.perf_counter()
                result = extract(m, doc, DemoInvoice)
                seconds = time.perf_counter() - started
            notes = [str(w.message) for w in caught if issubclass(w.category, DocVLMWarning)]
            console.print(f"[bold]{title}[/] ({seconds:.1f} s):")
            console.print_json(result.value.model_dump_json())
            for note in notes:  # e.g. a line item whose quantity OCR could not read: said, not guessed
                console.print(f"[yellow]warning:[/] {note}")
            summary["documents"][str(path)] = {**json.loads(result.model_dump_json()), "warnings": notes}
            sections.append(_section(title, path, result, doc[0], seconds, notes))
    report = out / "report.html"
    report.write_text(
        "<!doctype html><meta charset='utf-8'><title>docvlm demo</title><style>body{font-family:sans-serif;"
        "margin:2em}.row{display:flex;gap:2em;align-items:flex-start}img{border:1px solid #ccc;max-width:55%}"
        "td,th{border-bottom:1px solid #eee;padding:2px 8px;font-size:13px;text-align:left}"
        "pre{background:#f6f6f6;padding:1em}.warn{color:#a15c00}</style><h1>docvlm demo: typed extraction with evidence</h1>"
        + "".join(sections)
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"report with every field's evidence box drawn: [bold]{report}[/]")
    summary["report"] = str(report)
    return summary
