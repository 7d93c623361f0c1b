"""OCR: words with boxes in page space for pages that have no text layer (scans, photos, image files).

Two engines, both optional and found at run time:

- ``tesseract``: the Tesseract command-line program (``apt-get install tesseract-ocr tesseract-ocr-eng``),
  called once per page with TSV output; word boxes come from Tesseract itself.
- ``rapidocr``: the RapidOCR package with its bundled PP-OCR ONNX models (``pip install rapidocr onnxruntime``).
  It detects *lines*; words get the engine's own word boxes when it gives them, otherwise the line box is
  split by character count, so rapidocr word boxes are approximate.

``engine="auto"`` picks Tesseract when it is on ``PATH``, else RapidOCR when it imports.

>>> import docvlm as dv
>>> from docvlm.documents.ocr import ocr_words
>>> page = dv.open("scan.png")[0]                      # doctest: +SKIP
>>> words = ocr_words(page)                            # doctest: +SKIP
>>> words[0].box.space, words.confidences[0]           # doctest: +SKIP
(<Space.PAGE: 'page'>, 96.5)

Boxes are in page space: the pixel boxes of the rendering are converted through its
[`Frame`][docvlm.types.geometry.Frame], so rotated PDF pages, crops and image pages come out exact.
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
import unicodedata
from collections.abc import Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, overload

from docvlm import _deadline
from docvlm._threads import ocr_threads, threads_for
from docvlm.documents._pixels import fit_scale, pixels_at
from docvlm.errors import MissingDependencyError, ModelError, UsageError
from docvlm.limits import get_limits
from docvlm.types.geometry import BoundingBox, Frame, Space
from docvlm.types.image import PageImage
from docvlm.types.text import Word, WordList, WordRow

if TYPE_CHECKING:
    from PIL import Image


class Renderable(Protocol):
    """What OCR needs of a page: its units and bounds, and a rendering (a [`Page`][docvlm.documents.base.Page] is one)."""

    @property
    def units(self) -> str: ...

    @property
    def units_per_inch(self) -> float: ...

    @property
    def bbox(self) -> BoundingBox: ...

    def render(self, dpi: float | None = None, *, max_pixels: int | None = None) -> PageImage: ...

__all__ = ["DEFAULT_OCR_DPI", "RAPIDOCR_DPI", "RAPIDOCR_SETTINGS", "OCREngine", "OCRWordList", "Renderable", "available_engines",
           "ocr_words"]

#: Resolution PDF pages are rendered at for OCR with Tesseract (most accurate around 300 dpi).
DEFAULT_OCR_DPI = 300.0
#: ... and with RapidOCR, whose detector works on at most 2,000 pixels (a Letter page at 200 dpi is 2,200 high).
RAPIDOCR_DPI = 200.0

_INSTALL_HINT = (
    "install Tesseract (apt-get install tesseract-ocr tesseract-ocr-eng) "
    "or RapidOCR (pip install rapidocr onnxruntime)"
)


class OCREngine(str, Enum):
    """Which OCR engine `ocr_words` runs."""

    AUTO = "auto"
    TESSERACT = "tesseract"
    RAPIDOCR = "rapidocr"


class OCRWordList(WordList):
    """A [`WordList`][docvlm.types.text.WordList] from OCR, with one confidence per word.

    Attributes:
        engine: the engine that read the words (``"tesseract"`` or ``"rapidocr"``).
        dpi: resolution of the image that was read.
    """

    __slots__ = ("_confidences", "dpi", "engine")

    def __init__(self, rows: Sequence[WordRow], page: int, confidences: Sequence[float], *, engine: str,
                 dpi: float) -> None:
        super().__init__(rows, page)
        if len(confidences) != len(self._rows):
            raise UsageError(f"{len(confidences)} confidences for {len(self._rows)} words")
        self._confidences = [float(c) for c in confidences]
        self.engine = engine
        self.dpi = dpi

    @property
    def confidences(self) -> list[float]:
        """The engine's confidence for each word, ``0..100``, parallel to the words."""
        return list(self._confidences)

    @overload
    def __getitem__(self, i: int) -> Word: ...
    @overload
    def __getitem__(self, i: slice) -> OCRWordList: ...
    def __getitem__(self, i: int | slice) -> Word | OCRWordList:
        if isinstance(i, slice):
            return OCRWordList(self._rows[i], self._page, self._confidences[i], engine=self.engine, dpi=self.dpi)
        return super().__getitem__(i)

    def filter(self, min_confidence: float) -> OCRWordList:
        """Only the words whose confidence is at least ``min_confidence`` (``0..100``)."""
        keep = [k for k, c in enumerate(self._confidences) if c >= min_confidence]
        return OCRWordList([self._rows[k] for k in keep], self._page, [self._confidences[k] for k in keep],
                           engine=self.engine, dpi=self.dpi)

    def __repr__(self) -> str:
        return f"OCR{super().__repr__()[:-1]}, engine={self.engine})"


