"""train: a LoRA adapter with TRL on tiny random models of a language model and two VLM families; the adapter
loads through dv.load_model(..., adapter=...) and predicts the training answers better than the base model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import docvlm as dv
from docvlm.eval import FieldsSample, synthetic_dataset

pytest.importorskip("trl")
pytest.importorskip("peft")

pytestmark = pytest.mark.slow


def invoice(fields: int) -> FieldsSample:
    sample = synthetic_dataset("invoice", 1).samples[0]
    assert isinstance(sample, FieldsSample)
    return sample.model_copy(update={"fields": sample.fields[:fields]})


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_a_language_model_learns_extraction_answers_and_resumes(
        tiny_model: Callable[[str], Path], tmp_path: Path, torch_one_thread: None) -> None:
    from docvlm.finetune import build_dataset, completion_loss, train

    folder = str(tiny_model("llama"))
    base = dv.load_model(folder)
    dataset = build_dataset("extract", synthetic_dataset("invoice", 1), base, max_chars=500)
    assert len(dataset) >= 6 and all(ex.scored for ex in dataset)
    out = tmp_path / "adapter"
    result = train(folder, dataset, out, max_steps=12, learning_rate=2e-2, progress=False, save_steps=6)
    assert result.steps == 12 and len(result.losses) == 12 and result.examples == len(dataset)
    assert mean(result.losses[-3:]) < mean(result.losses[:3]) - 0.05  # the loss goes down
    log = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 13)) and log[-1]["loss"] == pytest.approx(result.losses[-1])
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == f"transformers:{folder}" and config["r"] == 8
    info = json.loads((out / "docvlm_adapter.json").read_text())
    assert info["tasks"] == ["extract"] and info["steps"] == 12 and info["examples"] == len(dataset)

    tuned = dv.load_model(folder, adapter=out)
    assert tuned.spec == f"transformers:{folder}+adapter:{out}"
    assert completion_loss(tuned, dataset) < completion_loss(base, dataset) - 0.05
    ex = dataset[0]
    assert tuned.score(ex.messages, ex.continuations) != base.score(ex.messages, ex.continuations)
    # the merge without peft (how the default model's shipped adapter is merged) gives peft's weights
    from docvlm.models._adapters import merged_folder

    plain = dv.load_model(str(merged_folder(Path(folder), out, tmp_path / "cache")))
    peft_weights = tuned.model.state_dict()  # type: ignore[attr-defined]
    for name, weight in plain.model.state_dict().items():  # type: ignore[attr-defined]
        assert (weight - peft_weights[name]).abs().max() < 1e-5, name

    again = train(folder, dataset, out, max_steps=16, learning_rate=2e-2, progress=False)
    assert again.steps == 16 and len(again.losses) == 4  # resumed from checkpoint 12, not started over
    assert len((out / "loss.jsonl").read_text().splitlines()) == 16


@pytest.mark.parametrize("family", ["qwen2_vl", "smolvlm"])
def test_vision_families_learn_grounding_through_their_processor(
        family: str, tiny_model: Callable[[str], Path], tmp_path: Path, torch_one_thread: None) -> None:
    from docvlm.finetune import build_dataset, completion_loss, train

    folder = str(tiny_model(family))
    base = dv.load_model(folder)
    dataset = build_dataset("ground", [invoice(3)], base)
    assert len(dataset) == 3 and all(len(ex.images) == 1 for ex in dataset)
    assert all(ex.check() for ex in dataset)  # every target is a non-empty box list its constraint accepts
    result = train(folder, dataset, tmp_path / "adapter", max_steps=8, learning_rate=2e-2, progress=False)
    assert mean(result.losses[-2:]) < mean(result.losses[:2]) - 0.05
    tuned = dv.load_model(folder, adapter=tmp_path / "adapter")
    assert completion_loss(tuned, dataset) < completion_loss(base, dataset) - 0.05


def test_adapter_errors_are_typed(tiny_model: Callable[[str], Path], tmp_path: Path) -> None:
    folder = str(tiny_model("llama"))
    with pytest.raises(dv.ModelError, match="no adapter folder"):
        dv.load_model(folder, adapter=tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(dv.ModelError, match="holds no LoRA adapter"):
        dv.load_model(folder, adapter=tmp_path / "empty")
    with pytest.raises(dv.UsageError, match="local transformers models"):
        dv.load_model("test", adapter=tmp_path)
    from docvlm.finetune import FineTuneDataset, train

    with pytest.raises(dv.UsageError, match="empty"):
        train(folder, FineTuneDataset(), tmp_path / "out")
    with pytest.raises(dv.UsageError, match="not one"):
        train(dv.TestModel(), synthetic_dataset("invoice", 1) and FineTuneDataset([_any_example()]), tmp_path / "o")


def _any_example() -> object:
    from docvlm.finetune import TrainingExample
    from docvlm.models import Message

    return TrainingExample(task="extract", source="x", messages=[Message("user", ["q"])], completion="a", scored=True,
                           continuations=["a"])
