"""The registry: which profile serves which transformers ``config.model_type``.

Adding a family is one module (its profile) and one line in `FAMILIES`; a family defined outside docvlm (a
fine-tuned model with its own output syntax, a test's made-up family) is added with
[`register`][docvlm.models.profiles.register].
"""

from __future__ import annotations

from docvlm.errors import UsageError
from docvlm.models.profiles._base import FamilyProfile
from docvlm.models.profiles.florence2 import FLORENCE2
from docvlm.models.profiles.generic import GENERIC
from docvlm.models.profiles.idefics import IDEFICS3, SMOLVLM
from docvlm.models.profiles.llava import LLAVA
from docvlm.models.profiles.paligemma import PALIGEMMA
from docvlm.models.profiles.qwen import QWEN2_5_VL, QWEN2_VL, QWEN3_VL

__all__ = ["FAMILIES", "PROFILES", "profile_for", "register", "unregister"]

#: The families docvlm ships, one line each.
FAMILIES: tuple[FamilyProfile, ...] = (
    QWEN2_VL,
    QWEN2_5_VL,
    QWEN3_VL,
    IDEFICS3,
    SMOLVLM,
    LLAVA,
    PALIGEMMA,
    FLORENCE2,
)

PROFILES: dict[str, FamilyProfile] = {}
"""Profiles by transformers ``config.model_type``."""


def _key(model_type: str) -> str:
    return model_type.strip().lower()


def register(profile: FamilyProfile, *, replace: bool = False) -> FamilyProfile:
    """Serve ``profile.model_types`` with ``profile`` from now on (``load_model`` then picks it by
    ``config.model_type``).

    Args:
        profile: the family's profile.
        replace: take over model types another profile serves (else that is an error).

    Returns:
        ``profile``, so a module can write ``MY_FAMILY = register(MyProfile(...))``.

    Raises:
        UsageError: a profile without model types, or one whose model type another profile serves.
    """
    if not isinstance(profile, FamilyProfile):
        raise UsageError(f"register takes a FamilyProfile, got {type(profile).__name__}")
    if not profile.model_types:
        raise UsageError(f"the profile {profile.name!r} names no model_types to serve")
    taken = [t for t in profile.model_types if PROFILES.get(_key(t), profile) is not profile]
    if taken and not replace:
        raise UsageError(
            f"model type {taken[0]!r} is served by the profile {PROFILES[_key(taken[0])].name!r}",
            hint="pass replace=True to take it over",
        )
    for model_type in profile.model_types:
        PROFILES[_key(model_type)] = profile
    return profile


def unregister(profile: FamilyProfile) -> None:
    """Stop serving the model types that ``profile`` serves (they fall back to the generic profile)."""
    for model_type in [t for t, p in PROFILES.items() if p is profile]:
        del PROFILES[model_type]


def profile_for(model_type: str | None) -> FamilyProfile:
    """The profile of a transformers ``config.model_type`` (``"qwen2_5_vl"``, ``"paligemma"``, ...).

    Args:
        model_type: the model type; case and surrounding whitespace are ignored.

    Returns:
        The family's profile, or ``GENERIC`` for an unknown or missing model type.
    """
    if not model_type:
        return GENERIC
    return PROFILES.get(_key(model_type), GENERIC)


for _family in FAMILIES:
    register(_family)