def available_engines(lang: str = "eng") -> list[OCREngine]:
    """The OCR engines usable here for ``lang``, in the order ``engine="auto"`` tries them: RapidOCR first (on real
    receipts it reads with a character error rate of 0.035 where Tesseract's is 0.22, and 0.18 against 0.30 on
    FUNSD's scanned forms: ``python -m bench.realdata --sets ocr``), for the languages its bundled model reads."""
    found = []
    if _rapidocr_importable() and lang in _RAPIDOCR_LANGS:
        found.append(OCREngine.RAPIDOCR)
    if _tesseract_path() is not None:
        found.append(OCREngine.TESSERACT)
    return found


def ocr_words(
    page: Renderable | PageImage,
    *,
    engine: OCREngine | str = OCREngine.AUTO,
    dpi: float | None = None,
    lang: str = "eng",
    timeout: float = 300.0,
    psm: int = 3,
) -> OCRWordList:
    """Read the words of a page (or of one rendering of it) by OCR, boxes in page space.

    Args:
        page: a [`Page`][docvlm.documents.base.Page], rendered here, or a
            [`PageImage`][docvlm.types.image.PageImage] (a rendering or a crop), read as it is.
        engine: ``"tesseract"``, ``"rapidocr"`` or ``"auto"`` (RapidOCR when it is installed and reads ``lang``,
            else Tesseract: see [`available_engines`][docvlm.documents.ocr.available_engines]).
        dpi: resolution to render a page at. By default PDF pages are rendered at
            `DEFAULT_OCR_DPI` for Tesseract and `RAPIDOCR_DPI` for RapidOCR (lowered to fit the pixel
            budget for very large pages) and image pages
            are read at their own pixels; ignored for a ``PageImage``.
        lang: Tesseract language(s), e.g. ``"eng"`` or ``"eng+deu"``. RapidOCR's bundled model reads
            English and Chinese only.
        timeout: seconds Tesseract may take for the page.
        psm: Tesseract's page segmentation mode: 3 (the default) finds the page's blocks, 6 reads the image as
            one block of text lines (tables read better so); ignored by RapidOCR.

    Returns:
        The words in reading order with block / line / word numbers from the engine (0-based) and
        one confidence per word (`OCRWordList.confidences`).

    Raises:
        MissingDependencyError: the engine asked for (or, for ``"auto"``, every engine) is not installed,
            or Tesseract lacks the language data for ``lang``.
        ModelError: the engine failed on the image.
        UsageError: an unknown engine, or a language RapidOCR cannot read.
    """
    try:
        which = OCREngine(engine)
    except ValueError:
        raise UsageError(
            f"unknown OCR engine {engine!r}", hint="use one of " + ", ".join(repr(e.value) for e in OCREngine)
        ) from None
    if which is OCREngine.AUTO:
        engines = available_engines(lang) or available_engines()
        if not engines:
            raise MissingDependencyError("tesseract", "ocr", purpose="OCR", hint=_INSTALL_HINT)
        which = engines[0]
    elif which is OCREngine.TESSERACT and _tesseract_path() is None:
        raise MissingDependencyError(
            "tesseract", "ocr", purpose="OCR with Tesseract",
            hint="apt-get install tesseract-ocr tesseract-ocr-eng (or brew install tesseract), or use engine='rapidocr'",
        )
    elif which is OCREngine.RAPIDOCR and not _rapidocr_importable():
        raise MissingDependencyError(
            "rapidocr", "ocr", purpose="OCR with RapidOCR",
            hint="pip install rapidocr onnxruntime, or use engine='tesseract'",
        )
    image = _page_image(page, dpi, DEFAULT_OCR_DPI if which is OCREngine.TESSERACT else RAPIDOCR_DPI)
    if which is OCREngine.TESSERACT:
        rows, conf = _run_tesseract_psm(image, lang, timeout, psm)
    else:
        rows, conf = _run_rapidocr(image, lang)
    return _to_page_space(rows, conf, image, which.value)


