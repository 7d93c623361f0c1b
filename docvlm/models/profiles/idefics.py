"""Idefics3 and SmolVLM (the Idefics3 architecture): no grounding training, boxes by the prompt's 0..1 convention."""

from __future__ import annotations

from docvlm.models.profiles._base import BoxConvention, FamilyProfile

__all__ = ["IDEFICS3", "SMOLVLM"]

IDEFICS3 = FamilyProfile(
    "idefics3",
    model_types=("idefics3",),
    box_convention=BoxConvention.REL_1,
    notes="No grounding training: boxes follow the prompt's 0..1 convention only and are unreliable.",
)

SMOLVLM = FamilyProfile(
    "smolvlm",
    model_types=("smolvlm",),
    box_convention=BoxConvention.REL_1,
    notes="No grounding training (Idefics3 architecture): boxes follow the prompt's 0..1 convention only.",
)
