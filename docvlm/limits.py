"""Resource budgets every entry point shares: what one input may cost in memory, and how big caches grow.

>>> import docvlm.limits as limits
>>> limits.get_limits().max_image_bytes // 2**20
384
>>> with limits.override_limits(max_image_pixels=1_000_000) as lim:
...     lim.max_image_pixels
1000000

The defaults keep any single input (a PDF page, an image frame, a web page) well under 1 GB of memory:

- ``max_image_pixels``: an image frame whose header claims more pixels is refused before any decoding
  ([`PageTooLargeError`][docvlm.errors.PageTooLargeError]; decompression bombs).
- ``max_image_bytes``: the memory decoding one image frame takes (Pillow keeps RGB and RGBA at 4 bytes a
  pixel, grey at 1), conversion to the working mode included. A JPEG over it is decoded at a reduced size
  (its decoder scales by 1/2, 1/4 or 1/8 for free) and page geometry stays in the image's own pixels; any
  other image over it is refused.
- ``max_render_pixels``: the default pixel budget of one rendering (``page.render()``, ``page.crop()``).
- ``max_input_bytes``: the most bytes docvlm reads into memory from a file object (paths to PDFs and images
  are read lazily and not counted; web pages have their own ``WebOptions.max_bytes``).
- ``cache_bytes``: the default budget of a [`ByteCache`][docvlm.limits.ByteCache], a cache bounded by the bytes
  of what it holds, least recently used first out.

Where the values come from, last wins: the defaults; the environment (``DOCVLM_MAX_IMAGE_PIXELS``,
``DOCVLM_MAX_IMAGE_BYTES``, ``DOCVLM_MAX_RENDER_PIXELS``, ``DOCVLM_MAX_INPUT_BYTES``, ``DOCVLM_CACHE_BYTES``;
byte sizes may end in ``K``, ``M`` or ``G``); [`set_limits`][docvlm.limits.set_limits] for the process; [`override_limits`][docvlm.limits.override_limits] for
the current thread or task (a ``contextvars`` context, so a server can give each request its own budget).
"""

from __future__ import annotations

import contextvars
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Generic, TypeVar

from docvlm.errors import UsageError

__all__ = [
    "ByteCache",
    "ResourceLimits",
    "get_limits",
    "override_limits",
    "parse_size",
    "set_limits",
]

MiB = 2**20


