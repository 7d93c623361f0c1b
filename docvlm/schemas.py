"""Load a user's pydantic schema from ``module:Class`` or ``path/to/file.py:Class`` (the CLI, batch and Ray use it).

>>> from docvlm.schemas import load_schema
>>> load_schema("docvlm.types:BoundingBox").__name__
'BoundingBox'

Every way a schema spec can be wrong (no ``:``, a missing file, a syntax error or an exception while the file
runs, a missing class, something that is not a model, pydantic's ``BaseModel`` itself) is a
[`UsageError`][docvlm.errors.UsageError] of one line that names the file, and the line for a syntax error.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from docvlm.errors import UsageError

__all__ = ["load_schema"]

_FORM = "write module:Class or path/to/file.py:Class"


def _models_in(module: ModuleType) -> list[str]:
    return sorted(name for name, value in vars(module).items()
                  if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel
                  and not name.startswith("_"))


def _exec_file(where: str) -> ModuleType:
    path = Path(where)
    if not path.is_file():
        raise UsageError(f"no schema file {where!r}", hint=_FORM)
    name = path.stem  # the module's name shows in records (batch: "invoice_schema.Invoice")
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", None) or "").resolve() != path.resolve():
        name = f"docvlm_schema_{name}"  # never shadow a module of that name (a schema file called json.py)
    loader_spec = importlib.util.spec_from_file_location(name, path)
    if loader_spec is None or loader_spec.loader is None:  # pragma: no cover - any .py file has a loader
        raise UsageError(f"cannot load the schema file {where!r}", hint=_FORM)
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[loader_spec.name] = module  # dataclasses and pydantic look the module up while the file runs
    try:
        loader_spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(loader_spec.name, None)
        raise UsageError(f"syntax error in the schema file {where}, line {exc.lineno}: {exc.msg}") from None
    except Exception as exc:
        sys.modules.pop(loader_spec.name, None)
        line = _line_in(exc, path)
        raise UsageError(f"the schema file {where} failed{line}: {type(exc).__name__}: {exc}".replace("\n", " ")) from None
    return module


def _line_in(exc: BaseException, path: Path) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return f" at line {frames[-1].lineno}" if frames else ""


def _import(where: str) -> ModuleType:
    try:
        return importlib.import_module(where)
    except ModuleNotFoundError as exc:
        if exc.name and where.startswith(exc.name):
            raise UsageError(f"no module {where!r} to load the schema from", hint=_FORM) from None
        raise UsageError(f"the schema module {where} failed: {type(exc).__name__}: {exc}") from None
    except SyntaxError as exc:
        raise UsageError(f"syntax error in the schema module {where} ({exc.filename}, line {exc.lineno}): {exc.msg}") from None
    except Exception as exc:
        raise UsageError(f"the schema module {where} failed: {type(exc).__name__}: {exc}".replace("\n", " ")) from None


def load_schema(spec: str) -> type[BaseModel]:
    """The pydantic model class named by ``spec``: ``module:Class`` or ``path/to/file.py:Class``.

    A file is run as a fresh module each time it is loaded; a module is imported (``sys.path`` as usual).

    Raises:
        UsageError: the spec is malformed, the file or module is missing or fails to run, or the name is not
            a pydantic model class with fields of its own.
    """
    where, _, name = spec.rpartition(":")
    if not where or not name:
        raise UsageError(f"bad schema {spec!r}", hint=_FORM)
    module = _exec_file(where) if where.endswith(".py") else _import(where)
    schema: Any = getattr(module, name, None)
    models = _models_in(module)
    if schema is None:
        found = f" (its pydantic models: {', '.join(models)})" if models else " (it defines no pydantic model)"
        raise UsageError(f"no class {name!r} in {where}{found}")
    if schema is BaseModel:
        raise UsageError(f"{spec!r} is pydantic's BaseModel itself, not a schema",
                         hint=f"name your model class, e.g. {where}:{models[0] if models else 'Invoice'}")
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise UsageError(f"{spec!r} is a {type(schema).__name__}, not a pydantic model class",
                         hint=f"its pydantic models: {', '.join(models)}" if models else None)
    if not schema.model_fields:
        raise UsageError(f"{spec!r} has no fields to extract")
    return schema
