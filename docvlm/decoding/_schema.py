"""JSON schema -> a Python type that docvlm's constraint compiler turns into an exact constraint.

A server that takes JSON schemas from clients (``docvlm serve``'s ``response_format`` and ``tools``) converts
them here, and then decodes under [`compile_output_type`][docvlm.decoding.compile_output_type] of the result, so a local
model's answers always validate against the schema the client sent.
"""

from __future__ import annotations

import functools
import hashlib
import json
import keyword
import math
import re
import threading
import typing
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from docvlm.errors import UsageError

from ._budget import check_budget
from ._formats import FORMAT_PATTERNS, FORMAT_TYPES

__all__ = ["MAX_SCHEMA_DEPTH", "MAX_SCHEMA_NODES", "schema_to_type"]

#: The most nested levels (properties, items, anyOf members, ...) a schema may have.
MAX_SCHEMA_DEPTH = 32
#: The most sub-schemas one schema may have (references counted once).
MAX_SCHEMA_NODES = 5000

# typing constructs built at run time: typed Any so that mypy accepts the dynamic subscriptions
_Annotated: Any = typing.Annotated
_Literal: Any = typing.Literal
_Union: Any = typing.Union
_List: Any = list
_Tuple: Any = tuple

_ANNOTATIONS = frozenset({
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "readOnly", "writeOnly",
    "deprecated", "discriminator", "$defs", "definitions",
})
_KEYWORDS: dict[str, frozenset[str]] = {
    "object": frozenset({"type", "properties", "required", "additionalProperties"}),
    "array": frozenset({"type", "items", "prefixItems", "minItems", "maxItems"}),
    "string": frozenset({"type", "minLength", "maxLength", "pattern", "format"}),
    "integer": frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "number": frozenset({"type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}),
    "boolean": frozenset({"type"}),
    "null": frozenset({"type"}),
}
#: ``format`` -> the Python type it converts to (pydantic reads the value back as that type); the other
#: formats of `FORMAT_PATTERNS` become strings with the format's pattern.
_FORMAT_TYPE: dict[str, Any] = {name: tp for tp, name in FORMAT_TYPES.items()}
_HINT = (
    "supported: object (properties, required), array (items, prefixItems, minItems, maxItems), "
    "string (minLength, maxLength, pattern, or format: " + ", ".join(FORMAT_PATTERNS) + "), "
    "integer/number (minimum, maximum, exclusive bounds), boolean, null, enum, const, anyOf/oneOf, local $ref"
)

_CACHE: OrderedDict[str, Any] = OrderedDict()
_CACHE_SIZE = 128
_CACHE_LOCK = threading.Lock()


def schema_to_type(schema: Mapping[str, Any]) -> Any:
    """A Python type whose docvlm constraint produces only JSON valid under ``schema``.

    The supported subset is what docvlm's constraint compiler can bound:

    ======================  ==========================================================================
    schema                  type
    ======================  ==========================================================================
    object + properties     a pydantic model (fields keep the property names as aliases; every key is
                            emitted, ``required`` only decides which fields have a default)
    array + items           ``list[...]`` with ``minItems`` / ``maxItems``
    array + prefixItems     ``tuple[...]``
    string                  ``str`` with ``minLength`` / ``maxLength`` / ``pattern``
    string + format         ``date``, ``date-time``, ``time``: ``date`` / ``datetime`` / ``time``;
                            ``uuid``: ``UUID``; ``email``, ``ipv4``: ``str`` with an exact pattern
    integer / number        ``int`` / ``float`` with ``minimum`` / ``maximum`` / exclusive bounds
    boolean / null          ``bool`` / ``None``
    enum / const            ``Literal[...]`` (strings, integers, booleans, null)
    anyOf / oneOf, type []  ``Union[...]``
    $ref (``#/$defs/...``)  the referenced schema (not recursive ones)
    ======================  ==========================================================================

    Annotations (``title``, ``description``, ``default``, ``examples``, ...) are ignored. Anything else
    (other formats, ``multipleOf``, ``uniqueItems``, open-ended objects, recursion, ...) is refused rather
    than ignored, because ignoring it could produce JSON the schema rejects. So are schemas nested deeper
    than `MAX_SCHEMA_DEPTH` or with more than `MAX_SCHEMA_NODES` sub-schemas; the work checks
    [`compile_budget`][docvlm.decoding.compile_budget].

    Equal schemas give the same type object (cached by the schema's text, key order included: it is the
    field order), so the compiled constraint is reused and a server can batch requests that share a schema.

    Args:
        schema: a JSON schema (a dict).

    Returns:
        A type for [`Model.generate`][docvlm.models.base.Model.generate] (a pydantic model, ``list[...]``, ``Literal``, ...).

    Raises:
        UsageError: the schema uses something outside the subset, or is too big; the message names the place.
        ConstraintError: the [`compile_budget`][docvlm.decoding.compile_budget] in force ran out.
    """
    if not isinstance(schema, Mapping):
        raise UsageError(f"a JSON schema must be an object, got {type(schema).__name__}")
    try:
        canonical = json.dumps(schema, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise UsageError(f"the JSON schema is not JSON: {exc}") from exc
    key = hashlib.sha256(canonical.encode()).hexdigest()
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    root = json.loads(canonical)
    tp = _Converter(root).convert(root, "#", 0)
    with _CACHE_LOCK:
        tp = _CACHE.setdefault(key, tp)  # a thread that converted the same schema meanwhile wins
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return tp


class _Converter:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Any] = {}
        self.resolving: list[str] = []
        self.nodes = 0

    def fail(self, path: str, message: str) -> UsageError:
        shown = path if len(path) <= 160 else path[:80] + "..." + path[-60:]
        return UsageError(f"JSON schema at {shown}: {message}", hint=_HINT)

    def convert(self, schema: Any, path: str, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_SCHEMA_NODES:
            raise self.fail(path, f"the schema has more than {MAX_SCHEMA_NODES} sub-schemas")
        if depth > MAX_SCHEMA_DEPTH:
            raise self.fail(path, f"the schema nests more than {MAX_SCHEMA_DEPTH} levels deep")
        check_budget()
        if schema is True or schema == {}:
            raise self.fail(path, "an empty schema allows any value; give a type")
        if not isinstance(schema, dict):
            raise self.fail(path, f"a schema must be an object, got {json.dumps(schema)[:60]}")
        if "$ref" in schema:
            self.check_keys(schema, {"$ref"}, path)
            return self.ref(schema["$ref"], path, depth)
        if "allOf" in schema:
            self.check_keys(schema, {"allOf"}, path)
            parts = schema["allOf"]
            if not isinstance(parts, list) or len(parts) != 1:
                raise self.fail(path, "allOf is supported with exactly one schema")
            return self.convert(parts[0], f"{path}/allOf/0", depth + 1)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                self.check_keys(schema, {key}, path)
                options = schema[key]
                if not isinstance(options, list) or not options:
                    raise self.fail(path, f"{key} needs a non-empty list of schemas")
                return self.union([self.convert(s, f"{path}/{key}/{i}", depth + 1) for i, s in enumerate(options)])
        if "const" in schema or "enum" in schema:
            return self.literal(schema, path)
        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:
                raise self.fail(path, "type is an empty list")
            return self.union([self.convert({**schema, "type": k}, path, depth + 1) for k in kind])
        nullable = schema.get("nullable") is True
        if nullable:
            schema = {k: v for k, v in schema.items() if k != "nullable"}
        if not isinstance(kind, str) or kind not in _KEYWORDS:
            raise self.fail(path, f"unsupported or missing type {json.dumps(kind)[:60]}")
        self.check_keys(schema, _KEYWORDS[kind], path)
        tp = getattr(self, f"type_{kind}")(schema, path, depth)
        return self.union([tp, type(None)]) if nullable else tp

    def check_keys(self, schema: dict[str, Any], allowed: set[str] | frozenset[str], path: str) -> None:
        extra = sorted(set(schema) - allowed - _ANNOTATIONS)
        if extra:
            more = f" (and {extra[1:6]})" if extra[1:] else ""
            raise self.fail(path, f"unsupported keyword {extra[0][:60]!r}{more}")

    def union(self, members: list[Any]) -> Any:
        unique: list[Any] = []
        for m in members:
            if m not in unique:
                unique.append(m)
        return unique[0] if len(unique) == 1 else _Union[tuple(unique)]

    def ref(self, ref: Any, path: str, depth: int) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise self.fail(path, f"only local references (#/$defs/...) are supported, got {str(ref)[:60]!r}")
        if ref in self.refs:
            return self.refs[ref]
        if ref in self.resolving:
            raise self.fail(path, f"the reference {ref} is recursive: its JSON has no bounded length")
        target: Any = self.root
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if not isinstance(target, dict) or token not in target:
                raise self.fail(path, f"the reference {ref[:80]} points nowhere")
            target = target[token]
        self.resolving.append(ref)
        try:
            self.refs[ref] = self.convert(target, ref, depth + 1)
        finally:
            self.resolving.pop()
        return self.refs[ref]

    def literal(self, schema: dict[str, Any], path: str) -> Any:
        self.check_keys(schema, {"const", "enum", "type"}, path)
        values = [schema["const"]] if "const" in schema else schema["enum"]
        if not isinstance(values, list) or not values:
            raise self.fail(path, "enum needs a non-empty list")
        for value in values:
            if not (value is None or isinstance(value, (str, int, bool))):
                raise self.fail(path, f"the enum value {json.dumps(value)[:60]} is not a string, integer, boolean or null")
        if "enum" in schema and "const" in schema:
            raise self.fail(path, "give enum or const, not both")
        return _Literal[tuple(values)]

    # types ----------------------------------------------------------------------------------------
    def type_object(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            raise self.fail(path, "an object needs properties (open-ended objects / dicts are not supported)")
        extra = schema.get("additionalProperties", True)
        if not isinstance(extra, bool):
            raise self.fail(path, "additionalProperties with a schema is not supported (only true or false)")
        required = schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise self.fail(path, "required must be a list of property names")
        unknown = sorted(set(required) - set(properties))
        if unknown:
            raise self.fail(path, f"required names {unknown[:5]} that are not among the properties")
        fields: dict[str, Any] = {}
        for i, (name, sub) in enumerate(properties.items()):
            tp = self.convert(sub, f"{path}/properties/{_pointer(name)}", depth + 1)
            info: Any
            if name in required:
                info = Field(alias=name)
            else:
                default = sub.get("default") if isinstance(sub, dict) else None
                info = Field(default=default, alias=name)
            fields[f"f{i}"] = (tp, info)
        title = schema.get("title")
        try:
            model: type[BaseModel] = create_model(
                _model_name(title if isinstance(title, str) else "Output"),
                __config__=ConfigDict(extra="ignore" if extra else "forbid"),
                **fields,
            )
        except Exception as exc:  # pydantic-core refuses a validator (e.g. a pattern over its regex size limit)
            first = str(exc).strip().splitlines()[-1].strip()[:200]
            raise self.fail(path, f"pydantic cannot build a validator for it: {first}") from None
        return model

    def type_array(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        min_items, max_items = self.bound(schema, "minItems", path), self.bound(schema, "maxItems", path)
        if "prefixItems" in schema:
            prefix = schema["prefixItems"]
            if not isinstance(prefix, list) or not prefix:
                raise self.fail(path, "prefixItems needs a non-empty list of schemas")
            if schema.get("items", False) is not False:
                raise self.fail(path, "prefixItems followed by more items is not supported (set items to false)")
            n = len(prefix)
            if (min_items not in (None, n)) or (max_items not in (None, n)):
                raise self.fail(path, f"minItems/maxItems must equal the {n} prefixItems")
            return _Tuple[tuple(self.convert(s, f"{path}/prefixItems/{i}", depth + 1) for i, s in enumerate(prefix))]
        if "items" not in schema or schema["items"] is True:
            raise self.fail(path, "an array needs an items schema")
        item = self.convert(schema["items"], f"{path}/items", depth + 1)
        tp = _List[item]
        if min_items is None and max_items is None:
            return tp
        return _Annotated[tp, Field(min_length=min_items, max_length=max_items)]

    def type_string(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        min_length, max_length = self.bound(schema, "minLength", path), self.bound(schema, "maxLength", path)
        pattern = schema.get("pattern")
        if pattern is not None and not isinstance(pattern, str):
            raise self.fail(path, "pattern must be a string")
        if "format" in schema:
            return self.formatted(schema["format"], path, min_length, max_length, pattern)
        if min_length is None and max_length is None and pattern is None:
            return str
        return self.annotated_str(Field(min_length=min_length, max_length=max_length, pattern=pattern), path)

    def formatted(self, fmt: Any, path: str, min_length: int | None, max_length: int | None,
                  pattern: str | None) -> Any:
        if not isinstance(fmt, str) or fmt not in FORMAT_PATTERNS:
            raise self.fail(path, f"format {json.dumps(fmt)[:40]} is not supported "
                                  f"(supported: {', '.join(FORMAT_PATTERNS)})")
        if min_length is not None or max_length is not None or pattern is not None:
            raise self.fail(path, f"format {fmt!r} together with minLength, maxLength or pattern is not supported")
        if fmt in _FORMAT_TYPE:
            return _FORMAT_TYPE[fmt]
        return self.annotated_str(Field(pattern=f"^{FORMAT_PATTERNS[fmt]}$"), path)

    def annotated_str(self, info: Any, path: str) -> Any:
        tp = _Annotated[str, info]
        try:
            TypeAdapter(tp)  # pydantic-core compiles the pattern now, not when the first answer arrives
        except Exception as exc:
            first = str(exc).strip().splitlines()[-1].strip()[:200]
            raise self.fail(path, f"pydantic cannot build a validator for it: {first}") from None
        return tp

    def type_integer(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        return self.numeric(int, schema, path)

    def type_number(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        return self.numeric(float, schema, path)

    def type_boolean(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        return bool

    def type_null(self, schema: dict[str, Any], path: str, depth: int) -> Any:
        return type(None)

    def numeric(self, tp: type, schema: dict[str, Any], path: str) -> Any:
        bounds: dict[str, Any] = {}
        for key, name in (("minimum", "ge"), ("maximum", "le"), ("exclusiveMinimum", "gt"), ("exclusiveMaximum", "lt")):
            if key in schema:
                value = schema[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                        isinstance(value, float) and not math.isfinite(value)):
                    raise self.fail(path, f"{key} must be a finite number, got {json.dumps(value)[:40]}")
                bounds[name] = value
        return _Annotated[tp, Field(**bounds)] if bounds else tp

    def bound(self, schema: dict[str, Any], key: str, path: str) -> int | None:
        value = schema.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, f"{key} must be a non-negative integer, got {json.dumps(value)[:40]}")
        return value


def _pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


@functools.lru_cache(maxsize=1024)
def _model_name(title: str) -> str:
    name = re.sub(r"\W", "_", title)[:64] or "Output"
    if name[0].isdigit() or keyword.iskeyword(name):
        name = f"_{name}"
    return name
