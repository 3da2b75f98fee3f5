"""Run every benchmark script in this folder (what ``make bench`` does).

Discovers ``benchmarks/*.py`` except this file and private helpers
(``_*.py``), runs each in its own interpreter (so one script's allocations,
GC state or installed clock never colour the next one's numbers), streams
its tables, and ends with a one-line status per script.

Usage: ``.venv/bin/python benchmarks/run_all.py [NAME ...]`` -- names (e.g.
``spans memory``) limit the run to those scripts. ``BENCH_QUICK=1`` asks
every script for its small sizes (a smoke test, not numbers to publish).
Exits non-zero if any script failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Per-script ceiling: a hung benchmark must not hang `make bench`.
TIMEOUT_S = float(os.environ.get("BENCH_TIMEOUT_S", "600"))


def discover(only: list[str]) -> list[Path]:
    """Benchmark scripts, sorted by name; ``only`` filters by stem."""
    scripts = sorted(
        path
        for path in HERE.glob("*.py")
        if path.name != Path(__file__).name and not path.name.startswith("_")
    )
    if only:
        scripts = [path for path in scripts if path.stem in only]
    return scripts


def run(script: Path) -> tuple[str, float]:
    """Run one script with this interpreter; returns (status, seconds)."""
    print(f"\n{'=' * 72}\n# {script.name}\n{'=' * 72}", flush=True)
    began = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(script)], cwd=HERE.parent, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return f"TIMEOUT after {TIMEOUT_S:.0f}s", time.perf_counter() - began
    status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
    return status, time.perf_counter() - began


def main(argv: list[str]) -> int:
    """Run the selected scripts and print a summary; 1 if any failed."""
    scripts = discover(argv)
    if not scripts:
        print(f"no benchmark scripts matching {argv} in {HERE}")
        return 1
    results = [(script.name, *run(script)) for script in scripts]
    print(f"\n{'=' * 72}\n# summary")
    for name, status, seconds in results:
        print(f"{name:28s} {status:24s} {seconds:7.1f} s")
    print(f"{'total':28s} {'':24s} {sum(r[2] for r in results):7.1f} s")
    return 0 if all(status == "ok" for _, status, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
