"""LLaVA and LLaVA-NeXT: ``[x0, y0, x1, y1]`` floats 0..1 with 2 decimals (LLaVA-1.5's RefCOCO / VG data)."""

from __future__ import annotations

from docvlm.models.profiles._base import BoxConvention, FamilyProfile

__all__ = ["LLAVA"]

LLAVA = FamilyProfile(
    "llava",
    model_types=("llava", "llava_next"),
    box_convention=BoxConvention.REL_1,
    supports_grounding=True,
    decimals=2,
    notes=(
        "[x0, y0, x1, y1] floats 0..1 with 2 decimals, from LLaVA-1.5's RefCOCO / VG instruction data. "
        "LLaVA's training code normalized to the image padded to a square; the HF processors crop or tile, "
        "so boxes can be offset on non-square images."
    ),
)
