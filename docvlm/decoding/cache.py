"""Cache the slow part of constrained decoding: the outlines-core token index.

Compiling a regex against a tokenizer's vocabulary into an ``outlines_core.Index`` (which token
may follow in which automaton state) takes from milliseconds to seconds per (regex, vocabulary)
pair. This module keeps indexes

* in memory: an LRU of the most recent `MEMORY_ENTRIES`, keyed by
  ``sha256(regex)`` + the vocabulary fingerprint;
* on disk: outlines-core 0.2 serializes an ``Index`` to bytes (``Index.__reduce__`` /
  ``Index.from_binary``); files live under ``$DOCVLM_CACHE_DIR`` (default
  ``~/.cache/docvlm/constraints``), one folder per outlines-core version and vocabulary.
  Setting ``DOCVLM_CACHE_DIR`` to an empty string turns the disk cache off. Files are written
  atomically; an unreadable file is rebuilt and replaced.

outlines-core is imported only when an index or vocabulary is actually built.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import re
import tempfile
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docvlm.errors import ConstraintError, UsageError

if TYPE_CHECKING:
    from ._compile import CompiledConstraint

__all__ = [
    "MEMORY_ENTRIES",
    "TokenizerVocabulary",
    "cache_dir",
    "clear_memory_cache",
    "get_index",
    "vocabulary_from_tokenizer",
]

#: How many indexes the in-memory LRU keeps.
MEMORY_ENTRIES = 16

_ENV = "DOCVLM_CACHE_DIR"
_SPIECE_SPACE = "\u2581"
_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@dataclass(frozen=True, eq=False)
class TokenizerVocabulary:
    """A tokenizer's vocabulary as outlines-core sees it (token ids -> the bytes they decode to).

    Attributes:
        vocabulary: the ``outlines_core.Vocabulary``.
        fingerprint: hex sha256 of the EOS id and every (bytes, ids) pair; equal vocabularies
            from different tokenizer objects share cache entries.
        eos_token_id: the id that ends generation (allowed only in accepting states).
        size: one more than the largest token id.
    """

    vocabulary: Any
    fingerprint: str
    eos_token_id: int
    size: int


def _bytes_to_unicode() -> dict[str, int]:
    """GPT-2's byte-level alphabet, inverted: printable stand-in character -> byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


_BYTE_DECODER = _bytes_to_unicode()


def _decoder_kind(tokenizer: Any) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = getattr(backend, "decoder", None)
    if decoder is None:
        return "other"
    state = decoder.__getstate__()
    text = state.decode() if isinstance(state, bytes) else str(state)
    if '"ByteLevel"' in text:
        return "byte_level"
    if _SPIECE_SPACE in text or "ByteFallback" in text or "Metaspace" in text:
        return "sentencepiece"
    return "other"


def _token_to_bytes(token: str, kind: str, tokenizer: Any) -> bytes:
    if kind == "byte_level" and all(ch in _BYTE_DECODER for ch in token):
        return bytes(_BYTE_DECODER[ch] for ch in token)
    if kind == "sentencepiece":
        m = _BYTE_FALLBACK.fullmatch(token)
        if m:
            return bytes([int(m.group(1), 16)])
        return token.replace(_SPIECE_SPACE, " ").encode()
    if kind == "byte_level":
        return token.encode()  # an added token stored as plain text
    text = str(tokenizer.convert_tokens_to_string([token]))
    if token.startswith(_SPIECE_SPACE) and not text.startswith(" "):
        text = " " + text
    return text.encode()


_VOCABS: weakref.WeakKeyDictionary[Any, tuple[int, TokenizerVocabulary]] = weakref.WeakKeyDictionary()
_VOCABS_LOCK = threading.Lock()


