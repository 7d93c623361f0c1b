"""Draw every word's page-space box on a rendered page: the picture in docs/concepts/coordinates.md.

Usage: python examples/draw_coordinates.py [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import ImageDraw

import docvlm as dv


def main(out: Path) -> None:
    page = dv.open(dv.samples.invoice_pdf())[0]
    image = page.render(dpi=100)
    canvas = image.image.copy()
    draw = ImageDraw.Draw(canvas)
    for word in page.words():
        draw.rectangle(word.box.to_pixels(image.frame).xyxy, outline=(220, 30, 30), width=1)
    total = next(w for w in page.words() if w.text == "145.78")
    # page -> normalized -> page again, then drawn: lands on the same glyphs
    round_trip = total.box.to_normalized(image.frame).to_page(image.frame)
    draw.rectangle(round_trip.pad(3).to_pixels(image.frame).xyxy, outline=(30, 60, 220), width=3)
    canvas = canvas.crop((0, 0, image.width, int(image.height * 0.6)))
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out)
    print(f"{len(page.words())} word boxes drawn -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images/coordinates.png"))
