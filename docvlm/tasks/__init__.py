"""Tasks: what users call. Plain functions from a model and a page (or document) to typed results in page space.

Tasks own prompts, output types and post-processing; they never import a backend.
"""

from docvlm.tasks._page import view
from docvlm.tasks.ask import ask, ground_text, read
from docvlm.tasks.extract import Extraction, FieldNotFoundError, extract
from docvlm.tasks.key_values import key_values
from docvlm.tasks.layout import LAYOUT_LABELS, layout
from docvlm.tasks.snap import snap_to_words
from docvlm.tasks.tables import MergedCell, TableGrid, extract_tables, find_tables, table_answers
from docvlm.tasks.vision import detect, ground, point, segment

__all__ = [
    "LAYOUT_LABELS",
    "Extraction",
    "FieldNotFoundError",
    "MergedCell",
    "TableGrid",
    "ask",
    "detect",
    "extract",
    "extract_tables",
    "find_tables",
    "ground",
    "ground_text",
    "key_values",
    "layout",
    "point",
    "read",
    "segment",
    "snap_to_words",
    "table_answers",
    "view",
]
