"""What the model seam itself costs per call, with a backend that does no work.

Usage: python -m bench.seam [--calls N] [--repeat R]

A backend whose ``_complete`` returns a fixed valid answer is asked ``N`` times through ``Model.generate``
(normalizing the prompt, the cached constraint, counting, reading the answer back): the best of ``R`` runs,
per call, once with exact reading (a local backend) and once with lenient reading (a server, a fake). Also the
cost of a family profile's request (the prompt and the output type sized to the image, its type cached). Any real
model call takes milliseconds per token; this is the floor under it.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Sequence
from typing import Literal

from pydantic import BaseModel, Field

from docvlm.models.base import Model, Request
from docvlm.models.profiles import profile_for
from docvlm.types import Size


class Box(BaseModel):
    x0: int = Field(ge=0, le=1000)
    y0: int = Field(ge=0, le=1000)
    label: Literal["total", "date"]


class Fixed(Model):
    """Answers every request with the same valid text."""

    spec = "fixed"

    def _complete(self, requests: Sequence[Request]) -> list[str]:
        return ['{"x0":1,"y0":2,"label":"total"}' for _ in requests]


class Lenient(Fixed):
    validation = "lenient"


def best_us(fn: Callable[[], object], calls: int, repeat: int) -> float:
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    exact, lenient = Fixed(), Lenient()
    print(f"generate() through the seam, exact reading:   {best_us(lambda: exact.generate('find it', Box), args.calls, args.repeat):.1f} us")
    print(f"generate() through the seam, lenient reading: {best_us(lambda: lenient.generate('find it', Box), args.calls, args.repeat):.1f} us")
    size = Size(width=1240, height=1754)
    for family in ("qwen2_5_vl", "paligemma"):
        profile = profile_for(family)
        input_size = Size(width=644, height=924) if profile.needs_input_size else None
        request = functools.partial(profile.box_request, ("total", "date"), labelled=True, max_boxes=8,
                                    image_size=size, input_size=input_size)
        print(f"{family:10s} box_request (cached output type):   {best_us(request, args.calls, args.repeat):.1f} us")


if __name__ == "__main__":
    main()
