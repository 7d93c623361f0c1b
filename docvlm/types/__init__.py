"""Pure pydantic result types: geometry with explicit spaces, masks, detections, tables and answers;
and [`PageImage`][docvlm.types.image.PageImage], an image with its frame (what renderings are and models see).

Nothing here imports a heavy dependency at import time: OpenCV and pandas load only inside the
methods that need them ([`Mask.to_polygons`][docvlm.types.mask.Mask.to_polygons], [`Table.to_pandas`][docvlm.types.table.Table.to_pandas], [`Table.from_pandas`][docvlm.types.table.Table.from_pandas]).
"""

from docvlm.types.answer import Answer, Citation, FieldEvidence, KeyValue
from docvlm.types.detections import Detection, Detections
from docvlm.types.geometry import Affine, BoundingBox, Frame, Point, Polygon, Quad, Size, Space
from docvlm.types.image import PageImage
from docvlm.types.mask import Mask
from docvlm.types.table import Table, TableCell
from docvlm.types.text import Word, WordList, WordRow

__all__ = [
    "Affine",
    "Answer",
    "BoundingBox",
    "Citation",
    "Detection",
    "Detections",
    "FieldEvidence",
    "Frame",
    "KeyValue",
    "Mask",
    "PageImage",
    "Point",
    "Polygon",
    "Quad",
    "Size",
    "Space",
    "Table",
    "TableCell",
    "Word",
    "WordList",
    "WordRow",
]
