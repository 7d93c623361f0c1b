"""Detected objects: a labelled box with an optional score and mask, and a collection of them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import Self

from docvlm.errors import MissingDependencyError, UsageError
from docvlm.types.geometry import BoundingBox, Frame, Size, Space
from docvlm.types.mask import Mask

__all__ = ["Detection", "Detections"]


class Detection(BaseModel):
    """One detected object.

    Attributes:
        label: the class name, as asked for or as the model named it.
        box: where the object is, in an explicit space.
        score: confidence in ``[0, 1]``; ``None`` when the model gives none (most VLMs).
        mask: the object's pixels, over the image the detection was made on.
        data: anything else worth keeping per object (e.g. an OCR string, a track id).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    box: BoundingBox
    score: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    mask: Mask | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _mask_matches_image(self) -> Self:
        box, mask = self.box, self.mask
        if (
            mask is not None
            and box.space is Space.PIXEL
            and box.image_size is not None
            and box.image_size != mask.image_size
        ):
            raise ValueError(
                f"the mask is {mask.width}x{mask.height} pixels but the box is on a "
                f"{box.image_size.width:g}x{box.image_size.height:g} image"
            )
        return self


class Detections(BaseModel, Sequence[Detection]):
    """An ordered collection of [`Detection`][docvlm.types.detections.Detection] whose boxes all share one space.

    It behaves as a sequence (``len``, iteration, ``dets[0]``; ``dets[1:3]``, ``dets[[0, 2]]`` and
    ``dets[dets.confidence > 0.5]`` give a new [`Detections`][docvlm.types.detections.Detections]), and offers the array views
    that annotation and evaluation tools expect.

    >>> d = Detections(detections=[Detection(label="logo", box=BoundingBox(x0=0, y0=0, x1=10, y1=5))])
    >>> len(d), d.labels, d.xyxy.tolist()
    (1, ['logo'], [[0.0, 0.0, 10.0, 5.0]])

    Attributes:
        detections: the detections, in order.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    detections: list[Detection] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_space(self) -> Self:
        spaces = {d.box.space for d in self.detections}
        if len(spaces) > 1:
            found = ", ".join(sorted(s.value for s in spaces))
            raise ValueError(
                f"all boxes in one Detections must share a space, found {found}; convert them with .to(space, frame)"
            )
        return self

    # sequence protocol
    def __len__(self) -> int:
        return len(self.detections)

    def __iter__(self) -> Iterator[Detection]:  # type: ignore[override]  # a sequence, not BaseModel's field pairs
        return iter(self.detections)

    @overload
    def __getitem__(self, index: int) -> Detection: ...

    @overload
    def __getitem__(self, index: slice | Sequence[int] | npt.NDArray[Any]) -> Detections: ...

    def __getitem__(
        self, index: int | slice | Sequence[int] | npt.NDArray[Any]
    ) -> Detection | Detections:
        """An item by position, or a new [`Detections`][docvlm.types.detections.Detections] for a slice, integer indices or a boolean mask."""
        if isinstance(index, int | np.integer):
            return self.detections[int(index)]
        if isinstance(index, slice):
            return self._with(self.detections[index])
        idx = np.asarray(index)
        if idx.dtype == np.bool_:
            if idx.shape != (len(self),):
                raise UsageError(f"a boolean index needs shape ({len(self)},), got {idx.shape}")
            return self._with([d for d, keep in zip(self.detections, idx.tolist(), strict=True) if keep])
        if idx.size == 0:
            return self._with([])
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise UsageError(f"cannot index Detections with {type(index).__name__} of dtype {idx.dtype}")
        return self._with([self.detections[int(i)] for i in idx.tolist()])

    def _with(self, detections: list[Detection]) -> Detections:
        return self.model_copy(update={"detections": detections})

    def __add__(self, other: Detections) -> Detections:
        """Both collections, concatenated (their boxes must share a space)."""
        return Detections(detections=[*self.detections, *other.detections])

    # views
    @property
    def space(self) -> Space | None:
        """The space all boxes are in; ``None`` when there are no detections."""
        return self.detections[0].box.space if self.detections else None

    @property
    def labels(self) -> list[str]:
        """The label of each detection, in order."""
        return [d.label for d in self.detections]

    @property
    def scores(self) -> list[float | None]:
        """The score of each detection, ``None`` where the model gave none."""
        return [d.score for d in self.detections]

    @property
    def xyxy(self) -> npt.NDArray[np.float32]:
        """Boxes as an ``N x 4`` float32 array of ``x0, y0, x1, y1`` in [`space`][docvlm.types.detections.Detections.space]."""
        out = np.array([d.box.xyxy for d in self.detections], dtype=np.float32)
        return out.reshape(len(self), 4)

    @property
    def confidence(self) -> npt.NDArray[np.float32]:
        """Scores as a length-``N`` float32 array, NaN where a detection has no score."""
        return np.array([np.nan if d.score is None else d.score for d in self.detections], dtype=np.float32)

    @property
    def class_names(self) -> list[str]:
        """Distinct labels in order of first appearance; [`class_id`][docvlm.types.detections.Detections.class_id] indexes into this list."""
        return list(dict.fromkeys(self.labels))

    @property
    def class_id(self) -> npt.NDArray[np.int64]:
        """For each detection, the index of its label in [`class_names`][docvlm.types.detections.Detections.class_names]."""
        return self._class_ids(self.class_names)

    def _class_ids(self, class_names: Sequence[str]) -> npt.NDArray[np.int64]:
        index = {name: i for i, name in enumerate(class_names)}
        missing = [label for label in self.class_names if label not in index]
        if missing:
            raise UsageError(
                f"labels {missing} are not among the class names {list(class_names)}",
                hint="pass every label the detections may carry",
            )
        return np.array([index[d.label] for d in self.detections], dtype=np.int64)

    # transformations
    def filter(
        self,
        labels: str | Iterable[str] | None = None,
        min_score: float | None = None,
        predicate: Callable[[Detection], bool] | None = None,
    ) -> Detections:
        """The detections that pass every given condition, in their original order.

        Args:
            labels: keep only these labels (one label or several).
            min_score: keep only detections scored at least this; unscored detections are dropped.
            predicate: keep only detections for which this returns true.
        """
        wanted = None if labels is None else ({labels} if isinstance(labels, str) else set(labels))

        def keep(d: Detection) -> bool:
            if wanted is not None and d.label not in wanted:
                return False
            if min_score is not None and (d.score is None or d.score < min_score):
                return False
            return predicate is None or predicate(d)

        return self._with([d for d in self.detections if keep(d)])

    def nms(self, iou_threshold: float = 0.5, *, class_agnostic: bool = False) -> Detections:
        """Greedy non-maximum suppression, keeping the original order of the survivors.

        A detection is dropped when it overlaps a better one (higher score; among equal or missing
        scores, the earlier one) with box IoU above ``iou_threshold``. By default only detections
        with the same label suppress each other.

        Raises:
            UsageError: ``iou_threshold`` outside ``[0, 1]``.
        """
        if not 0 <= iou_threshold <= 1:
            raise UsageError(f"iou_threshold must be in [0, 1], got {iou_threshold}")
        n = len(self)
        if n < 2:
            return self
        boxes = np.array([d.box.xyxy for d in self.detections], dtype=np.float64)
        scores = np.array([-np.inf if d.score is None else d.score for d in self.detections])
        groups = np.zeros(n, dtype=np.int64) if class_agnostic else self.class_id
        order = np.lexsort((np.arange(n), -scores))  # best first, ties by position
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        suppressed = np.zeros(n, dtype=bool)
        for rank, i in enumerate(order):
            if suppressed[i]:
                continue
            rest = order[rank + 1 :]
            rest = rest[~suppressed[rest] & (groups[rest] == groups[i])]
            if rest.size == 0:
                continue
            w = np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0])
            h = np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1])
            inter = np.clip(w, 0, None) * np.clip(h, 0, None)
            union = areas[i] + areas[rest] - inter
            iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
            suppressed[rest[iou > iou_threshold]] = True
        return self[~suppressed]

    def to(self, space: Space | str, frame: Frame | Size | None = None) -> Detections:
        """All boxes converted to ``space`` (see [`BoundingBox.to`][docvlm.types.geometry.BoundingBox.to]); masks stay as they are."""
        return self._with([d.model_copy(update={"box": d.box.to(space, frame)}) for d in self.detections])

    # exporters
    def to_supervision(self, frame: Frame | Size | None = None, class_names: Sequence[str] | None = None) -> Any:
        """A ``supervision.Detections`` (boxes in pixels), for supervision's annotators, trackers and metrics.

        Args:
            frame: the image the boxes should be in pixels of (needed for page-space boxes, or an image
                [`Size`][docvlm.types.Size] for normalized boxes without ``image_size``).
            class_names: fixes ``class_id`` to positions in this list; by default [`class_names`][docvlm.types.detections.Detections.class_names].

        Returns:
            ``sv.Detections`` with ``xyxy``, ``confidence`` (NaN where unscored, ``None`` when nothing is),
            ``class_id``, ``mask`` and ``data["class_name"]``; see [`to_supervision_kwargs`][docvlm.types.detections.Detections.to_supervision_kwargs].

        Raises:
            MissingDependencyError: supervision is not installed (``pip install 'docvlm[supervision]'``).
            UsageError: as for ``to_supervision_kwargs``.
        """
        try:
            import supervision as sv
        except ImportError as exc:
            raise MissingDependencyError("supervision", "supervision", purpose="Detections.to_supervision") from exc
        return sv.Detections(**self.to_supervision_kwargs(frame, class_names))

    @classmethod
    def from_supervision(cls, detections: Any, *, image_size: Size | tuple[int, int] | None = None,
                         class_names: Sequence[str] | None = None) -> Detections:
        """Detections from a ``supervision.Detections`` (pixel boxes): the inverse of [`to_supervision`][docvlm.types.detections.Detections.to_supervision].

        Labels come from ``data["class_name"]``, else from ``class_names[class_id]``, else the class id as text;
        NaN confidences become ``None`` and masks become [`Mask`][docvlm.types.Mask]s.

        Args:
            detections: a ``supervision.Detections`` (or anything with its ``xyxy`` / ``class_id`` / ...).
            image_size: the image the boxes are in pixels of (``(width, height)``); taken from the masks when
                they are there.
            class_names: names of the class ids, when ``data`` has no ``class_name``.

        Raises:
            UsageError: a class id without a name in ``class_names``.
        """
        xyxy = np.asarray(detections.xyxy, dtype=np.float64).reshape(-1, 4)
        n = len(xyxy)
        masks = getattr(detections, "mask", None)
        if masks is not None:
            masks = np.asarray(masks, dtype=bool)
        size = Size(width=image_size[0], height=image_size[1]) if isinstance(image_size, tuple) else image_size
        if size is None and masks is not None and masks.ndim == 3:
            size = Size(width=masks.shape[2], height=masks.shape[1])
        confidence = getattr(detections, "confidence", None)
        class_id = getattr(detections, "class_id", None)
        data = getattr(detections, "data", None) or {}
        names = data.get("class_name")
        out = []
        for i in range(n):
            if names is not None:
                label = str(names[i])
            elif class_id is not None and class_names is not None:
                cid = int(class_id[i])
                if not 0 <= cid < len(class_names):
                    raise UsageError(f"class id {cid} has no name among {len(class_names)} class names")
                label = class_names[cid]
            else:
                label = str(int(class_id[i])) if class_id is not None else "object"
            score = None
            if confidence is not None and not np.isnan(confidence[i]):
                score = float(confidence[i])
            extra = {k: v[i].item() if hasattr(v[i], "item") else v[i] for k, v in data.items() if k != "class_name"}
            x0, y0, x1, y1 = (float(v) for v in xyxy[i])
            out.append(Detection(
                label=label, box=BoundingBox(x0=x0, y0=y0, x1=x1, y1=y1, space=Space.PIXEL, image_size=size),
                score=score, mask=Mask.from_array(masks[i]) if masks is not None else None, data=extra))
        return cls(detections=out)

    def to_supervision_kwargs(
        self, frame: Frame | Size | None = None, class_names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for ``supervision.Detections(**dets.to_supervision_kwargs())``; supervision is not imported.

        Boxes are converted to pixel space first (``frame`` is needed for page-space boxes, or an image
        [`Size`][docvlm.types.geometry.Size] for normalized boxes without ``image_size``).

        Args:
            frame: the image the boxes should be in pixels of.
            class_names: fixes ``class_id`` to positions in this list (e.g. the classes you prompted
                for, so that ids agree across images); by default [`class_names`][docvlm.types.detections.Detections.class_names].

        Returns:
            ``xyxy`` (float32 ``N x 4``), ``confidence`` (float32 ``N``, NaN where unscored, or ``None``
            when nothing is scored), ``class_id`` (int64 ``N``), ``mask`` (bool ``N x H x W`` or ``None``)
            and ``data`` with ``class_name`` (a string array).

        Raises:
            UsageError: some detections have masks and others not, masks of different sizes, a
                conversion without the frame it needs, or a label missing from ``class_names``.
        """
        dets = self if self.space in (None, Space.PIXEL) else self.to(Space.PIXEL, frame)
        masks = [d.mask for d in dets.detections]
        mask: npt.NDArray[np.bool_] | None = None
        present = [m for m in masks if m is not None]
        if present:
            if len(present) != len(masks):
                raise UsageError(
                    f"{len(present)} of {len(masks)} detections have a mask; supervision needs all or none",
                    hint="drop the masks (d.model_copy(update={'mask': None})) or filter to the masked ones",
                )
            sizes = {m.size for m in present}
            if len(sizes) > 1:
                raise UsageError(f"masks of different sizes {sorted(sizes)} cannot be stacked")
            mask = np.stack([m.to_array() for m in present])
        scored = any(d.score is not None for d in dets.detections)
        return {
            "xyxy": dets.xyxy,
            "confidence": dets.confidence if scored else None,
            "class_id": dets._class_ids(dets.class_names if class_names is None else class_names),
            "mask": mask,
            "data": {"class_name": np.array(dets.labels, dtype=str)},
        }
