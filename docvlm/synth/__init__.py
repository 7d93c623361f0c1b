"""Synthetic documents with exact ground truth, and a scan simulator, for tests, evaluation and training data.

>>> import docvlm.synth as synth
>>> doc = synth.generate_invoice(3)
>>> sorted(doc.fields) == sorted(synth.InvoiceFields.model_fields) or "due_date" not in doc.fields
True
>>> scanned = synth.scan(doc, seed=3)
>>> scanned.fields["total"].value == doc.fields["total"].value
True

Everything is seeded (``random.Random``) and offline; PyMuPDF draws the PDFs, Pillow and NumPy make the scans.
"""

from docvlm.synth.documents import (
    FIELD_ALIASES,
    DocumentKind,
    FieldTruth,
    FormFields,
    InvoiceFields,
    SyntheticDocument,
    TextBlock,
    generate,
    generate_columns_page,
    generate_dataset,
    generate_form,
    generate_invoice,
    generate_table_page,
    invoice_language,
)
from docvlm.synth.scan import ScannedDocument, scan

__all__ = [
    "FIELD_ALIASES",
    "DocumentKind",
    "FieldTruth",
    "FormFields",
    "InvoiceFields",
    "ScannedDocument",
    "SyntheticDocument",
    "TextBlock",
    "generate",
    "generate_columns_page",
    "generate_dataset",
    "generate_form",
    "generate_invoice",
    "generate_table_page",
    "invoice_language",
    "scan",
]
