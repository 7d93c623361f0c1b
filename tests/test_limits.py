"""The shared resource budget (docvlm.limits) and the byte-bounded cache."""

from __future__ import annotations

import threading

import pytest

import docvlm as dv
from docvlm.limits import ByteCache, ResourceLimits, get_limits, override_limits, parse_size, set_limits


def test_defaults_keep_one_input_well_under_a_gigabyte() -> None:
    lim = ResourceLimits()
    assert lim.max_image_bytes == 384 * 2**20 and lim.max_image_pixels == 150_000_000
    assert lim.max_render_pixels * 4 < 2**30  # one rendering (RGB kept at 4 bytes a pixel)


def test_environment_process_and_block_scopes() -> None:
    env = {"DOCVLM_MAX_IMAGE_BYTES": "128M", "DOCVLM_CACHE_BYTES": "1g", "DOCVLM_MAX_RENDER_PIXELS": "1000000"}
    lim = ResourceLimits.from_env(env)
    assert (lim.max_image_bytes, lim.cache_bytes, lim.max_render_pixels) == (128 * 2**20, 2**30, 1_000_000)
    with pytest.raises(dv.UsageError, match="DOCVLM_MAX_IMAGE_BYTES='lots' is not a size"):
        ResourceLimits.from_env({"DOCVLM_MAX_IMAGE_BYTES": "lots"})
    saved = get_limits()
    try:
        set_limits(max_render_pixels=2_000_000)
        assert get_limits().max_render_pixels == 2_000_000
        with override_limits(max_render_pixels=500_000) as inner:
            assert get_limits() is inner and inner.max_render_pixels == 500_000
            seen: list[int] = []
            thread = threading.Thread(target=lambda: seen.append(get_limits().max_render_pixels))
            thread.start()
            thread.join()
            assert seen == [2_000_000]  # another thread keeps the process's limits
        assert get_limits().max_render_pixels == 2_000_000
    finally:
        set_limits(saved)
    with pytest.raises(dv.UsageError, match="unknown limit"):
        get_limits().replace(max_pixelz=1)
    with pytest.raises(dv.UsageError, match="positive integer"):
        ResourceLimits(max_image_bytes=0)
    assert parse_size("1.5K") == 1536 and parse_size(" 42 ") == 42 and parse_size("2MiB") == 2 * 2**20


def test_the_render_budget_comes_from_the_limits(files: dict[str, object]) -> None:
    page = dv.open(files["huge.pdf"])[0]  # 200 x 200 inches
    with override_limits(max_render_pixels=1_000_000):
        image = page.render()
    assert image.width * image.height <= 1_000_000 and image.width > 900
    with override_limits(max_render_pixels=1_000_000), pytest.raises(dv.PageTooLargeError, match="budget of 1"):
        page.render(dpi=72)


def test_byte_cache_evicts_least_recently_used_by_bytes() -> None:
    evicted: list[str] = []
    cache = ByteCache[str, bytes](len, max_bytes=10, on_evict=lambda k, _v: evicted.append(k))
    assert cache.put("a", b"1234") and cache.put("b", b"1234")
    assert cache.get("a") == b"1234"  # a is now the most recent
    assert cache.put("c", b"1234")  # 12 bytes: b goes
    assert evicted == ["b"] and cache.keys() == ["a", "c"] and cache.nbytes == 8
    assert not cache.put("huge", b"x" * 11)  # bigger than the whole budget: not kept
    assert "huge" not in cache and cache.nbytes == 8
    assert cache.put("a", b"123456")  # replacing an entry re-counts it
    assert cache.nbytes == 10 and cache.pop("c") == b"1234" and cache.nbytes == 6
    with override_limits(cache_bytes=77):
        assert ByteCache[str, bytes](len).max_bytes == 77
