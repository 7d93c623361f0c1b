"""Threads, time limits and quiet loading on tiny transformers models (the rest is in tests/test_speed_controls.py)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

import docvlm as dv
from docvlm import _deadline

torch = pytest.importorskip("torch")


@pytest.mark.slow
def test_generate_stops_at_the_next_token_and_leaves_no_thread(tiny_model: Any, torch_one_thread: None) -> None:
    model = dv.load_model(f"transformers:{tiny_model('llama')}", threads=1)
    before = set(threading.enumerate())  # threads of earlier tests may end meanwhile: only new ones count
    start = time.perf_counter()
    with pytest.raises(dv.TimeLimitError, match="generate"):
        model.generate("Write a long text.", str, max_new_tokens=3000, timeout=0.3)
    assert time.perf_counter() - start < 10
    assert set(threading.enumerate()) - before == set()
    assert model.generate("Say yes.", bool, timeout=30) in (True, False)  # the model still works afterwards
    with pytest.raises(dv.TimeLimitError, match="score"), _deadline.deadline(0.001, "score"):
        time.sleep(0.01)
        model.score("Q", ["a"])


def test_loading_a_model_prints_no_transformers_bars(tiny_model: Any, capfd: pytest.CaptureFixture[str]) -> None:
    from transformers.utils import logging as tf_logging

    dv.load_model(f"transformers:{tiny_model('llama')}")
    err = capfd.readouterr().err
    assert "Loading weights" not in err and "it/s" not in err
    assert tf_logging.is_progress_bar_enabled()  # the user's setting is back



def test_threads_given_at_load_are_used_at_every_call(tiny_model: Any, torch_one_thread: None) -> None:
    model = dv.load_model(f"transformers:{tiny_model('llama')}", threads=2)
    torch.set_num_threads(1)
    model.generate("Say yes.", bool)
    assert torch.get_num_threads() == 2
    model.threads = 1
    model.score("Q", ["a"])
    assert torch.get_num_threads() == 1
