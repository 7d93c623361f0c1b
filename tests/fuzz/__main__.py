"""``python -m tests.fuzz``: run the fuzz targets (see the package docstring), print a JSON summary.

Exit status 0 when every example ended with a result or a typed docvlm error within its time and memory limits;
1 when hypothesis found a failing input (its shrunk form is printed, and kept under ``--save``); a hang ends the
process from the watchdog with the input being tried in ``--workdir``.
"""

from __future__ import annotations

import argparse
import faulthandler
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import seed as hypothesis_seed

from tests.fuzz.targets import Target, targets

REGRESSIONS = Path(__file__).resolve().parents[1] / "regressions"


def peak_rss_bytes() -> int:
    """This process's peak resident memory: VmHWM of its own address space where /proc has it (``ru_maxrss``
    would include the memory of the parent this process was forked from, kept across exec by Linux)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Runner:
    """Runs one target's examples with the watchdog and the memory check, counting outcomes."""

    def __init__(self, workdir: Path, timeout_s: float, max_rss: int) -> None:
        self.workdir = workdir
        self.timeout_s = timeout_s
        self.max_rss = max_rss
        self.outcomes: dict[str, Counter[str]] = {}
        self.last: tuple[Target, bytes] | None = None
        # the example that raised the process's peak memory the most (its input is kept in the workdir)
        self.biggest_rise: tuple[int, str, str] = (0, "", "")

    def check(self, target: Target, value: Any) -> None:
        import docvlm as dv

        data = target.to_bytes(value)
        self.last = (target, data)
        before = peak_rss_bytes()
        (self.workdir / f"current.{target.extension}").write_bytes(data)
        faulthandler.dump_traceback_later(self.timeout_s, exit=True)
        try:
            with warnings.catch_warnings():
                # a docvlm warning (a repaired PDF, the Story renderer) is an answer; any other warning is a defect
                warnings.simplefilter("error")
                warnings.simplefilter("ignore", dv.DocVLMWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                try:
                    outcome = target.run(data)
                except dv.DocVLMError as exc:
                    text = str(exc)
                    if "\n" in text or len(text) > 1000:
                        raise AssertionError(f"{type(exc).__name__} is not one short line: {text[:300]!r}") from exc
                    outcome = type(exc).__name__
        finally:
            faulthandler.cancel_dump_traceback_later()
        peak = peak_rss_bytes()
        if peak > self.max_rss:
            raise AssertionError(f"peak memory {peak / 2**20:.0f} MiB is over {self.max_rss / 2**20:.0f} MiB")
        if peak - before > self.biggest_rise[0]:
            kept = self.workdir / f"peak.{target.extension}"
            kept.write_bytes(data)
            self.biggest_rise = (peak - before, f"{target.name} ({outcome}, {len(data):,} bytes)", str(kept))
        self.outcomes.setdefault(target.name, Counter())[outcome] += 1

    def run(self, target: Target, examples: int, *, derandomize: bool, seed: int | None) -> None:
        @settings(max_examples=examples, derandomize=derandomize, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False, report_multiple_bugs=False)
        @given(target.strategy)
        def fuzz(value: Any) -> None:
            self.check(target, value)

        if seed is not None and not derandomize:
            fuzz = hypothesis_seed(seed)(fuzz)
        fuzz()


def save_crasher(target: Target, data: bytes, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"fuzz-{target.name}-{hashlib.sha256(data).hexdigest()[:10]}.{target.extension}"
    path.write_bytes(data)
    return path


def replay(files: list[Path], timeout_s: float, max_rss: int) -> int:
    """Run each file through the target its extension names, with the fuzz checks; print ``{file: outcome}``."""
    from tests.fuzz.targets import target_for_file

    runner = Runner(Path(tempfile.mkdtemp(prefix="docvlm-replay-")), timeout_s, max_rss)
    outcomes: dict[str, str] = {}
    status = 0
    for path in files:
        target = target_for_file(path.name)
        raw = Target(target.name, target.extension, target.strategy, lambda v: bytes(v), target.run)
        before = Counter(runner.outcomes.get(target.name, Counter()))
        try:
            runner.check(raw, path.read_bytes())
        except Exception as exc:
            status = 1
            outcomes[path.name] = f"FAILED {type(exc).__name__}: {exc}"
            traceback.print_exc()
            continue
        after = runner.outcomes[target.name]
        (outcomes[path.name],) = [k for k in after if after[k] != before.get(k, 0)]
    print(json.dumps(outcomes, indent=1))
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--targets", default="pdf,image,html,tools", help="comma-separated: pdf,image,html,tools")
    parser.add_argument("--examples", type=int, default=100, help="examples per target (per round)")
    parser.add_argument("--minutes", type=float, default=0.0, help="keep running rounds with new seeds this long")
    parser.add_argument("--derandomize", action="store_true", help="a fixed sequence of examples (CI)")
    parser.add_argument("--seed", type=int, default=None, help="the first round's seed (random rounds)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds one example may take (a hang)")
    parser.add_argument("--max-rss-mb", type=float, default=1024.0, help="peak memory of the process")
    parser.add_argument("--workdir", type=Path, default=None, help="where the input being tried is written")
    parser.add_argument("--save", action="store_true", help=f"keep a failing input in {REGRESSIONS}")
    parser.add_argument("--replay", type=Path, nargs="+", default=None,
                        help="run these files through their targets (by extension) instead of fuzzing")
    args = parser.parse_args(argv)
    if args.replay:
        return replay(args.replay, args.timeout, int(args.max_rss_mb * 2**20))

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="docvlm-fuzz-"))
    workdir.mkdir(parents=True, exist_ok=True)
    chosen = [targets()[name.strip()] for name in args.targets.split(",") if name.strip()]
    runner = Runner(workdir, args.timeout, int(args.max_rss_mb * 2**20))
    print(f"fuzzing {', '.join(t.name for t in chosen)}; inputs being tried are written to {workdir}",
          file=sys.stderr, flush=True)
    start = time.monotonic()
    deadline = start + 60 * args.minutes
    rounds = 0
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "big")
    status = 0
    try:
        while True:
            for target in chosen:
                runner.run(target, args.examples, derandomize=args.derandomize, seed=seed + rounds)
            rounds += 1
            if args.derandomize or time.monotonic() >= deadline:
                break
    except Exception:
        status = 1
        traceback.print_exc()
        if runner.last is not None:
            target, data = runner.last
            print(f"failing input ({target.name}, {len(data)} bytes): {data[:400]!r}", file=sys.stderr)
            if args.save:
                print(f"kept as {save_crasher(target, data, REGRESSIONS)}", file=sys.stderr)
    summary = {
        "status": "ok" if status == 0 else "failed",
        "rounds": rounds,
        "seed": None if args.derandomize else seed,
        "seconds": round(time.monotonic() - start, 1),
        "peak_rss_mb": round(peak_rss_bytes() / 2**20),
        "biggest_rise": {"mb": round(runner.biggest_rise[0] / 2**20), "example": runner.biggest_rise[1],
                         "input": runner.biggest_rise[2]},
        "targets": {name: {"examples": sum(c.values()), "outcomes": dict(c.most_common())}
                    for name, c in runner.outcomes.items()},
    }
    print(json.dumps(summary, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
