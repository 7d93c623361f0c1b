"""Tiny random-weight VLMs of each supported family, built once and cached on disk.

``tiny_model(family)`` returns the folder of a model built by :func:`tests.models.tiny.build_tiny`.
Folders are cached

* in the session (a family is built at most once, and only when a test asks for it);
* across sessions under ``$DOCVLM_TEST_CACHE`` (default ``.cache/tiny-models`` in the repository
  root), in a folder named by a hash of ``tiny.py``'s source and the transformers version, so a
  change to the builder or an upgrade rebuilds, and nothing else does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from . import tiny

_ROOT = Path(__file__).resolve().parents[2]


def cache_key() -> str:
    """A short hash of the builder's source and the transformers version."""
    import transformers

    digest = hashlib.sha256(Path(tiny.__file__).read_bytes())
    digest.update(transformers.__version__.encode())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """Where built models persist between sessions (``$DOCVLM_TEST_CACHE`` or ``.cache/tiny-models``)."""
    value = os.environ.get("DOCVLM_TEST_CACHE")
    return Path(value).expanduser() if value else _ROOT / ".cache" / "tiny-models"


def _build_cached(family: str, root: Path) -> Path:
    folder = root / family
    if (folder / "config.json").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)  # a half-written folder from an interrupted run
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / f".{family}-{uuid.uuid4().hex[:8]}"  # build aside, then rename: no half-written folder
    try:
        tiny.build_tiny(family, scratch)
        try:
            scratch.rename(folder)
        except OSError:  # another process finished the same family first
            if not (folder / "config.json").exists():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A factory: ``tiny_model("qwen2_vl")`` -> the folder of that family's tiny model."""
    try:
        root = cache_root() / cache_key()
        root.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only checkout: cache in this session only
        root = tmp_path_factory.mktemp("tiny-models")
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in built:
            built[family] = _build_cached(family, root)
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_models(tiny_model: Callable[[str], Path]) -> dict[str, Path]:
    """Every family's tiny model folder (builds whatever is not cached yet)."""
    return {family: tiny_model(family) for family in tiny.FAMILIES}
