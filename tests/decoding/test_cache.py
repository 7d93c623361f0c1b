"""Vocabulary bytes, index building for every representative type, memory and disk caching."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import outlines_core
import pytest

from docvlm.decoding import (
    cache_dir,
    clear_memory_cache,
    compile_output_type,
    get_index,
    logits_processor,
    vocabulary_from_tokenizer,
)
from docvlm.decoding.cache import _token_to_bytes
from docvlm.errors import ConstraintError, UsageError

from .schemas import JSON_TYPES, OTHER_TYPES, Box, Invoice

BOX = '{"x0":12,"y0":1000,"x1":5,"y1":999,"label":"a"}'


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "constraints"
    monkeypatch.setenv("DOCVLM_CACHE_DIR", str(root))
    clear_memory_cache()
    return root


@pytest.mark.parametrize(
    ("token", "kind", "data"),
    [
        ("Ġ{", "byte_level", b" {"),
        ("Ã©", "byte_level", "é".encode()),
        ("Ã", "byte_level", b"\xc3"),  # half of a character
        ("<image>", "byte_level", b"<image>"),  # an added token kept as text
        ("▁{", "sentencepiece", b" {"),
        ("<0x0A>", "sentencepiece", b"\n"),
        ("▁▁", "sentencepiece", b"  "),
    ],
)
def test_token_bytes(token: str, kind: str, data: bytes) -> None:
    assert _token_to_bytes(token, kind, None) == data


def test_vocabulary_matches_what_the_tokenizer_decodes(tokenizer: Any) -> None:
    vocab = vocabulary_from_tokenizer(tokenizer)
    assert vocab is vocabulary_from_tokenizer(tokenizer)  # remembered per tokenizer
    assert vocab.eos_token_id == tokenizer.eos_token_id
    assert vocab.size == len(tokenizer)
    assert len(vocab.fingerprint) == 64
    checked = 0
    for token, token_id in tokenizer.get_vocab().items():
        if token_id in tokenizer.all_special_ids:
            assert vocab.vocabulary.get(token) is None
            continue
        data = _token_to_bytes(token, "byte_level", tokenizer)
        assert token_id in (vocab.vocabulary.get(data) or [])
        try:
            text = data.decode()
        except UnicodeDecodeError:
            continue
        assert tokenizer.decode([token_id]) == text
        checked += 1
    assert checked > 400


@pytest.mark.parametrize("name", sorted({**JSON_TYPES, **OTHER_TYPES}))
def test_outlines_core_builds_every_regex(name: str, tokenizer: Any) -> None:
    """The regexes must mean the same to Rust (outlines-core) as to Python."""
    c = compile_output_type({**JSON_TYPES, **OTHER_TYPES}[name])
    index = get_index(c, vocabulary_from_tokenizer(tokenizer), disk=False)
    assert index.get_initial_state() is not None


def _walk(index: Any, ids: list[int]) -> bool:
    guide = outlines_core.Guide(index)
    if not guide.accepts_tokens(ids):
        return False
    for token in ids:
        guide.advance(token, return_tokens=False)
    return bool(guide.is_finished())


def test_index_follows_the_regex(tokenizer: Any) -> None:
    index = get_index(compile_output_type(Box), vocabulary_from_tokenizer(tokenizer))
    assert _walk(index, tokenizer.encode(BOX))
    assert not _walk(index, tokenizer.encode(BOX.replace("1000", "1001")))
    assert not _walk(index, tokenizer.encode(BOX[:-1]))  # not final: EOS is not allowed yet
    assert not _walk(index, tokenizer.encode(BOX.replace(",", ", ")))


def test_memory_cache_returns_the_same_index(tokenizer: Any) -> None:
    """A second lookup is a memory hit (the very same object); its speed is measured in bench/decoding.py."""
    vocab = vocabulary_from_tokenizer(tokenizer)
    regex = compile_output_type(JSON_TYPES["region"]).regex
    first = get_index(regex, vocab, disk=False)
    for _ in range(5):
        assert get_index(regex, vocab, disk=False) is first


def test_disk_cache_round_trip(tokenizer: Any, isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_dir() == isolated_cache / "constraints"
    vocab = vocabulary_from_tokenizer(tokenizer)
    c = compile_output_type(JSON_TYPES["boxes"])
    built = get_index(c, vocab)
    files = list(isolated_cache.rglob("*.index"))
    assert [f.name for f in files] == [f"{c.key}.index"]
    assert vocab.fingerprint[:32] in str(files[0])

    clear_memory_cache()
    real = outlines_core.Index

    class NoBuild:
        from_binary = staticmethod(real.from_binary)

        def __init__(self, *args: Any) -> None:
            raise AssertionError("the index was rebuilt instead of read from disk")

    monkeypatch.setattr(outlines_core, "Index", NoBuild)
    loaded = get_index(c, vocab)
    assert loaded is not built
    assert loaded.get_transitions() == built.get_transitions()
    assert loaded.get_final_states() == built.get_final_states()

    monkeypatch.setattr(outlines_core, "Index", real)
    files[0].write_bytes(b"garbage")
    clear_memory_cache()
    rebuilt = get_index(c, vocab)
    assert rebuilt.get_transitions() == built.get_transitions()
    assert files[0].read_bytes() != b"garbage"  # replaced


def test_disk_cache_can_be_turned_off(tokenizer: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCVLM_CACHE_DIR", "")
    assert cache_dir() is None
    get_index(compile_output_type(Box), vocabulary_from_tokenizer(tokenizer))
    monkeypatch.delenv("DOCVLM_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir() == tmp_path / ".cache" / "docvlm" / "constraints"


def test_bad_regex_is_a_constraint_error(tokenizer: Any) -> None:
    with pytest.raises(ConstraintError, match="outlines-core"):
        get_index("(?=a)a", vocabulary_from_tokenizer(tokenizer), disk=False)


def test_free_text_gets_no_processor(tokenizer: Any) -> None:
    with pytest.raises(UsageError, match="no logits processor"):
        logits_processor(compile_output_type(str), tokenizer)
    assert logits_processor(compile_output_type(Box), tokenizer) is not None


def test_budgeted_schema_indexes_fast_on_a_49k_vocabulary(tokenizer_49k: Any) -> None:
    """Strings and lists without max_length are open loops: a few hundred automaton states, not thousands."""
    vocab = vocabulary_from_tokenizer(tokenizer_49k)
    c = compile_output_type(Invoice)
    start = time.perf_counter()
    index = get_index(c, vocab, disk=False)
    build = time.perf_counter() - start
    assert build < 5.0, build  # measured 0.2-0.6 s on 2 busy cores (a bounded 128-char version: minutes)
    assert len(index.get_transitions()) < 400
    long = (
        '{"vendor":"ACME, Inc.","items":['
        + ",".join(f'{{"description":"{"line " * 100}{i}","amount":{i}.25}}' for i in range(80))
        + "]}"
    )
    assert len(long) > c.max_chars  # past the budget, still inside the regex
    assert _walk(index, tokenizer_49k.encode(long))
    assert not _walk(index, tokenizer_49k.encode(long.replace('"amount":3.25', '"amount":-3.25')))


def test_a_counted_string_at_the_start_indexes_fast(tokenizer_49k: Any) -> None:
    """``"(?:char){0,40}"|null`` with \\" allowed would take hours (exponential); without it, milliseconds."""
    c = compile_output_type(JSON_TYPES["top_bounded_str"])
    start = time.perf_counter()
    index = get_index(c, vocabulary_from_tokenizer(tokenizer_49k), disk=False)
    assert time.perf_counter() - start < 5.0
    assert _walk(index, tokenizer_49k.encode('"forty characters at most, no quotes"'))
