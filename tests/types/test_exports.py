"""The docvlm.types namespace: complete, sorted, and free of heavy imports."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

from pydantic import BaseModel

import docvlm
import docvlm.types
from docvlm.types import answer, detections, geometry, image, mask, table, text


def test_all_is_sorted_and_complete() -> None:
    assert docvlm.types.__all__ == sorted(set(docvlm.types.__all__))
    exported: set[str] = set()
    for module in (answer, detections, geometry, image, mask, table, text):
        classes = {
            name
            for name, obj in vars(module).items()
            if inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_")
        }
        assert classes <= set(module.__all__), module.__name__
        exported |= set(module.__all__)
    assert exported == set(docvlm.types.__all__)
    for name in docvlm.types.__all__:
        assert getattr(docvlm, name) is getattr(docvlm.types, name)


def test_models_are_frozen_and_forbid_extra_fields() -> None:
    for name in docvlm.types.__all__:
        obj = getattr(docvlm.types, name)
        if inspect.isclass(obj) and issubclass(obj, BaseModel):
            assert obj.model_config.get("frozen") is True, name
            assert obj.model_config.get("extra") == "forbid", name


def test_using_types_imports_nothing_heavy() -> None:
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from docvlm.types import *
        m = Mask.from_polygon([(1, 1), (5, 1), (5, 4)], 8, 8)
        assert Mask.from_coco(m.to_coco()) == m and m.bbox is not None and m.iou(m) == 1.0
        d = Detections(detections=[Detection(label="a", box=BoundingBox(x0=0, y0=0, x1=1, y1=1, space="normalized"))])
        assert d.nms().to_supervision_kwargs(Size(width=2, height=2))["xyxy"].shape == (1, 4)
        t = Table(cells=[TableCell(row=0, col=0, text="a", is_header=True), TableCell(row=1, col=0, text="b")])
        assert t.to_html() and t.to_markdown() and t.to_csv()
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {"cv2", "pandas", "torch", "transformers"})
        print("HEAVY", heavy)
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout
