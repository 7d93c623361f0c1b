"""Family profiles: how each vision-language model family speaks, mapped onto docvlm's geometry.

A [`FamilyProfile`][docvlm.models.profiles.FamilyProfile] holds a family's *dialect*: how its prompt is built (chat template or a raw
task prompt), which task tokens it knows, and above all its **box convention**: the numbers a model
writes for a box and what they mean. Tasks never see these conventions; they ask the model's profile
to turn raw output into [`BoundingBox`][docvlm.types.geometry.BoundingBox] / [`Point`][docvlm.types.geometry.Point] objects in the
pixel space of the *original* image (``space="pixel"``, ``image_size`` set)::

    profile = model.profile                     # profile_for(config.model_type), e.g. "qwen2_5_vl"
    size = Size(width=image.width, height=image.height)
    for label, box in profile.parse_boxes(text, image_size=size, input_size=model.input_image_size(image)):
        ...

The conventions (see [`BoxConvention`][docvlm.models.profiles.BoxConvention]), each with the source it was checked against:

========================  ==========================================================================
``qwen2_vl``              integers 0..1000 of the image, ``(x0,y0),(x1,y1)`` between
                          ``<|box_start|>`` / ``<|box_end|>``, the label in ``<|object_ref_start|>``
                          ... ``<|object_ref_end|>`` (Qwen2-VL grounding data format, QwenLM and ms-swift issues).
``qwen2_5_vl``            absolute pixels of the processor-resized input (``smart_resize`` to
                          multiples of 28, transformers ``Qwen2VLImageProcessor``), JSON objects
                          ``{"bbox_2d": [...], "label": ...}`` / ``{"point_2d": [x, y]}``, often in a
                          fenced code block (Qwen2.5-VL spatial-understanding cookbook).
``qwen3_vl``              JSON like Qwen2.5-VL but integers 0..1000 relative to the image
                          (Qwen3-VL release notes: "relative coordinates ranging from 0 to 1000").
``idefics3``, ``smolvlm`` floats 0..1 of the image. A prompt convention only: these models were not
                          trained to ground (``supports_grounding=False``).
``llava``, ``llava_next`` floats 0..1 with 2 decimals, ``[x0, y0, x1, y1]`` (LLaVA-1.5 RefCOCO / VG
                          instruction data; note LLaVA's own training code normalized to the image
                          padded to a square, the HF processors crop or tile instead).
``paligemma``             ``<locNNNN>`` tokens, 4 per box in ``y0 x0 y1 x1`` order, bin ``round(v * 1023)``
                          of the image (big_vision ``pp/proj/paligemma/segmentation.py`` encodes with
                          ``round(bbox * 1023)`` and its evaluator decodes ``/ 1023``), then the label;
                          entries separated by `` ; ``. Masks are 16 ``<segNNN>`` codes (0..127) of a
                          VQ-VAE after the box (``transformers`` ``processing_paligemma.EXTRA_TOKENS``).
``florence2``             task tokens (``<OD>``, ``<CAPTION_TO_PHRASE_GROUNDING>``, ...), the label
                          *before* its ``<loc_N>`` tokens, N in 0..999 a bin of width ``size / 1000``
                          read at its centre ``(N + 0.5) * size / 1000`` (transformers
                          ``Florence2PostProcessor.quantize`` / ``dequantize``); quads for
                          ``<OCR_WITH_REGION>`` (8 locs), polygons as loc pairs split by ``<sep>``.
========================  ==========================================================================

Parsers are tolerant by design: markdown fences, JSON lists / objects with ``bbox_2d`` / ``bbox`` /
``box`` keys, bare ``[x0, y0, x1, y1]`` lists, trailing garbage and output cut off mid-box all parse
to the complete boxes; garbage parses to ``[]``. They never raise on model text. Coordinates outside
the image are clipped to it and swapped corners are put in order.

A profile owns both directions of a task for its family: the request (prompt and constrained output type, sized
to the input) and the parse back to pixels of the image the model saw ([`TaskRequest`][docvlm.models.profiles.TaskRequest]
from [`box_request`][docvlm.models.profiles.FamilyProfile.box_request],
[`point_request`][docvlm.models.profiles.FamilyProfile.point_request],
[`outline_request`][docvlm.models.profiles.FamilyProfile.outline_request]). Tasks map those pixels to page space
and never see a convention.

The package holds one module per family or dialect: ``_base`` (the conventions and the JSON dialect most families
speak), ``_scan`` (the lenient free-text reader), ``generic``, ``qwen``, ``idefics``, ``llava``, ``paligemma``,
``florence2``, and ``_registry`` (which profile serves which ``config.model_type``). A new family is one module
and a line in ``FAMILIES`` (or [`register`][docvlm.models.profiles.register] for one defined outside docvlm).

This package is pure Python (pydantic only): importing it loads neither torch nor transformers.
"""

from __future__ import annotations

from docvlm.models.profiles._base import (
    BoxConvention,
    FamilyProfile,
    LabeledBox,
    LabeledPoint,
    LabeledPolygon,
    LabeledQuad,
    Outline,
    Segment,
    TaskRequest,
    fit_repeats,
)
from docvlm.models.profiles._registry import FAMILIES, PROFILES, profile_for, register, unregister
from docvlm.models.profiles.florence2 import FLORENCE2, Florence2Profile
from docvlm.models.profiles.generic import GENERIC
from docvlm.models.profiles.idefics import IDEFICS3, SMOLVLM
from docvlm.models.profiles.llava import LLAVA
from docvlm.models.profiles.paligemma import PALIGEMMA, PaliGemmaProfile
from docvlm.models.profiles.qwen import QWEN2_5_VL, QWEN2_VL, QWEN3_VL, Qwen2VLProfile, Qwen25VLProfile, smart_resize

__all__ = [
    "FAMILIES",
    "FLORENCE2",
    "GENERIC",
    "IDEFICS3",
    "LLAVA",
    "PALIGEMMA",
    "PROFILES",
    "QWEN2_5_VL",
    "QWEN2_VL",
    "QWEN3_VL",
    "SMOLVLM",
    "BoxConvention",
    "FamilyProfile",
    "Florence2Profile",
    "LabeledBox",
    "LabeledPoint",
    "LabeledPolygon",
    "LabeledQuad",
    "Outline",
    "PaliGemmaProfile",
    "Qwen2VLProfile",
    "Qwen25VLProfile",
    "Segment",
    "TaskRequest",
    "fit_repeats",
    "profile_for",
    "register",
    "smart_resize",
    "unregister",
]
