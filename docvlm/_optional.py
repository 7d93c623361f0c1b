"""Optional dependencies: import one lazily, or raise [`MissingDependencyError`][docvlm.errors.MissingDependencyError] naming its extra.

Every function that needs a package outside docvlm's slim core calls `require` (or lets an
``ImportError`` of its own reach `missing`) so that a user without the package gets one line that says
which extra installs it, never a traceback from deep inside an import::

    torch = require("torch", "local", purpose="local models")
"""

from __future__ import annotations

import importlib
from types import ModuleType

from docvlm.errors import MissingDependencyError

__all__ = ["EXTRAS", "missing", "require"]

#: Which extra installs each optional top-level module (the distribution name where it differs).
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("torch", "local"),
    "transformers": ("transformers", "local"),
    "accelerate": ("accelerate", "local"),
    "gguf": ("gguf", "local"),
    "outlines": ("outlines", "local"),
    "outlines_core": ("outlines-core", "local"),
    "llama_cpp": ("llama-cpp-python", "llamacpp"),
    "onnxruntime_genai": ("onnxruntime-genai", "fast"),
    "onnx": ("onnx", "fast"),
    "onnx_ir": ("onnx-ir", "fast"),
    "numba": ("numba", "llamacpp"),
    "langchain_core": ("langchain-core", "langchain"),
    "mcp": ("mcp", "mcp"),
    "playwright": ("playwright", "web"),
    "ray": ("ray", "ray"),
    "pandas": ("pandas", "pandas"),
    "supervision": ("supervision", "supervision"),
    "starlette": ("starlette", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "rapidocr": ("rapidocr", "ocr"),
    "trl": ("trl", "finetune"),
    "peft": ("peft", "finetune"),
    "datasets": ("datasets", "finetune"),
}


def missing(exc: ImportError, *, purpose: str, default: str, extra: str | None = None) -> MissingDependencyError:
    """The [`MissingDependencyError`][docvlm.errors.MissingDependencyError] for an ``ImportError`` raised while importing an optional package.

    Args:
        exc: the import error; its ``name`` (the module that was not found) picks the package and extra.
        purpose: what needed it ("local models", "LangChain tools", ...).
        default: the top-level module to name when ``exc`` does not say which one is missing.
        extra: the extra to name, when the caller knows better than `EXTRAS`.
    """
    top = (exc.name or default).split(".")[0]
    package, known_extra = EXTRAS.get(top, (top, extra or EXTRAS.get(default, (default, "all"))[1]))
    return MissingDependencyError(package, extra or known_extra, purpose=purpose)


def require(module: str, extra: str, *, purpose: str) -> ModuleType:
    """Import ``module``, or raise [`MissingDependencyError`][docvlm.errors.MissingDependencyError] saying ``pip install 'docvlm[extra]'``.

    Args:
        module: the module to import (``"torch"``, ``"langchain_core.tools"``).
        extra: the docvlm extra that installs it.
        purpose: what needs it, for the message.

    Raises:
        MissingDependencyError: the module (or one it needs) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing(exc, purpose=purpose, default=module, extra=extra) from exc
