"""How many threads docvlm's compute uses: torch (intra-op), Tesseract (``OMP_THREAD_LIMIT``) and onnxruntime.

Why a policy: on a machine where other processes keep cores busy, torch's default (one thread per core)
collapses, because its threads wait for each other at every operator and any of them may be descheduled.
Measured on 2 cores with one busy neighbour: a 3-field extraction took 104-176 s with 2 threads and 5.6-9.1 s
with one. So by default docvlm takes only the cores that are free *now*::

    threads = clamp(floor(cpus - busy_elsewhere + 0.25) // workers, 1, cpus // workers)

* ``cpus``: the CPUs this process may run on (``os.sched_getaffinity``; ``os.cpu_count`` elsewhere);
* ``busy_elsewhere``: cores kept busy by *other* processes, measured from ``/proc/stat`` minus this process's
  own CPU time over the last interval (the first time over 50 ms), so docvlm's own work does not count; where
  ``/proc/stat`` is missing, the 1-minute load average;
* ``workers``: worker processes sharing the machine (a batch run's workers).

The policy is read again before every model call, so a neighbour that starts mid-run takes effect at the
next call. Overrides, strongest first: ``threads=`` (``dv.load_model(spec, threads=2)``, ``--threads`` on the
command line), ``DOCVLM_NUM_THREADS``, then ``OMP_NUM_THREADS`` (also ``MKL_NUM_THREADS``) for torch and
onnxruntime and ``OMP_THREAD_LIMIT`` for Tesseract. Tesseract defaults to one thread per page: its OpenMP
threads cost more CPU than they save.
"""

from __future__ import annotations

import math
import os
import threading
import time
from typing import Any

from docvlm.errors import UsageError

__all__ = ["apply_torch_threads", "available_cpus", "busy_elsewhere", "check_threads", "ocr_threads", "threads_for"]

_ENV_OVERRIDES = ("DOCVLM_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_lock = threading.Lock()
_last: tuple[float, float, float] | None = None  # (wall, busy jiffies of the machine, own cpu seconds)
_last_busy = 0.0
_STALE_S = 5.0  # an interval longer than this says little about now


def check_threads(threads: Any) -> int | None:
    """Validate a ``threads=`` argument (``None`` or an int >= 1)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise UsageError(f"threads must be a whole number >= 1 or None, got {threads!r}")
    return threads


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _env_threads(names: tuple[str, ...]) -> int | None:
    for name in names:
        value = (os.environ.get(name) or "").strip()
        if value:
            try:
                n = int(value)
            except ValueError:
                continue
            if n >= 1:
                return n
    return None


def _proc_stat() -> float | None:
    """Busy jiffies of the whole machine (all CPUs), or ``None`` without ``/proc/stat``."""
    try:
        with open("/proc/stat", "rb") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != b"cpu":
        return None
    values = [int(v) for v in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    steal_guest = sum(values[7:]) if len(values) > 7 else 0  # steal, guest: not work done here
    return float(sum(values) - idle - steal_guest)


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def busy_elsewhere() -> float:
    """Cores kept busy by other processes, averaged since the last call (over 50 ms when that was long ago)."""
    global _last, _last_busy
    hz = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0
    with _lock:
        busy = _proc_stat()
        if busy is None:
            try:
                return max(0.0, os.getloadavg()[0])
            except (AttributeError, OSError):
                return 0.0
        now, own = time.monotonic(), _own_cpu()
        if _last is None or now - _last[0] > _STALE_S:  # first call, or a stale sample: measure over 50 ms
            start = (now, busy, own)
            time.sleep(0.05)
            now, own, busy = time.monotonic(), _own_cpu(), _proc_stat() or busy
        elif now - _last[0] < 0.05:
            return _last_busy  # asked again within 50 ms: the last figure stands
        else:
            start = _last
        wall = now - start[0]
        others = ((busy - start[1]) / hz - (own - start[2])) / wall if wall > 0 else 0.0
        _last = (now, busy, own)
        _last_busy = min(max(0.0, others), float(max(os.cpu_count() or 1, available_cpus())))
        return _last_busy


def threads_for(workers: int = 1, *, threads: int | None = None) -> int:
    """Intra-op threads for torch / onnxruntime in one of ``workers`` processes (see the module docs)."""
    if threads is not None:
        return check_threads(threads) or 1
    env = _env_threads(_ENV_OVERRIDES)
    if env is not None:
        return env
    cpus = available_cpus()
    workers = max(1, workers)
    free = math.floor(cpus - busy_elsewhere() + 0.25)
    return max(1, min(free // workers, cpus // workers))


def ocr_threads(threads: int | None = None) -> int:
    """Threads for one Tesseract / RapidOCR page: ``threads``, else ``DOCVLM_NUM_THREADS`` or ``OMP_THREAD_LIMIT``,
    else 1."""
    if threads is not None:
        return check_threads(threads) or 1
    return _env_threads(("DOCVLM_NUM_THREADS", "OMP_THREAD_LIMIT")) or 1


def apply_torch_threads(threads: int) -> None:
    """Set torch's intra-op threads (only when they differ: the call is cheap but not free)."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