def vocabulary_from_tokenizer(tokenizer: Any) -> TokenizerVocabulary:
    """Build (or reuse) the outlines-core vocabulary of a transformers tokenizer.

    Tokens map to the exact bytes they decode to: GPT-2 byte-level BPE through the byte
    alphabet (so a token may be half a UTF-8 character), SentencePiece through ``▁`` -> space and
    ``<0xNN>`` byte fallback, anything else through ``convert_tokens_to_string``. Special tokens
    other than EOS and tokens that decode to nothing are left out, so they can never be chosen
    under a constraint. The result is remembered per tokenizer object.

    Args:
        tokenizer: a ``transformers`` tokenizer (fast tokenizers are read most precisely).

    Returns:
        The vocabulary with its fingerprint.

    Raises:
        UsageError: if the tokenizer has no EOS token.
    """
    with _VOCABS_LOCK:
        try:
            memo = _VOCABS.get(tokenizer)
        except TypeError:  # not weak-referenceable
            memo = None
        if memo is not None and memo[0] == len(tokenizer):
            return memo[1]
    eos = tokenizer.eos_token_id
    if eos is None:
        raise UsageError("the tokenizer has no eos_token_id: constrained generation could never stop")
    kind = _decoder_kind(tokenizer)
    special = set(tokenizer.all_special_ids)
    added = {int(i): str(t) for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items()}
    table: dict[bytes, list[int]] = {}
    size = 0
    for token, token_id in tokenizer.get_vocab().items():
        size = max(size, token_id + 1)
        if token_id == eos or token_id in special:
            continue
        data = token.encode() if token_id in added else _token_to_bytes(token, kind, tokenizer)
        if data:
            table.setdefault(data, []).append(token_id)
    digest = hashlib.sha256(f"eos={eos};".encode())
    for data in sorted(table):
        digest.update(len(data).to_bytes(4, "little") + data + repr(sorted(table[data])).encode())
    result = TokenizerVocabulary(_outlines_core().Vocabulary(eos, table), digest.hexdigest(), int(eos), size)
    with _VOCABS_LOCK, contextlib.suppress(TypeError):
        _VOCABS[tokenizer] = (len(tokenizer), result)
    return result


def _outlines_core() -> Any:
    from docvlm._optional import require

    return require("outlines_core", "local", purpose="constrained decoding with a local model")


def cache_dir() -> Path | None:
    """Where indexes are stored on disk, or ``None`` when the disk cache is off.

    Returns:
        ``constraints/`` in docvlm's cache folder: ``$DOCVLM_CACHE_DIR`` if set (``None``, no disk cache, if it
        is set to an empty string), else ``~/.cache/docvlm``.
    """
    value = os.environ.get(_ENV)
    if value is None:
        return Path.home() / ".cache" / "docvlm" / "constraints"
    return Path(value).expanduser() / "constraints" if value else None


_MEMORY: OrderedDict[tuple[str, str], Any] = OrderedDict()
_MEMORY_LOCK = threading.Lock()


def clear_memory_cache() -> None:
    """Forget every index held in memory (files on disk stay)."""
    with _MEMORY_LOCK:
        _MEMORY.clear()


def _core_version() -> str:
    try:
        return importlib.metadata.version("outlines_core")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _disk_path(root: Path, regex_key: str, vocabulary: TokenizerVocabulary) -> Path:
    return root / f"outlines_core-{_core_version()}" / vocabulary.fingerprint[:32] / f"{regex_key}.index"


def _load(path: Path) -> Any | None:
    Index = _outlines_core().Index

    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        return Index.from_binary(data)
    except Exception:  # a truncated or foreign file: rebuild it
        return None


def _store(path: Path, index: Any) -> None:
    try:
        reduced = index.__reduce__()
        data = reduced[1][0]
        if not isinstance(data, bytes):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".index")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        return  # a read-only or full cache folder must not break generation


def get_index(
    regex: str | CompiledConstraint[Any],
    vocabulary: TokenizerVocabulary,
    *,
    disk: bool = True,
) -> Any:
    """The outlines-core ``Index`` of a regex over a vocabulary, from cache when possible.

    Lookup order: memory LRU, then the disk cache (see [`cache_dir`][docvlm.decoding.cache_dir]), then a fresh build
    (stored in both).

    Args:
        regex: the regular expression, or a compiled constraint (its ``regex`` is used).
        vocabulary: from [`vocabulary_from_tokenizer`][docvlm.decoding.vocabulary_from_tokenizer].
        disk: use the disk cache (when [`cache_dir`][docvlm.decoding.cache_dir] is not ``None``).

    Returns:
        An ``outlines_core.Index``.

    Raises:
        ConstraintError: if outlines-core cannot build an index for the regex.
    """
    pattern = regex if isinstance(regex, str) else regex.regex
    regex_key = hashlib.sha256(pattern.encode()).hexdigest()
    key = (vocabulary.fingerprint, regex_key)
    with _MEMORY_LOCK:
        index = _MEMORY.get(key)
        if index is not None:
            _MEMORY.move_to_end(key)
            return index
    root = cache_dir() if disk else None
    path = _disk_path(root, regex_key, vocabulary) if root is not None else None
    index = _load(path) if path is not None and path.exists() else None
    if index is None:
        try:
            index = _outlines_core().Index(pattern, vocabulary.vocabulary)
        except Exception as exc:
            shown = pattern if len(pattern) <= 120 else pattern[:117] + "..."
            raise ConstraintError(f"outlines-core cannot build an index for {shown!r}: {exc}") from exc
        if path is not None:
            _store(path, index)
    with _MEMORY_LOCK:
        _MEMORY[key] = index
        while len(_MEMORY) > MEMORY_ENTRIES:
            _MEMORY.popitem(last=False)
    return index
