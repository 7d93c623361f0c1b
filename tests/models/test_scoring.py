"""Model.score: summed log-probabilities of continuations, on tiny random models, the fakes and a server client.

The reference for every local score is a plain forward pass over the full token sequence (prompt, assistant
prefix, continuation) with no cache: the packed, cached computation must give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import docvlm as dv
from docvlm.models._scoring import continuation_tokens
from docvlm.models.transformers import TransformersModel

torch = pytest.importorskip("torch")

PROMPT = "Find the total on the page.\nTotal: 1000 Date: 10 table 100"
CANDIDATES = ["100", "1000", "10 table", "total", "", "{\"x0\":1,\"label\":\"title\"}", " page"]


@pytest.fixture(autouse=True)
def one_thread(torch_one_thread: None) -> None:
    """Tiny models run on one thread (see tests/conftest.py)."""


@pytest.fixture(scope="module")
def llama(tiny_model: Callable[[str], Path]) -> TransformersModel:
    model = dv.load_model(f"transformers:{tiny_model('llama')}")
    assert isinstance(model, TransformersModel)
    return model


def reference(model: TransformersModel, prompt: str, continuation: str, assistant_prefix: str = "") -> float:
    """log P(continuation | templated prompt + prefix) from one uncached forward pass over the whole sequence."""
    text = model._prompt(dv.models.to_messages(prompt))[0] + assistant_prefix
    prefix = model._encode(text)
    cont = continuation_tokens(model._encode, model._decode, text, prefix, continuation)
    ids = torch.tensor([prefix + cont])
    with torch.inference_mode():
        logits = model.model(input_ids=ids, use_cache=False).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    return sum(float(logprobs[len(prefix) + k - 1, t]) for k, t in enumerate(cont))


def test_scores_equal_a_plain_forward_pass(llama: TransformersModel) -> None:
    llama._prefix = None
    scores = llama.score(PROMPT, CANDIDATES, assistant_prefix='{"total": "')
    expected = [reference(llama, PROMPT, c, '{"total": "') for c in CANDIDATES]
    assert scores == pytest.approx(expected, abs=1e-4)
    assert scores[CANDIDATES.index("")] == 0.0
    assert all(s < 0 for c, s in zip(CANDIDATES, scores, strict=True) if c)
    # a longer continuation that extends a shorter one can only lose probability mass
    assert scores[1] < scores[0]


def test_kv_reuse_gives_the_numbers_of_no_reuse(llama: TransformersModel) -> None:
    page = "Document:\nInvoice 1000 total 100 date 10\n\n"
    questions = [page + "What is the total?", page + "What is the date?", page + "What is the title?"]
    cold = []
    for q in questions:
        llama._prefix = None  # no reuse: every prefix prefilled from scratch
        cold.append(llama.score(q, CANDIDATES))
    llama._prefix = None
    warm = [llama.score(q, CANDIDATES) for q in questions]  # the page's tokens prefilled once
    assert warm == [pytest.approx(c, abs=1e-4) for c in cold]
    # the cache kept the shared page prefix: after the last call it holds that question's tokens exactly
    assert llama._prefix is not None
    assert llama._prefix.cache.get_seq_length() == len(llama._prefix.ids)
    # and the same prompt again is served from the cache with the same numbers
    assert llama.score(questions[-1], CANDIDATES) == pytest.approx(cold[-1], abs=1e-4)


def test_reuse_prefills_only_the_tokens_after_the_shared_prefix(llama: TransformersModel,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    page = "Document:\n" + "table total 100 1000 date 10 " * 20
    llama._prefix = None
    llama.score(page + "\nWhat is the total?", ["100"])
    llama._forward_kwargs()  # read the real signature before forward is wrapped
    fed: list[int] = []
    forward = llama.model.forward

    def counting(*args: Any, **kwargs: Any) -> Any:
        fed.append(int(kwargs["input_ids"].shape[1]))
        return forward(*args, **kwargs)

    monkeypatch.setattr(llama.model, "forward", counting)
    llama.score(page + "\nWhat is the date?", ["100", "10"])
    full = len(llama._encode(llama._prompt(dv.models.to_messages(page + "\nWhat is the date?"))[0]))
    assert fed and fed[0] < 20 < full  # only the question's tail went through the model again


def test_the_boundary_token_is_scored_as_the_model_generates_it(llama: TransformersModel) -> None:
    """'tot' + 'al': the joint text tokenizes with 'total' as one token, which would swallow the prefix's last
    token. The prefix's tokens are what the model saw; the continuation is scored as its own tokens after them."""
    encode, decode = llama._encode, llama._decode
    prefix_text = "Find: tot"
    prefix = encode(prefix_text)
    joint = encode(prefix_text + "al")
    assert joint[:len(prefix)] != prefix  # the merge this test is about really happens in this vocabulary
    cont = continuation_tokens(encode, decode, prefix_text, prefix, "al")
    assert decode(prefix + cont) == prefix_text + "al"
    assert cont == encode("al") or decode(cont) == "al"
    llama._prefix = None
    got = llama.score("Q", ["al"], assistant_prefix="tot")
    assert got == pytest.approx([reference(llama, "Q", "al", "tot")], abs=1e-4)


