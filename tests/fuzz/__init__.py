"""Property-based fuzzing of everything docvlm reads from outside (issue 15), as PyMuPDF and pdf.js fuzz their parsers.

Four targets, each a hypothesis strategy over mutations of seed inputs docvlm generates itself:

- ``pdf``: PDFs from :mod:`docvlm.synth` (and a few hand-made ones), saved uncompressed so that mutations hit
  objects, page trees and content streams: numbers swapped for hostile ones (``-1``, ``2**31``, ``1e308`` ...),
  names and keywords swapped, bytes spliced, chunks duplicated, the file truncated. Each input is opened, and
  up to three pages are measured, rendered, read (words) and searched for tables.
- ``image``: PNG (RGB, RGBA, palette, 16-bit grey), JPEG (with EXIF orientation), GIF, TIFF, BMP and WebP seeds
  with their header fields overwritten by hostile integers, bytes spliced and PNG checksums optionally repaired
  so that the mutation reaches the decoder. Each is opened, measured and rendered.
- ``html``: generated HTML trees (tables with hostile spans, deep nesting, links to private and ``file:``
  addresses, entities) laid out by the browserless Story renderer; words, links, tables and a rendering.
- ``tools``: sequences of workflow tool calls (:class:`docvlm.workflows.Toolbox`) with arguments of every wrong
  type and size: a call gives a result, never an exception.

Every example must end with a result or a typed :class:`~docvlm.errors.DocVLMError` whose message is one line;
anything else is a failure that hypothesis shrinks. A watchdog (``faulthandler``) kills the process when one
example runs past its time limit (a hang), after the input being tried was written to disk; the process's peak
memory is checked after every example.

Run: ``python -m tests.fuzz --minutes 10`` (a longer run; ``--save`` keeps crashers in ``tests/regressions/``),
``python -m tests.fuzz --examples 100 --derandomize`` (what CI runs, through ``tests/test_fuzz.py``).
"""
