"""What a workflow did, step by step: tool, arguments, result, timing and images; written as one HTML page.

Examples:
    >>> import docvlm as dv
    >>> from docvlm.workflows import TracedToolbox
    >>> box = TracedToolbox(dv.open(dv.samples.invoice_pdf()))
    >>> _ = box.call("zoom", {"page": 0, "box": {"x0": 300, "y0": 380, "x1": 560, "y1": 420}})
    >>> _ = box.call("read_text", {"page": 9})
    >>> [(s.tool, s.images, s.error is not None) for s in box.trace.steps]
    [('zoom', ['crop-1'], False), ('read_text', [], True)]

A [`TracedToolbox`][docvlm.workflows.trace.TracedToolbox] is a [`Toolbox`][docvlm.workflows.tools.Toolbox] whose every call is recorded in
its `trace`; agents and pipelines run on one, and so can a LangChain agent
(``docvlm.integrations.langchain.tools(TracedToolbox(doc))``). A [`Trace`][docvlm.workflows.trace.Trace] is JSON (images are
referenced by artifact id, never embedded); [`Trace.to_html`][docvlm.workflows.trace.Trace.to_html] writes a self-contained page with
each step's images inlined and its boxes drawn on the page.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, PrivateAttr

from docvlm.documents import Document, PageImage, Source
from docvlm.models import Model
from docvlm.types import Answer, BoundingBox
from docvlm.workflows.tools import (
    GroundResult,
    ImageArtifact,
    TablesResult,
    TextResult,
    Toolbox,
    ToolError,
    ToolResult,
)

if TYPE_CHECKING:
    from PIL import Image

__all__ = ["Region", "Step", "Trace", "TracedToolbox"]


class Region(BaseModel):
    """A page-space box a step looked at or found, with what it is (``"zoom"``, ``"found"``, ``"table"``, a quote)."""

    page: int
    box: BoundingBox
    label: str = ""


class Step(BaseModel):
    """One tool call.

    Attributes:
        index: 0-based position in the trace.
        tool: the tool's name (``"invalid_call"`` for a model output that was not a valid call).
        arguments: the arguments as given.
        text: the observation the caller (a model) was shown.
        error: the error message when the call failed (the observation then starts with ``error:``).
        result: the typed result as JSON (``None`` for an error).
        regions: page-space boxes the step looked at (a zoom region, a read region) or found (grounded
            boxes, tables, citations).
        images: ids of the images the step made, in `Toolbox.artifacts`.
        started: seconds from the start of the trace to the start of the call.
        seconds: how long the tool ran.
        model_seconds: how long the model took to choose this call (agent runs only; ``None`` for a call the
            workflow made itself, such as an agent's opening read).
        note: why the workflow made a call itself, when it did.
    """

    index: int
    tool: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    text: str
    error: str | None = None
    result: Any = None
    regions: list[Region] = Field(default_factory=list)
    images: list[str] = Field(default_factory=list)
    started: float = 0.0
    seconds: float = 0.0
    model_seconds: float | None = None
    note: str | None = None


class Trace(BaseModel):
    """The steps of a workflow run, in order.

    Attributes:
        task: the task an agent was given (``None`` for a pipeline).
        model: the spec of the model that chose the calls, if any.
        source: the document's source (path or a short description).
        steps: the recorded calls.
        outcome: how the run ended: ``"answered"``, ``"steps"`` / ``"time"`` (a budget ran out), or ``None``.
    """

    task: str | None = None
    model: str | None = None
    source: str | None = None
    steps: list[Step] = Field(default_factory=list)
    outcome: str | None = None
    _toolbox: Toolbox | None = PrivateAttr(default=None)
    _t0: float = PrivateAttr(default_factory=time.perf_counter)

    def bind(self, toolbox: Toolbox) -> Trace:
        """Keep ``toolbox`` (its document and images) for [`to_html`][docvlm.workflows.trace.Trace.to_html]; returns the trace."""
        self._toolbox = toolbox
        if self.source is None:
            self.source = toolbox.document.source
        return self

    def elapsed(self) -> float:
        """Seconds since the trace began."""
        return time.perf_counter() - self._t0

    def record(self, result: ToolResult[Any], arguments: dict[str, Any] | BaseModel | None, *, started: float,
               seconds: float, model_seconds: float | None = None) -> Step:
        """Append the step of one finished call (``started`` from [`elapsed`][docvlm.workflows.trace.Trace.elapsed]) and return it."""
        args = arguments.model_dump(mode="json") if isinstance(arguments, BaseModel) else dict(arguments or {})
        payload = result.payload
        error = payload.message if isinstance(payload, ToolError) else None
        images = [a for a in result.artifacts if self._is_image(a)]
        step = Step(
            index=len(self.steps), tool=result.tool, arguments=_jsonable(args), text=result.text, error=error,
            result=None if error is not None else _dump(payload), regions=_regions(result.tool, args, payload),
            images=images, started=round(started, 4), seconds=round(seconds, 4),
            model_seconds=None if model_seconds is None else round(model_seconds, 4),
        )
        self.steps.append(step)
        return step

    def record_error(self, tool: str, arguments: dict[str, Any], message: str, *, started: float,
                     model_seconds: float | None = None) -> Step:
        """Append a step that never reached a tool (an invalid model output, a spent image budget)."""
        step = Step(index=len(self.steps), tool=tool, arguments=_jsonable(arguments), text=f"error: {message}",
                    error=message, started=round(started, 4),
                    model_seconds=None if model_seconds is None else round(model_seconds, 4))
        self.steps.append(step)
        return step

    def _is_image(self, artifact_id: str) -> bool:
        box = self._toolbox
        return box is not None and isinstance(box.artifacts.get(artifact_id), PageImage)

    # HTML --------------------------------------------------------------------------------------

    def to_html(self, path: str | Path, *, answer: Answer | None = None, document: Document | None = None,
                dpi: float = 60, title: str | None = None) -> Path:
        """Write the trace as one self-contained HTML file (images inlined as data URIs) and return its path.

        Each step shows its tool, arguments, observation and timing; the images it made (renders, crops), and
        the page with its regions drawn. ``answer`` adds the final answer with its citations drawn.

        Args:
            path: the file to write.
            answer: the final answer, if any.
            document: the document to draw regions on, for a trace read back from JSON (by default the
                document of the toolbox the trace was recorded on).
            dpi: resolution of the page images the regions are drawn on.
            title: the page title (default: the task, or "docvlm trace").
        """
        box = self._toolbox
        doc = document if document is not None else (box.document if box is not None else None)
        pages: dict[int, PageImage] = {}

        def page_image(index: int) -> PageImage | None:
            if doc is None or not 0 <= index < len(doc):
                return None
            if index not in pages:
                pages[index] = doc[index].render(dpi=dpi)
            return pages[index]

        def drawn(regions: Sequence[Region]) -> list[str]:
            from docvlm.draw import draw
            from docvlm.types import Detection, Detections

            out = []
            for index in sorted({r.page for r in regions}):
                base = page_image(index)
                if base is None:
                    continue
                found = Detections(detections=[Detection(label=r.label or "region", box=r.box)
                                               for r in regions if r.page == index])
                out.append(_img(draw(base, found).image, f"page {index} with the step's boxes"))
            return out

        name = title or self.task or "docvlm trace"
        parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(name)}</title>",
                 f"<style>{_CSS}</style></head><body>", f"<h1>{_e(name)}</h1>"]
        facts = [("document", self.source), ("model", self.model), ("outcome", self.outcome),
                 ("steps", str(len(self.steps)))]
        parts.append("<dl>" + "".join(f"<dt>{k}</dt><dd>{_e(v)}</dd>" for k, v in facts if v is not None) + "</dl>")
        for step in self.steps:
            cls = "step error" if step.error is not None else "step"
            timing = f"{step.seconds:.2f} s" + ("" if step.model_seconds is None else f", model {step.model_seconds:.2f} s")
            parts.append(f"<section class='{cls}' id='step-{step.index}'><h2>{step.index + 1}. "
                         f"<code class='tool'>{_e(step.tool)}</code> <small>at {step.started:.2f} s, {timing}</small></h2>")
            if step.note:
                parts.append(f"<p class='note'>{_e(step.note)}</p>")
            parts.append(f"<pre class='args'>{_e(json.dumps(step.arguments, ensure_ascii=False))}</pre>")
            parts.append(f"<pre class='obs'>{_e(step.text)}</pre>")
            figures = []
            for aid in step.images:
                found = box.artifacts.get(aid) if box is not None else None
                if isinstance(found, PageImage):
                    figures.append(_img(found.image, f"{aid}: page {found.page_index}"))
                else:
                    figures.append(f"<p class='missing'>image {_e(aid)} was not kept</p>")
            figures += drawn(step.regions)
            if figures:
                parts.append("<div class='figures'>" + "".join(figures) + "</div>")
            parts.append("</section>")
        if answer is not None:
            parts.append(f"<section class='answer'><h2>Answer</h2><p>{_e(answer.text)}</p><ul>")
            parts += [f"<li>page {c.page} [{', '.join(f'{v:g}' for v in c.box.xyxy)}] {_e(c.quote)}</li>"
                      for c in answer.citations]
            parts.append("</ul>")
            cited = [Region(page=c.page, box=c.box, label=c.quote[:30] or "cited") for c in answer.citations]
            figures = drawn(cited)
            if figures:
                parts.append("<div class='figures'>" + "".join(figures) + "</div>")
            parts.append("</section>")
        parts.append("</body></html>")
        target = Path(path)
        target.write_text("\n".join(parts), encoding="utf-8")
        return target


class TracedToolbox(Toolbox):
    """A [`Toolbox`][docvlm.workflows.tools.Toolbox] that records every call in [`trace`][docvlm.workflows.trace].

    Args:
        document: the document, or a source to open.
        model: a model for the tools that need one (``ground``).
        trace: a trace to append to (default: a new one).
    """

    def __init__(self, document: Document | Source, model: Model | None = None, *, trace: Trace | None = None) -> None:
        super().__init__(document, model)
        self.trace = (trace or Trace(model=model.spec if model is not None else None)).bind(self)
        self.model_seconds: float | None = None

    def call(self, name: str, args: dict[str, Any] | BaseModel | None = None) -> ToolResult[Any]:
        """Run and record one call; `model_seconds`, if set, is recorded with it and then cleared."""
        started = self.trace.elapsed()
        t0 = time.perf_counter()
        result = super().call(name, args)
        self.trace.record(result, args, started=started, seconds=time.perf_counter() - t0,
                          model_seconds=self.model_seconds)
        self.model_seconds = None
        return result


# helpers ---------------------------------------------------------------------------------------------


def _jsonable(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return out


def _dump(payload: Any) -> Any:
    return payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload


def _regions(tool: str, args: dict[str, Any], payload: Any) -> list[Region]:
    """The page-space boxes a result carries (known result types of the toolbox and the pipelines' tools)."""
    if isinstance(payload, ImageArtifact):
        return [] if tool == "render_page" else [Region(page=payload.page, box=payload.box.to_bbox(), label=tool)]
    if isinstance(payload, TextResult):
        return [] if payload.box is None else [Region(page=payload.page, box=payload.box.to_bbox(), label="read")]
    if isinstance(payload, GroundResult):
        return [Region(page=payload.page, box=b.to_bbox(), label=payload.phrase[:30]) for b in payload.boxes]
    if isinstance(payload, TablesResult):
        return [Region(page=t.page, box=t.box.to_bbox(), label=t.id) for t in payload.tables if t.box is not None]
    if isinstance(payload, Answer):
        return [Region(page=c.page, box=c.box, label=c.quote[:30] or "cited") for c in payload.citations]
    regions = getattr(payload, "trace_regions", None)
    if callable(regions):  # a custom result that knows its boxes: a trace_regions() -> list[Region] method
        found = regions()
        if isinstance(found, list) and all(isinstance(r, Region) for r in found):
            return found
    return []


def _e(text: str | None) -> str:
    return html.escape(text or "")


def _img(image: Image.Image, alt: str, *, max_side: int = 1100) -> str:
    picture = image.convert("RGB")
    if max(picture.size) > max_side:
        scale = max_side / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=80)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f"<figure><img src='data:image/jpeg;base64,{data}' alt='{_e(alt)}'><figcaption>{_e(alt)}</figcaption></figure>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1200px;color:#222}
h1{font-size:1.4em} h2{font-size:1.05em;margin:.2em 0} small{color:#777;font-weight:normal}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em} dt{color:#777}
section{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
section.error{border-color:#e0a0a0;background:#fff6f6} section.answer{border-color:#8c8;background:#f6fff6}
pre{white-space:pre-wrap;margin:.3em 0;padding:.4em;background:#f6f6f6;border-radius:4px;font-size:.85em}
pre.args{background:#eef3fb} p.note{color:#555;font-style:italic;margin:.2em 0}
.figures{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0} img{max-width:560px;border:1px solid #ccc}
figcaption{font-size:.8em;color:#666}
"""
