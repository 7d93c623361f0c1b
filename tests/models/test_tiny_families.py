"""Every supported VLM family, end to end on a tiny random model: load, prompt with an image, and
sample under a docvlm constraint. All 20 samples must parse, whatever the random weights say."""

from __future__ import annotations

import json
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field

from docvlm.decoding import compile_output_type, logits_processor
from docvlm.errors import ModelError
from docvlm.models._processors import load_processor, processor_is_complete

from .tiny import FAMILIES, IMAGE_FAMILIES, image_tokens

torch = pytest.importorskip("torch")

PROMPT = "Find the boxes."
SEEDS = range(20)


class Box(BaseModel):
    x0: int = Field(ge=0, le=1000)
    y0: int = Field(ge=0, le=1000)
    x1: int = Field(ge=0, le=1000)
    y1: int = Field(ge=0, le=1000)
    label: Literal["a", "b"]


Boxes = Annotated[list[Box], Field(max_length=3)]


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Every test here runs tiny models on one thread (see tests/conftest.py)."""


def load(folder: Path, family: str) -> tuple[Any, Any]:
    """The model and processor (the tokenizer for llama) of a tiny model folder."""
    import transformers as tf

    processor = load_processor(folder)
    auto: Any = tf.AutoModelForCausalLM if family == "llama" else tf.AutoModelForImageTextToText
    model = auto.from_pretrained(folder, local_files_only=True)
    model.eval()
    return model, processor


def page_image() -> Any:
    from PIL import Image

    img = Image.new("RGB", (64, 48), "white")
    img.paste((0, 0, 0), (10, 10, 30, 20))
    return img


def prompt_inputs(family: str, processor: Any) -> dict[str, Any]:
    """Model inputs for one image and :data:`PROMPT`, the way each family expects them."""
    if family == "llama":
        text = processor.apply_chat_template(
            [{"role": "user", "content": PROMPT}], add_generation_prompt=True, tokenize=False
        )
        return dict(processor(text, return_tensors="pt", add_special_tokens=False))
    if family == "paligemma":  # raw prompt: image tokens, then the processor adds BOS and a trailing "\n"
        text = "<image>" + PROMPT
    elif family == "florence2":  # raw prompt: the processor wraps it as <image>... <s>prompt</s>
        text = PROMPT
    else:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True)
    if family == "paligemma":
        # PaliGemma's processor builds training labels with np.array(input_ids), which warns
        # (DeprecationWarning, an error under pytest) on torch tensors: ask for numpy and convert.
        batch = processor(images=[page_image()], text=[text], return_tensors="np")
        batch.pop("labels")
        return {k: torch.from_numpy(v) for k, v in batch.items()}
    return dict(processor(images=[page_image()], text=[text], return_tensors="pt"))


def generate(model: Any, tokenizer: Any, inputs: dict[str, Any], constraint: Any, seed: int) -> list[int]:
    """Sample once under ``constraint``; the new token ids."""
    extra: dict[str, Any] = {}
    start = inputs["input_ids"].shape[1]
    if model.config.is_encoder_decoder:  # Florence-2 answers "</s><s>answer</s>": prime the decoder with "</s><s>"
        prime = [model.generation_config.decoder_start_token_id, tokenizer.bos_token_id]
        extra["decoder_input_ids"] = torch.tensor([prime])
        start = len(prime)
    torch.manual_seed(seed)
    out = model.generate(
        **inputs,
        **extra,
        logits_processor=[logits_processor(constraint, tokenizer)],
        max_new_tokens=constraint.max_new_tokens,
        do_sample=True,
    )
    ids: list[int] = out[0, start:].tolist()
    return ids


@pytest.mark.parametrize("family", FAMILIES)
def test_constrained_sampling_always_parses(family: str, tiny_model: Callable[[str], Path]) -> None:
    model, processor = load(tiny_model(family), family)
    tokenizer = getattr(processor, "tokenizer", processor)
    assert processor_is_complete(processor) is (family != "llama")
    inputs = prompt_inputs(family, processor)
    if family != "llama":
        image_id = model.config.image_token_id
        assert int((inputs["input_ids"] == image_id).sum()) == image_tokens(family)
    c = compile_output_type(Boxes)
    values = []
    for seed in SEEDS:
        ids = generate(model, tokenizer, inputs, c, seed)
        assert ids[-1] == tokenizer.eos_token_id, f"no EOS within {c.max_new_tokens} tokens"
        values.append(c.parse(tokenizer.decode(ids, skip_special_tokens=True)))
    assert all(isinstance(v, list) and len(v) <= 3 and all(b.label in ("a", "b") for b in v) for v in values)
    assert len({repr(v) for v in values}) > 10  # the seeds really gave different samples


@pytest.mark.parametrize("family", IMAGE_FAMILIES)
def test_processor_round_trips_under_the_stock_class_name(family: str, tiny_model: Callable[[str], Path]) -> None:
    folder = tiny_model(family)
    saved = json.loads((folder / "processor_config.json").read_text())["processor_class"]
    assert not saved.startswith("ImageOnly")
    processor = load_processor(folder)
    assert processor_is_complete(processor)
    assert type(processor).__name__ in (saved, "ImageOnly" + saved)


def _copy_without_processor_class(src: Path, dst: Path) -> Path:
    """A copy of a model folder whose files do not name their processor class."""
    shutil.copytree(src, dst)
    for name in ("processor_config.json", "tokenizer_config.json"):
        data = json.loads((dst / name).read_text())
        data.pop("processor_class", None)
        (dst / name).write_text(json.dumps(data))
    return dst


def test_registration_makes_auto_processor_use_the_image_only_twin(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    import transformers

    auto: Any = transformers.AutoProcessor
    folder = _copy_without_processor_class(tiny_model("qwen2_vl"), tmp_path / "qwen2_vl")
    processor = load_processor(folder)  # registers the twin for Qwen2VLConfig in this process
    assert type(processor).__name__ == "ImageOnlyQwen2VLProcessor"
    again = auto.from_pretrained(folder, local_files_only=True)
    assert type(again) is type(processor)


def test_image_only_processor_pickles_and_saves_as_the_stock_class(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    processor = load_processor(tiny_model("smolvlm"))
    clone = pickle.loads(pickle.dumps(processor))
    assert type(clone) is type(processor) and clone.image_seq_len == processor.image_seq_len == 4
    clone.save_pretrained(tmp_path)
    for name in ("processor_config.json", "tokenizer_config.json"):
        assert json.loads((tmp_path / name).read_text())["processor_class"] == "SmolVLMProcessor"


def test_text_only_folder_gives_its_tokenizer(tiny_model: Callable[[str], Path]) -> None:
    tokenizer = load_processor(tiny_model("llama"))
    assert not processor_is_complete(tokenizer)
    assert tokenizer.eos_token == "<|im_end|>"


def test_missing_folder_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model folder") as info:
        load_processor(tmp_path / "nowhere")
    assert info.value.source == str(tmp_path / "nowhere")


def test_folder_without_processor_files_raises_model_error(tiny_model: Callable[[str], Path], tmp_path: Path) -> None:
    folder = tmp_path / "weights-only"
    folder.mkdir()
    shutil.copy(tiny_model("qwen2_vl") / "config.json", folder)
    with pytest.raises(ModelError, match="cannot load the processor") as info:
        load_processor(folder)
    assert info.value.source == str(folder) and info.value.hint


def test_vision_folder_with_only_a_tokenizer_raises_model_error(
    tiny_model: Callable[[str], Path], tmp_path: Path
) -> None:
    folder = tmp_path / "tokenizer-only"
    folder.mkdir()
    src = tiny_model("llava")
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(src / name, folder)
    with pytest.raises(ModelError, match="cannot load the processor"):
        load_processor(folder)


def test_a_silent_fallback_to_the_tokenizer_raises_model_error(
    tiny_model: Callable[[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import transformers

    folder = tiny_model("llava")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", lambda *a, **k: tokenizer)
    with pytest.raises(ModelError, match="without an image processor"):
        load_processor(folder)
