"""End to end: a tiny random-weight Llama sampling under the constraint always yields valid output."""

from __future__ import annotations

from typing import Any

import pytest

from docvlm.decoding import Limits, compile_output_type, logits_processor
from docvlm.errors import ConstraintError

from .schemas import Box, Boxes, Invoice, ToolCall

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Every test here runs tiny models on one thread (see tests/conftest.py)."""


def _generate(model: Any, tokenizer: Any, processor: Any, seed: int, max_new_tokens: int) -> tuple[str, list[int]]:
    inputs = tokenizer("Boxes:", return_tensors="pt")
    torch.manual_seed(seed)
    out = model.generate(
        **inputs,
        do_sample=True,
        max_new_tokens=max_new_tokens,
        logits_processor=[processor],
        pad_token_id=tokenizer.pad_token_id,
    )
    new = out[0, inputs["input_ids"].shape[1] :].tolist()
    return tokenizer.decode(new, skip_special_tokens=True), new


@pytest.mark.parametrize("tp", [Box, Boxes, ToolCall], ids=["box", "boxes", "tool_call"])
def test_sampling_always_parses(tp: Any, tiny_llama: Any, tokenizer: Any) -> None:
    c = compile_output_type(tp)
    processor = logits_processor(c, tokenizer)  # one processor reused across generate calls
    values = []
    for seed in range(20):
        text, ids = _generate(tiny_llama, tokenizer, processor, seed, c.max_new_tokens)
        assert ids[-1] == tokenizer.eos_token_id, f"no EOS within max_new_tokens: {text!r}"
        assert len(ids) <= c.max_new_tokens
        assert len(text) <= c.max_chars
        values.append(c.parse(text))
    assert len({repr(v) for v in values}) > 10  # sampling really varied the output
    if tp is Box:
        assert all(0 <= b.x0 <= 1000 and b.label in ("a", "b") for b in values)


def test_truncated_output_raises(tiny_llama: Any, tokenizer: Any) -> None:
    c = compile_output_type(Boxes)
    text, ids = _generate(tiny_llama, tokenizer, logits_processor(c, tokenizer), 0, 8)
    assert len(ids) == 8 and ids[-1] != tokenizer.eos_token_id
    with pytest.raises(ConstraintError, match="cut off"):
        c.parse(text)


def test_batched_rows_each_follow_the_constraint(
    tiny_llama: Any, tokenizer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = compile_output_type(Box)
    monkeypatch.setattr(tokenizer, "padding_side", "left")
    inputs = tokenizer(["Box:", "A longer prompt, then a box:", "x"], return_tensors="pt", padding=True)
    torch.manual_seed(1)
    out = tiny_llama.generate(
        **inputs,
        do_sample=True,
        max_new_tokens=c.max_new_tokens,
        logits_processor=[logits_processor(c, tokenizer)],
        pad_token_id=tokenizer.pad_token_id,
    )
    texts = tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    boxes = [c.parse(t) for t in texts]
    assert len(boxes) == 3 and all(isinstance(b, Box) for b in boxes)


class _Repeat:
    """A logits processor that makes one token win wherever the constraint allows it: a model stuck in a loop."""

    def __init__(self, token_id: int) -> None:
        self.token_id = token_id

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        scores[:, self.token_id] += 1e4  # -inf (masked) stays -inf
        return scores


def test_a_runaway_string_is_cut_at_the_budget(tiny_llama: Any, tokenizer: Any) -> None:
    c = compile_output_type(Invoice, limits=Limits(max_string_chars=8, max_list_items=2))
    assert not c.exact
    inputs = tokenizer("Invoice:", return_tensors="pt")
    a = tokenizer.convert_tokens_to_ids("a")
    out = tiny_llama.generate(
        **inputs,
        do_sample=False,
        max_new_tokens=c.max_new_tokens,
        logits_processor=[logits_processor(c, tokenizer), _Repeat(a)],
        pad_token_id=tokenizer.pad_token_id,
    )
    ids = out[0, inputs["input_ids"].shape[1] :].tolist()
    text = tokenizer.decode(ids, skip_special_tokens=True)
    assert len(ids) == c.max_new_tokens and ids[-1] == a
    assert text.startswith('{"vendor":"') and text.endswith("a" * 100)  # stuck inside the vendor string
    assert c.is_prefix(text)  # the constraint held up to the cut
    with pytest.raises(ConstraintError, match="cut off at the budget") as info:
        c.parse(text)
    assert "output.vendor (str, 8 chars)" in str(info.value) and "max_string_chars" in (info.value.hint or "")
