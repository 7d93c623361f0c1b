"""docvlm: document understanding with vision-language models, typed, validated and grounded.

>>> import docvlm as dv
>>> doc = dv.open(dv.samples.invoice_pdf())
>>> len(doc), doc[0].units
(1, 'pt')

Importing docvlm is light: torch, transformers, outlines, cv2 and playwright load only when a function
that needs them runs.
"""

from docvlm import samples
from docvlm._version import __version__
from docvlm.documents import (
    Document,
    DocumentInfo,
    Page,
    PageImage,
    PageInfo,
    parse_page_range,
)
from docvlm.documents import open_document as open
from docvlm.documents.ocr import OCRWordList, ocr_words
from docvlm.draw import draw
from docvlm.errors import (
    AgentBudgetError,
    ConstraintError,
    CorruptDocumentError,
    DocumentError,
    DocumentNotFoundError,
    DocumentRepairedWarning,
    DocVLMError,
    DocVLMWarning,
    EmptyDocumentError,
    EncryptedDocumentError,
    MissingDependencyError,
    ModelError,
    PageIndexError,
    PageTooLargeError,
    UnsupportedFormatError,
    UsageError,
)
from docvlm.eval.runner import evaluate
from docvlm.models import FunctionModel, GenerationSettings, Message, Model, TestModel, load_model
from docvlm.tasks import (
    Extraction,
    FieldNotFoundError,
    ask,
    detect,
    extract,
    extract_tables,
    find_tables,
    ground,
    layout,
    point,
    read,
    segment,
)
from docvlm.types import (
    Affine,
    Answer,
    BoundingBox,
    Citation,
    Detection,
    Detections,
    FieldEvidence,
    Frame,
    Mask,
    Point,
    Polygon,
    Quad,
    Size,
    Space,
    Table,
    TableCell,
    Word,
    WordList,
    WordRow,
)
from docvlm.workflows import Agent, AgentResult

__all__ = [
    "Affine",
    "Agent",
    "AgentBudgetError",
    "AgentResult",
    "Answer",
    "BoundingBox",
    "Citation",
    "ConstraintError",
    "CorruptDocumentError",
    "Detection",
    "Detections",
    "DocVLMError",
    "DocVLMWarning",
    "Document",
    "DocumentError",
    "DocumentInfo",
    "DocumentNotFoundError",
    "DocumentRepairedWarning",
    "EmptyDocumentError",
    "EncryptedDocumentError",
    "Extraction",
    "FieldEvidence",
    "FieldNotFoundError",
    "Frame",
    "FunctionModel",
    "GenerationSettings",
    "Mask",
    "Message",
    "MissingDependencyError",
    "Model",
    "ModelError",
    "OCRWordList",
    "Page",
    "PageImage",
    "PageIndexError",
    "PageInfo",
    "PageTooLargeError",
    "Point",
    "Polygon",
    "Quad",
    "Size",
    "Space",
    "Table",
    "TableCell",
    "TestModel",
    "UnsupportedFormatError",
    "UsageError",
    "Word",
    "WordList",
    "WordRow",
    "__version__",
    "ask",
    "detect",
    "draw",
    "evaluate",
    "extract",
    "extract_tables",
    "find_tables",
    "ground",
    "layout",
    "load_model",
    "ocr_words",
    "open",
    "parse_page_range",
    "point",
    "read",
    "samples",
    "segment",
]
