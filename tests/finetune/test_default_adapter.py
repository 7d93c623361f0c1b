"""'default' is the default model with the adapter docvlm ships (when one ships), 'default-base' the untuned one;
each gets its measured choice weight. The loading itself is faked here: these check the wiring."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import docvlm as dv
from docvlm.models import default as default_module


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "docvlm_adapter.json").write_text(json.dumps({"choice_weight": 0.5}))
    seen: list[dict[str, Any]] = []

    def fake(runtime: str = "auto", **kwargs: Any) -> dv.Model:
        seen.append({"runtime": runtime, **kwargs})
        return dv.TestModel()

    monkeypatch.setattr(default_module, "shipped_adapter", lambda: shipped)
    monkeypatch.setattr(default_module, "_load_default", fake)
    return seen


def test_default_carries_the_shipped_adapters_weight_and_default_base_none(loads: list[dict[str, Any]],
                                                                           tmp_path: Path) -> None:
    assert dv.load_model("default").choice_weight == 0.5
    assert dv.load_model("default-base").choice_weight == default_module.CHOICE_WEIGHT == 0.0
    mine = tmp_path / "mine"
    mine.mkdir()  # an adapter of your own, not measured: extraction's default weight (None -> LM_WEIGHT)
    assert dv.load_model("default-base", adapter=mine).choice_weight is None
    assert [(s["base"], s["adapter"]) for s in loads] == [(False, None), (True, None), (True, mine)]


def test_llama_cpp_cannot_run_an_adapter(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(default_module, "shipped_adapter", lambda: tmp_path)
    with pytest.raises(dv.UsageError, match="cannot apply an adapter"):
        dv.load_model("default", runtime="llama.cpp")


def test_no_adapter_ships_unless_it_was_measured_better() -> None:
    """The shipped adapter, when there is one, records how it was trained and its held-back figures."""
    folder = default_module.shipped_adapter()
    if folder is None:
        pytest.skip("no adapter ships (docvlm/data/default-adapter is absent): nothing to check")
    info = json.loads((folder / "docvlm_adapter.json").read_text())
    assert info["base"] == "default-base" and info["choice_weight"] > 0
    held = info["held_back_fold"]["figures"]
    w = str(info["choice_weight"])
    for set_ in ("receipts", "forms", "links"):
        tuned = [v[w] for k, v in held.items() if k.startswith(f"{set_}/") and k.endswith("/tuned")]
        untuned = [v["0.0"] for k, v in held.items() if k.startswith(f"{set_}/") and k.endswith("/untuned")]
        assert sum(tuned) / len(tuned) > sum(untuned) / len(untuned), set_
