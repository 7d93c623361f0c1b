"""``docvlm demo``: the main job, offline. Today: open a generated invoice and show pages, words and tables."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table as RichTable

from docvlm import samples
from docvlm.documents import open_document
from docvlm.tasks.tables import find_tables

__all__ = ["run"]


def run(out: Path, console: Console | None = None) -> dict[str, object]:
    """Write the sample invoice and its rendering to ``out`` and print what docvlm sees; return a summary."""
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    pdf_path = out / "invoice.pdf"
    pdf_path.write_bytes(samples.invoice_pdf())
    summary: dict[str, object] = {"document": str(pdf_path)}
    with open_document(pdf_path) as doc:
        info = doc.info()
        console.print(f"[bold]{pdf_path}[/]: {info.page_count} page(s), format {info.format}")
        pages = []
        for page in doc:
            image = page.render()
            png = out / f"page-{page.index + 1:04d}.png"
            image.to_png(png)
            words = page.words()
            console.print(
                f"page {page.index}: {page.width:g} x {page.height:g} {page.units}, rotation {page.rotation}, "
                f"{len(words)} words, rendered {image.width} x {image.height} px -> {png}"
            )
            grid = RichTable(title=f"first words of page {page.index} (page space, {page.units})")
            for col in ("text", "x0", "y0", "x1", "y1"):
                grid.add_column(col)
            for w in words[:8]:
                grid.add_row(w.text, *(f"{v:.1f}" for v in w.box.xyxy))
            console.print(grid)
            tables = find_tables(page)
            for t in tables:
                console.print(f"table on page {page.index}, {t.shape[0]} x {t.shape[1]}:")
                console.print(t.to_markdown())
            pages.append({"index": page.index, "words": len(words), "tables": [t.to_markdown() for t in tables], "png": str(png)})
        summary["pages"] = pages
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