def test_no_merge_keeps_the_joint_split(llama: TransformersModel) -> None:
    encode, decode = llama._encode, llama._decode
    prefix_text = 'Answer: {"total": "'
    prefix = encode(prefix_text)
    joint = encode(prefix_text + "1000")
    assert joint[:len(prefix)] == prefix
    assert continuation_tokens(encode, decode, prefix_text, prefix, "1000") == joint[len(prefix):]


def test_many_continuations_are_split_into_chunks(llama: TransformersModel, monkeypatch: pytest.MonkeyPatch) -> None:
    from docvlm.models import transformers as backend

    monkeypatch.setattr(backend, "SCORE_CHUNK_TOKENS", 4)
    llama._prefix = None
    chunked = llama.score(PROMPT, CANDIDATES)
    expected = [reference(llama, PROMPT, c) for c in CANDIDATES]
    assert chunked == pytest.approx(expected, abs=1e-4)


def test_bad_arguments_are_typed_errors(llama: TransformersModel) -> None:
    assert llama.supports_scoring
    with pytest.raises(dv.UsageError, match="list of strings"):
        llama.score("Q", "100")  # type: ignore[arg-type]
    assert llama.score("Q", []) == []


@pytest.mark.slow
@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "idefics3", "smolvlm", "llava"])
def test_vision_language_models_score_text_prompts_exactly(family: str, tiny_model: Callable[[str], Path]) -> None:
    model = dv.load_model(f"transformers:{tiny_model(family)}")
    assert isinstance(model, TransformersModel) and model.supports_scoring
    got = model.score(PROMPT, CANDIDATES[:3], assistant_prefix='{"total": "')
    assert got == pytest.approx([reference(model, PROMPT, c, '{"total": "') for c in CANDIDATES[:3]], abs=1e-4)
    page = dv.open(dv.samples.invoice_pdf())[0]
    with pytest.raises(dv.UsageError, match="images"):
        model.score(["What is the total?", page.render(dpi=20)], ["1"])


@pytest.mark.parametrize("family", ["florence2", "paligemma"])
def test_scoring_is_refused_where_the_backend_cannot(family: str, tiny_model: Callable[[str], Path]) -> None:
    model = dv.load_model(f"transformers:{tiny_model(family)}")
    assert not model.supports_scoring
    with pytest.raises(dv.ScoringNotSupportedError, match="cannot score"):
        model.score("Q", ["a"])


def test_openai_backend_says_it_cannot_score() -> None:
    from docvlm.models.openai import OpenAIModel

    model = OpenAIModel.from_spec("m@http://127.0.0.1:9/v1")
    assert not model.supports_scoring
    with pytest.raises(dv.ScoringNotSupportedError) as info:
        model.score("Q", ["a", "b"])
    assert isinstance(info.value, dv.ModelError) and "supports_scoring" in str(info.value)


def test_test_model_scores_are_seeded_and_deterministic() -> None:
    a, b, other = dv.TestModel(seed=1), dv.TestModel(seed=1), dv.TestModel(seed=2)
    assert a.supports_scoring
    first = a.score("What is the total?", ["12.50", "3.00", ""], assistant_prefix='{"total": "')
    assert first == b.score("What is the total?", ["12.50", "3.00", ""], assistant_prefix='{"total": "')
    assert first != other.score("What is the total?", ["12.50", "3.00", ""], assistant_prefix='{"total": "')
    assert first[2] == 0.0 and first[0] < 0 and first[1] < 0
    # a score depends on its own continuation only, not on the others in the call
    assert a.score("What is the total?", ["3.00"], assistant_prefix='{"total": "') == [first[1]]
    assert a.requests == [] and a.score_requests[-1].continuations == ["3.00"]


def test_test_model_scripted_scores() -> None:
    model = dv.TestModel(scores={"12.50": -0.1})
    got = model.score("Q", ["3.00", "12.50"])
    assert got == [dv.TestModel().score("Q", ["3.00"])[0], -0.1]
    with pytest.raises(dv.UsageError, match="scores"):
        dv.TestModel(scores={"a": 0.5})  # a log-probability is never positive


def test_function_model_scores_with_its_function() -> None:
    seen: list[tuple[str, list[str], str]] = []

    def scorer(messages: list[dv.Message], continuations: list[str], assistant_prefix: str) -> list[float]:
        seen.append((messages[-1].text, continuations, assistant_prefix))
        return [-float(len(c)) for c in continuations]

    model = dv.FunctionModel(lambda messages, info: "x", scorer=scorer)
    assert model.supports_scoring
    assert model.score("Q?", ["ab", "abcd"], assistant_prefix="p") == [-2.0, -4.0]
    assert seen == [("Q?", ["ab", "abcd"], "p")]
    plain = dv.FunctionModel(lambda messages, info: "x")
    assert not plain.supports_scoring
    with pytest.raises(dv.ScoringNotSupportedError):
        plain.score("Q", ["a"])


def test_function_model_scorer_must_return_one_score_each() -> None:
    model = dv.FunctionModel(lambda m, i: "x", scorer=lambda m, c, p: [0.0])
    with pytest.raises(dv.ModelError, match="2 continuations"):
        model.score("Q", ["a", "b"])