# rendering -------------------------------------------------------------------------------------------
def _page_image(page: Renderable | PageImage, dpi: float | None, default_dpi: float = 300.0) -> PageImage:
    if isinstance(page, PageImage):
        return page
    if dpi is not None:
        return page.render(dpi)
    if page.units == "pt":  # a vector page: choose the resolution, within the pixel budget
        scale = default_dpi / page.units_per_inch
        budget = get_limits().max_render_pixels
        if pixels_at(page.bbox, scale) > budget:
            scale = fit_scale(page.bbox, budget)
        return page.render(scale * page.units_per_inch)
    return page.render()  # a raster page: its own pixels (lowered only to fit the pixel budget)


_RawRow = tuple[float, float, float, float, str, int, int, int]  # x0, y0, x1, y1 in PIXELS, text, numbers


def _to_page_space(rows: list[_RawRow], conf: list[float], image: PageImage, engine: str) -> OCRWordList:
    frame: Frame = image.frame
    out: list[WordRow] = []
    for x0, y0, x1, y1, text, block, line, index in rows:
        px = BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1, space=Space.PIXEL, image_size=frame.image_size)
        b = px.to(Space.PAGE, frame)
        out.append((b.x0, b.y0, b.x1, b.y1, text, block, line, index))
    return OCRWordList(out, image.page_index, conf, engine=engine, dpi=image.dpi)


# tesseract -------------------------------------------------------------------------------------------
def _tesseract_path() -> str | None:
    return shutil.which("tesseract")


def _png_bytes(img: Image.Image, dpi: float) -> bytes:
    buf = io.BytesIO()
    gray = img if img.mode == "L" else img.convert("L")
    gray.save(buf, format="PNG", compress_level=1, dpi=(dpi, dpi))
    return buf.getvalue()


def _run_tesseract(image: PageImage, lang: str, timeout: float) -> tuple[list[_RawRow], list[float]]:
    return _run_tesseract_psm(image, lang, timeout, 3)


