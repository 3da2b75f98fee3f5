"""Shared helpers for the benchmark scripts (not a benchmark: run_all skips ``_*.py``).

Every benchmark measures its baselines in the same process and run as our
runtime, interleaving the contenders round by round, so machine noise hits
all of them alike and the printed ratios stay meaningful on a busy box.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Row", "best_ns", "check", "machine_line", "print_table", "pure_core_run", "quick"]


def quick() -> bool:
    """True when ``BENCH_QUICK=1``: smaller sizes, for smoke-testing the scripts."""
    return os.environ.get("BENCH_QUICK") == "1"


def machine_line() -> str:
    """One line describing where the numbers came from."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} | nproc {os.cpu_count()} | "
        f"{cpu} | Python {sys.version.split()[0]} {platform.python_implementation()} | "
        f"{platform.system()} {platform.release()}"
    )


def best_ns(
    contenders: dict[str, Callable[[], object]],
    *,
    number: int,
    rounds: int,
    per_call: int = 1,
    between: Callable[[], object] | None = None,
) -> dict[str, float]:
    """Minimum ns per unit for each contender, over interleaved rounds.

    Each round times ``number`` calls of every contender in turn (``timeit``,
    so the cyclic GC is paused while timing, for all of them alike). The
    timer is this process's CPU time, not wall time: on a shared machine the
    time spent descheduled is not ours, and many short rounds with the
    minimum taken keep the rest of the noise out;
    ``per_call`` is how many units (spans) one call makes. ``between`` runs
    untimed after each batch (e.g. to drop the recorded spans).
    """
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(rounds):
        for label, func in contenders.items():
            seconds = timeit.Timer(func, timer=time.process_time).timeit(number)
            best[label] = min(best[label], seconds * 1e9 / (number * per_call))
            if between is not None:
                between()
    return best


@dataclass(frozen=True)
class Row:
    """One table row: a label, a measured value and optional ratio text."""

    label: str
    value: float
    unit: str
    note: str = ""


def print_table(title: str, rows: Sequence[Row]) -> None:
    """Print rows as a Markdown table (paste-able into RESULTS.md)."""
    print(f"\n### {title}\n")
    print("| case | value | notes |")
    print("|---|---:|---|")
    for row in rows:
        value = f"{row.value:,.0f}" if row.value >= 100 else f"{row.value:,.2f}"
        print(f"| {row.label} | {value} {row.unit} | {row.note} |")


def check(label: str, ok: bool, detail: str) -> str:
    """A goal line: ``PASS``/``MISS`` plus the numbers behind it."""
    line = f"- goal {'PASS' if ok else 'MISS'}: {label} ({detail})"
    print(line)
    return line


def pure_core_run(script: str) -> list[str]:
    """Run ``script --child`` with ``HARN_TRACE_PURE=1``; print its output, return its goal lines.

    The benchmarks measure the core of their own process; this gives the
    pure-Python core's figures in the same command.
    """
    import subprocess

    env = dict(os.environ, HARN_TRACE_PURE="1")
    out = subprocess.run([sys.executable, script, "--child"], env=env, capture_output=True,
                         text=True, check=True).stdout
    print(out, end="")
    return [line for line in out.splitlines() if line.startswith("- goal")]
