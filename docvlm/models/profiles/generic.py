"""The generic profile: unknown families, fakes and server models without a profile of their own."""

from __future__ import annotations

from docvlm.models.profiles._base import FamilyProfile

__all__ = ["GENERIC"]

GENERIC = FamilyProfile(
    "generic",
    notes="Unknown families: prompted to write JSON boxes as integers 0..1000 of the image (a common convention).",
)