def _run_tesseract_psm(image: PageImage, lang: str, timeout: float, psm: int) -> tuple[list[_RawRow], list[float]]:
    exe = _tesseract_path()
    if exe is None:  # removed between the check and the call
        raise MissingDependencyError("tesseract", "ocr", purpose="OCR with Tesseract", hint=_INSTALL_HINT)
    env = dict(os.environ)
    # Tesseract's OpenMP threads slow it down on a busy machine; one thread per page is the fast setting
    # (docvlm._threads.ocr_threads: DOCVLM_NUM_THREADS / --threads, or OMP_THREAD_LIMIT, else 1)
    env["OMP_THREAD_LIMIT"] = str(ocr_threads())
    dpi = max(70, min(2400, round(image.dpi)))
    _deadline.check("OCR")
    left = _deadline.remaining()
    if left is not None and left < timeout:  # an enclosing call's time limit is nearer: Tesseract gets what is left
        timeout = max(0.001, left)
    cmd = [exe, "stdin", "stdout", "--dpi", str(dpi), "--psm", str(psm), "-l", lang, "tsv"]
    try:
        done = subprocess.run(cmd, input=_png_bytes(image.image, dpi), capture_output=True, env=env, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        _deadline.check("OCR")
        raise ModelError(f"Tesseract took more than {timeout:g} s", page=image.page_index,
                         hint="lower dpi or raise timeout") from None
    err = done.stderr.decode("utf-8", "replace")
    if done.returncode != 0:
        if "Failed loading language" in err or "Error opening data file" in err:
            first = lang.split("+")[0]
            raise MissingDependencyError(
                f"tesseract-ocr-{first}", "ocr", purpose=f"OCR in language {lang!r}",
                hint=f"apt-get install tesseract-ocr-{first} (Tesseract language data)",
            )
        raise ModelError(f"Tesseract failed (exit {done.returncode}): {err.strip()[:300]}", page=image.page_index)
    return parse_tesseract_tsv(done.stdout.decode("utf-8", "replace"))


_RULE_CHARS = "|_—–=~"


def strip_rules(text: str) -> str:
    """A word without the form-box edges OCR reads as characters: ``"|"``, ``"—_|"`` (nothing left) or
    ``"[13-Sep-1957"``, ``"AX418|"`` (the edge glued to the word). Brackets that pair up are kept."""
    if all(ch in _RULE_CHARS + "[]" for ch in text):
        return ""
    while text and (text[0] in _RULE_CHARS or (text[0] == "[" and "]" not in text)):
        text = text[1:]
    while text and (text[-1] in _RULE_CHARS or (text[-1] == "]" and "[" not in text)):
        text = text[:-1]
    return text


def parse_tesseract_tsv(tsv: str) -> tuple[list[_RawRow], list[float]]:
    """Word rows (pixel boxes) and confidences from Tesseract's TSV output.

    Block, line and word numbers become 0-based; lines are numbered within their block (Tesseract numbers
    them within paragraphs). Empty words are dropped, and so are the edges of ruled boxes read as characters
    (see `strip_rules`).
    """
    rows: list[_RawRow] = []
    conf: list[float] = []
    lines = tsv.splitlines()
    if not lines or not lines[0].startswith("level"):
        return rows, conf
    line_of: dict[tuple[int, int, int], int] = {}
    lines_in_block: dict[int, int] = {}
    for raw in lines[1:]:
        parts = raw.split("\t")
        if len(parts) < 12 or parts[0] != "5":
            continue
        text = strip_rules("\t".join(parts[11:]).strip())
        if not text:
            continue
        block, par, line, word = (int(v) for v in parts[2:6])
        left, top, width, height = (float(v) for v in parts[6:10])
        key = (block, par, line)
        if key not in line_of:
            line_of[key] = lines_in_block.get(block, 0)
            lines_in_block[block] = line_of[key] + 1
        rows.append((left, top, left + width, top + height, text, block - 1, line_of[key], word - 1))
        conf.append(max(0.0, float(parts[10])))
    return rows, conf


# rapidocr --------------------------------------------------------------------------------------------
def _env_threads() -> bool:
    return any((os.environ.get(n) or "").strip() for n in ("DOCVLM_NUM_THREADS", "OMP_THREAD_LIMIT"))


def _rapidocr_importable() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("rapidocr") is not None
    except (ImportError, ValueError):
        return False


_RAPIDOCR_LANGS = ("eng", "en", "chi_sim", "ch", "eng+chi_sim", "chi_sim+eng")

#: RapidOCR settings chosen by measurement on realdev's SROIE receipts (``python -m bench.realdata --sets ocr``):
#: no text-direction classifier (upright pages; it cost time and a little accuracy, CER 0.041 -> 0.035), and the
#: detector at the image's own size up to 2,000 pixels instead of upscaling every image to 736 pixels on its short
#: side (CER 0.034, 45 % less CPU).
RAPIDOCR_SETTINGS: dict[str, Any] = {
    "Global.use_cls": False,
    "Det.limit_type": "max",
    "Det.limit_side_len": 2000,
}


@functools.lru_cache(maxsize=2)
def _rapidocr_engine(threads: int = 1) -> Any:
    import importlib

    try:
        rapidocr = importlib.import_module("rapidocr")  # optional, untyped for docvlm's purposes
    except ImportError as exc:
        raise MissingDependencyError(
            "rapidocr", "ocr", purpose="OCR with RapidOCR", hint=f"pip install rapidocr onnxruntime ({exc})"
        ) from exc
    params = {
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": threads,
        **RAPIDOCR_SETTINGS,
    }
    return rapidocr.RapidOCR(params=params)


def _run_rapidocr(image: PageImage, lang: str) -> tuple[list[_RawRow], list[float]]:
    import numpy as np

    _deadline.check("OCR")
    if lang not in _RAPIDOCR_LANGS:
        raise UsageError(
            f"RapidOCR's bundled model cannot read language {lang!r}",
            hint="use engine='tesseract' with its language data for other languages",
        )
    try:
        # onnxruntime's threads: --threads / DOCVLM_NUM_THREADS or OMP_THREAD_LIMIT, else the CPUs free now
        threads = ocr_threads() if _env_threads() else threads_for()
        result = _rapidocr_engine(threads)(np.asarray(image.image.convert("RGB")), return_word_box=True)
    except MissingDependencyError:
        raise
    except Exception as exc:  # onnxruntime and the engine raise many types
        raise ModelError(f"RapidOCR failed: {exc}", page=image.page_index) from exc
    boxes = getattr(result, "boxes", None)
    if boxes is None:
        return [], []
    words_per_line = getattr(result, "word_results", None) or ()
    return split_lines(
        [[(float(x), float(y)) for x, y in quad] for quad in boxes],
        [str(t) for t in result.txts],
        [float(s) for s in result.scores],
        [list(w) for w in words_per_line] if len(words_per_line) == len(boxes) else None,
    )


def split_lines(
    quads: list[list[tuple[float, float]]],
    texts: list[str],
    scores: list[float],
    word_results: list[list[Any]] | None = None,
) -> tuple[list[_RawRow], list[float]]:
    """Word rows from OCR *lines*: each line's quad (ul, ur, lr, ll) split into its words.

    The engine's own word boxes are used when they spell the same words as the line text; otherwise
    the line is cut along its baseline direction in proportion to character counts (a space counting as one
    character), so the boxes are approximate. Each line is block 0, its own line number; confidences
    are scaled to ``0..100``.
    """
    rows: list[_RawRow] = []
    conf: list[float] = []
    for n, (quad, text, score) in enumerate(zip(quads, texts, scores, strict=True)):
        tokens = unicodedata.normalize("NFKC", text).split()  # full-width "（：" as the ASCII "(:" they look like
        if not tokens:
            continue
        given = word_results[n] if word_results is not None else None
        if given and [unicodedata.normalize("NFKC", str(w[0])).strip() for w in given] == tokens:
            for k, (_, wscore, wquad) in enumerate(given):
                xs = [float(p[0]) for p in wquad]
                ys = [float(p[1]) for p in wquad]
                rows.append((min(xs), min(ys), max(xs), max(ys), tokens[k], 0, n, k))
                conf.append(100.0 * float(wscore))
            continue
        (ulx, uly), (urx, ury), (lrx, lry), (llx, lly) = quad[:4]
        total = len(" ".join(tokens))
        start = 0
        for k, token in enumerate(tokens):
            t0, t1 = start / total, (start + len(token)) / total
            pts = [
                (ulx + (urx - ulx) * t0, uly + (ury - uly) * t0),
                (ulx + (urx - ulx) * t1, uly + (ury - uly) * t1),
                (llx + (lrx - llx) * t1, lly + (lry - lly) * t1),
                (llx + (lrx - llx) * t0, lly + (lry - lly) * t0),
            ]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            rows.append((min(xs), min(ys), max(xs), max(ys), token, 0, n, k))
            conf.append(100.0 * score)
            start += len(token) + 1
    return rows, conf
