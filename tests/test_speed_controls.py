"""The thread policy, time limits and progress display (docvlm._threads, docvlm._deadline, docvlm._progress)."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import docvlm as dv
from docvlm import _deadline, _progress, _threads


# thread policy -----------------------------------------------------------------------------------------
class FakeMachine:
    """/proc/stat and this process's CPU clock, advanced by hand: ``others`` cores busy, ``own`` cores ours."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cpus: int = 4) -> None:
        self.wall = 1000.0
        self.busy = 0.0  # jiffies
        self.own = 0.0  # seconds
        monkeypatch.setattr(_threads, "_last", None)
        monkeypatch.setattr(_threads, "_proc_stat", lambda: self.busy)
        monkeypatch.setattr(_threads, "_own_cpu", lambda: self.own)
        monkeypatch.setattr(_threads.time, "monotonic", lambda: self.wall)
        monkeypatch.setattr(_threads.time, "sleep", lambda s: self.run(s, self.others, self.mine))
        monkeypatch.setattr(_threads, "available_cpus", lambda: cpus)
        monkeypatch.setattr(_threads.os, "sysconf", lambda name: 100)
        for name in ("DOCVLM_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            monkeypatch.delenv(name, raising=False)
        self.others = self.mine = 0.0

    def run(self, seconds: float, others: float, mine: float = 0.0) -> None:
        self.wall += seconds
        self.busy += (others + mine) * seconds * 100
        self.own += mine * seconds


def test_a_quiet_machine_gives_every_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeMachine(monkeypatch, cpus=4)
    assert _threads.threads_for() == 4
    assert _threads.threads_for(workers=2) == 2  # batch workers share the CPUs
    assert _threads.threads_for(workers=8) == 1  # never fewer than one


def test_busy_neighbours_take_their_cores_and_our_own_work_does_not_count(monkeypatch: pytest.MonkeyPatch) -> None:
    m = FakeMachine(monkeypatch, cpus=4)
    m.others = 1.0
    assert _threads.threads_for() == 3  # first call: measured over 50 ms
    m.run(2.0, others=3.0, mine=1.0)  # three busy neighbours while we computed on one core
    assert _threads.busy_elsewhere() == pytest.approx(3.0)
    assert _threads.threads_for() == 1
    m.run(2.0, others=0.0, mine=4.0)  # only our own work: all cores are ours again
    assert _threads.threads_for() == 4


def test_a_stale_sample_is_measured_again(monkeypatch: pytest.MonkeyPatch) -> None:
    m = FakeMachine(monkeypatch, cpus=2)
    assert _threads.threads_for() == 2
    m.run(60.0, others=0.0)  # a long idle minute ...
    m.others = 2.0  # ... and now the machine is full: the 50 ms sample sees it, not the minute's average
    assert _threads.threads_for() == 1


def test_overrides_come_before_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    m = FakeMachine(monkeypatch, cpus=4)
    m.others = 3.0
    assert _threads.threads_for(threads=3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert _threads.threads_for() == 2
    monkeypatch.setenv("DOCVLM_NUM_THREADS", "3")
    assert _threads.threads_for() == 3
    monkeypatch.setenv("DOCVLM_NUM_THREADS", "not a number")
    assert _threads.threads_for() == 2
    assert _threads.ocr_threads() == 1  # Tesseract: one thread unless told
    monkeypatch.setenv("OMP_THREAD_LIMIT", "2")
    assert _threads.ocr_threads() == 2 and _threads.ocr_threads(threads=4) == 4


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_bad_thread_counts_are_usage_errors(bad: Any) -> None:
    with pytest.raises(dv.UsageError, match="threads"):
        _threads.check_threads(bad)
    with pytest.raises(dv.UsageError, match="threads"):
        dv.load_model("test", threads=bad)


def test_the_real_machine_reading_is_a_core_count() -> None:
    busy = _threads.busy_elsewhere()
    assert 0.0 <= busy <= (_threads.os.cpu_count() or 1)
    assert 1 <= _threads.threads_for() <= _threads.available_cpus()


# time limits -----------------------------------------------------------------------------------------
def test_deadlines_nest_and_only_shorten() -> None:
    assert _deadline.remaining() is None
    with _deadline.deadline(100, "outer"):
        assert 99 < (_deadline.remaining() or 0) <= 100
        with _deadline.deadline(1000, "inner"):  # a longer inner limit does not extend the outer one
            assert (_deadline.remaining() or 0) <= 100
        with _deadline.deadline(0.001, "inner"):
            time.sleep(0.01)
            with pytest.raises(dv.TimeLimitError, match=r"inner ran past its time limit of 0\.001 s") as info:
                _deadline.check()
        assert isinstance(info.value, TimeoutError) and info.value.seconds == 0.001 and info.value.what == "inner"
        _deadline.check()  # the outer one still has time
    assert _deadline.remaining() is None
    with pytest.raises(dv.UsageError, match="timeout"), _deadline.deadline(0, "x"):
        pass


class Receipt(BaseModel):
    total: float | None = None


def slow_function_model(seconds: float) -> dv.FunctionModel:
    fake = dv.TestModel()

    def answer(messages: list[dv.Message], info: Any) -> Any:
        time.sleep(seconds)
        return fake._sample(info.constraint)  # any valid answer, as raw text

    return dv.FunctionModel(answer)


def test_extract_and_ask_stop_at_their_timeout() -> None:
    page = dv.open(dv.samples.invoice_pdf())[0]
    model = slow_function_model(0.3)
    start = time.perf_counter()
    with pytest.raises(dv.TimeLimitError, match="extract"):
        dv.extract(model, page, Receipt, timeout=0.1)
    assert time.perf_counter() - start < 5
    assert isinstance(dv.extract(slow_function_model(0.0), page, Receipt, timeout=60).value, Receipt)
    with pytest.raises(dv.TimeLimitError, match="ask"):
        dv.ask(slow_function_model(0.3), page, "What is the total?", timeout=0.1)


def test_evaluate_stops_at_its_timeout(tmp_path: Path) -> None:
    with pytest.raises(dv.TimeLimitError, match="evaluate"):
        dv.evaluate(slow_function_model(0.2), "invoice:3", "extract", format="synthetic", timeout=0.3)


@pytest.mark.slow
def test_batch_timeout_terminates_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from docvlm.batch import read_records, run_batch
    from tests.conftest import make_pdf

    for i in range(4):
        (tmp_path / f"d{i}.pdf").write_bytes(make_pdf(text=f"Total {i}"))
    monkeypatch.setenv("DOCVLM_BATCH_TEST_DELAY", "30")
    out = tmp_path / "out.jsonl"
    before = set(multiprocessing.active_children())  # a child of an earlier test may still be ending
    start = time.perf_counter()
    with pytest.raises(dv.TimeLimitError, match="batch"):
        run_batch([tmp_path], schema="tests.test_speed_controls:Receipt", model="test", output=out, workers=2,
                  timeout=1.0)
    assert time.perf_counter() - start < 20
    assert set(multiprocessing.active_children()) - before == set()  # this run's workers are gone
    assert list(read_records(out)) == []  # nothing finished, nothing half-written


@pytest.mark.parametrize("engine", ["tesseract", "rapidocr"])
def test_ocr_gets_the_time_left(engine: str) -> None:
    from docvlm.documents.ocr import available_engines

    if engine not in [str(e.value) for e in available_engines()]:
        pytest.skip(f"{engine} is not installed")
    image = dv.open(dv.samples.invoice_pdf())[0].render(dpi=100)
    with _deadline.deadline(0.001, "OCR test"):
        time.sleep(0.01)
        with pytest.raises(dv.TimeLimitError, match="OCR"):
            dv.ocr_words(image, engine=engine)


# progress -------------------------------------------------------------------------------------------------
def test_progress_is_quiet_off_a_terminal_and_on_request(monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert not _progress.progress_enabled()  # pytest captures stderr: not a terminal
    monkeypatch.setattr(_progress.sys.stderr, "isatty", lambda: True, raising=False)
    assert _progress.progress_enabled()
    assert not _progress.progress_enabled(quiet=True)
    monkeypatch.setenv("DOCVLM_QUIET", "1")
    assert not _progress.progress_enabled()
    steps: list[int] = []
    with _progress.progress(3, "pages", enabled=False) as advance:
        for _ in range(3):
            advance()
            steps.append(1)
    assert steps == [1, 1, 1] and capsys.readouterr().err == ""


def test_progress_draws_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    buffer = io.StringIO()
    monkeypatch.setattr(_progress, "_console", lambda: Console(file=buffer, force_terminal=True, width=80))
    with _progress.progress(4, "batch docs", enabled=True) as advance:
        for _ in range(4):
            advance()
    with _progress.status("loading model default", enabled=True):
        pass
    text = buffer.getvalue()
    assert "batch docs" in text and "4/4" in text and "loading model default" in text


def _cli(args: Sequence[str], **env: str) -> Any:
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "docvlm", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **env}, check=False)


def test_cli_timeout_threads_and_quiet(tmp_path: Path) -> None:
    schema = tmp_path / "schema.py"
    schema.write_text("from pydantic import BaseModel\nclass Invoice(BaseModel):\n    total: float | None = None\n")
    pdf = tmp_path / "invoice.pdf"
    pdf.write_bytes(dv.samples.invoice_pdf())
    done = _cli(["--quiet", "extract", str(pdf), "--schema", f"{schema}:Invoice", "--model", "test",
                 "--threads", "1", "--timeout", "60"])
    assert done.returncode == 0, done.stderr
    assert '"total"' in done.stdout and done.stderr == ""
    late = _cli(["extract", str(pdf), "--schema", f"{schema}:Invoice", "--model", "test", "--timeout", "0.001"])
    assert late.returncode == 1  # a failure, not a usage error (docs/cli.md)
    assert "time limit" in late.stderr and "Traceback" not in late.stderr
    bad = _cli(["extract", str(pdf), "--schema", f"{schema}:Invoice", "--model", "test", "--threads", "0"])
    assert bad.returncode == 2 and "--threads" in bad.stderr
