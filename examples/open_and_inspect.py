"""Open a document, list its pages and find a word, then zoom into it.

Usage: python examples/open_and_inspect.py [FILE]   (default: the generated sample invoice)
"""

from __future__ import annotations

import sys

import docvlm as dv


def main(source: str | bytes) -> None:
    with dv.open(source) as doc:
        print(f"{doc.source}: {len(doc)} page(s), {doc.format}")
        for page in doc:
            words = page.words()
            print(f"page {page.index}: {page.width:g} x {page.height:g} {page.units}, {len(words)} words")
            if words:
                longest = max(words, key=lambda w: len(w.text))
                zoom = page.crop(longest.box.pad(4), dpi=300)
                print(f"  longest word {longest.text!r} at {tuple(round(v, 1) for v in longest.box.xyxy)}, "
                      f"zoomed to {zoom.width} x {zoom.height} px")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else dv.samples.invoice_pdf())