@dataclass(frozen=True)
class ResourceLimits:
    """The budgets (see the module's docstring for what each one bounds)."""

    max_image_pixels: int = 150_000_000
    max_image_bytes: int = 384 * MiB
    max_render_pixels: int = 40_000_000
    max_input_bytes: int = 256 * MiB
    cache_bytes: int = 256 * MiB

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"limit {f.name} must be a positive integer, got {value!r}")

    def replace(self, **changes: int) -> ResourceLimits:
        """A copy with ``changes`` applied (unknown names are a [`UsageError`][docvlm.errors.UsageError])."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise UsageError(f"unknown limit(s) {', '.join(sorted(unknown))}",
                             hint=f"limits are {', '.join(f.name for f in fields(self))}")
        return replace(self, **changes)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ResourceLimits:
        """The defaults with ``DOCVLM_<NAME>`` environment variables applied (e.g. ``DOCVLM_MAX_IMAGE_BYTES=256M``)."""
        env = os.environ if environ is None else environ
        changes = {}
        for f in fields(cls):
            raw = env.get("DOCVLM_" + f.name.upper())
            if raw is not None and raw.strip():
                try:
                    changes[f.name] = parse_size(raw)
                except ValueError:
                    raise UsageError(f"DOCVLM_{f.name.upper()}={raw!r} is not a size",
                                     hint="write an integer, optionally ending in K, M or G") from None
        return cls(**changes)


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*", re.I)


def parse_size(text: str) -> int:
    """``"384M"`` -> 402653184; plain integers as they are; ``K``/``M``/``G`` are powers of 1024.

    Raises:
        ValueError: not a size.
    """
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a size: {text!r}")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


_lock = threading.Lock()
_process: ResourceLimits | None = None
_current: contextvars.ContextVar[ResourceLimits | None] = contextvars.ContextVar("docvlm_limits", default=None)


def get_limits() -> ResourceLimits:
    """The limits in force here: an [`override_limits`][docvlm.limits.override_limits] block, else the process's ([`set_limits`][docvlm.limits.set_limits],
    else the environment and the defaults)."""
    scoped = _current.get()
    if scoped is not None:
        return scoped
    global _process
    if _process is None:
        with _lock:
            if _process is None:
                _process = ResourceLimits.from_env()
    return _process


def set_limits(limits: ResourceLimits | None = None, **changes: int) -> ResourceLimits:
    """Set the process's limits: ``limits`` (default: the current ones) with ``changes`` applied. Returns them.

    ``set_limits(ResourceLimits())`` goes back to the defaults (ignoring the environment).
    """
    global _process
    new = (limits or get_limits()).replace(**changes)
    with _lock:
        _process = new
    return new


@contextmanager
def override_limits(**changes: int) -> Iterator[ResourceLimits]:
    """ResourceLimits for the code inside the block only (this thread / asyncio task), e.g. per server request."""
    token = _current.set(get_limits().replace(**changes))
    try:
        limits = _current.get()
        assert limits is not None
        yield limits
    finally:
        _current.reset(token)


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class ByteCache(Generic[K, V]):
    """A thread-safe least-recently-used cache bounded by the bytes of what it holds.

    Args:
        size_of: the bytes an entry costs (e.g. ``lambda image: image.nbytes``).
        max_bytes: the budget; default ``get_limits().cache_bytes`` at construction. An entry bigger than the
            whole budget is not kept.
        on_evict: called with ``(key, value)`` for every entry pushed out.

    >>> cache = ByteCache[str, bytes](len, max_bytes=10)
    >>> cache.put("a", b"12345"), cache.put("b", b"123456")
    (True, True)
    >>> "a" in cache, cache.get("b"), cache.nbytes
    (False, b'123456', 6)
    """

    def __init__(self, size_of: Callable[[V], int], max_bytes: int | None = None,
                 on_evict: Callable[[K, V], Any] | None = None) -> None:
        self.max_bytes = get_limits().cache_bytes if max_bytes is None else int(max_bytes)
        if self.max_bytes < 0:
            raise UsageError(f"max_bytes must be >= 0, got {max_bytes}")
        self._size_of = size_of
        self._on_evict = on_evict
        self._items: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def keys(self) -> list[K]:
        """Keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def get(self, key: K, default: V | None = None) -> V | None:
        """The value (marking it recently used), or ``default``."""
        with self._lock:
            found = self._items.get(key)
            if found is None:
                return default
            self._items.move_to_end(key)
            return found[0]

    def put(self, key: K, value: V) -> bool:
        """Keep ``value`` under ``key``, evicting the least recently used entries to fit; ``False`` when it is
        bigger than the whole budget (then it is not kept, and an older entry under ``key`` is dropped)."""
        size = max(0, int(self._size_of(value)))
        evicted: list[tuple[K, V]] = []
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            kept = size <= self.max_bytes
            if kept:
                self._items[key] = (value, size)
                self._bytes += size
            while self._bytes > self.max_bytes and self._items:
                k, (v, s) = self._items.popitem(last=False)
                self._bytes -= s
                evicted.append((k, v))
        if self._on_evict is not None:
            for k, v in evicted:
                self._on_evict(k, v)
        return kept

    def pop(self, key: K, default: V | None = None) -> V | None:
        with self._lock:
            found = self._items.pop(key, None)
            if found is None:
                return default
            self._bytes -= found[1]
            return found[0]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0
