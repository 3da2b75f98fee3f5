"""Stress in the test suite: thousands of concurrent traced tasks, nothing misparented or leaked.

The same workload as ``benchmarks/stress.py`` (which runs 100k tasks and
records the figures), at a size CI can afford: every task is alive and
suspended inside its span at once, 1 in 7 is cancelled there, 1 in 10 raises.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

N_TASKS = 3_000


def _stress_module() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "stress.py"
    spec = importlib.util.spec_from_file_location("harn_bench_stress", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


stress = _stress_module()


def _expected_spans() -> int:
    """main, then per task w{i} and outer{i}, and inner{i} unless cancelled before it."""
    cancelled = len(range(0, N_TASKS, stress.CANCEL_EVERY))
    return 1 + 2 * N_TASKS + (N_TASKS - cancelled)


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
class TestConcurrentTasks:
    def test_thousands_of_held_tasks_keep_their_parents(self, use_uvloop: bool) -> None:
        """3k tasks held at once: 0 misparented, 0 missing, 0 open, outcomes as the tasks ended."""
        result = stress.stress(N_TASKS, use_uvloop=use_uvloop)
        assert result["held"] == N_TASKS
        assert result["spans"] == _expected_spans()
        assert {k: result[k] for k in ("misparented", "missing", "wrong_outcome", "open")} == {
            "misparented": 0,
            "missing": 0,
            "wrong_outcome": 0,
            "open": 0,
        }
        assert result["dropped"] == 0
        assert result["live_span_objects"] == 0

    def test_a_full_collector_counts_exactly_what_it_dropped(self, use_uvloop: bool) -> None:
        """With max_spans below the span count, kept + dropped equals every span that ended."""
        capped = stress.stress(N_TASKS, use_uvloop=use_uvloop, max_spans=1_000)
        assert capped["spans"] == 1_000
        assert capped["dropped"] == _expected_spans() - 1_000
        assert capped["open"] == 0
        assert capped["live_span_objects"] == 0


class TestVerifierCanFail:
    def test_misparented_span_is_counted(self) -> None:
        """The stress verifier counts a span whose parent is wrong (it is not a rubber stamp)."""
        from harn_async_trace import MockClock, SpanCollector, install_override

        with install_override(MockClock()):
            collector = SpanCollector()
            main = collector.start("pipeline", "main")
            link = collector.span_link(main)
            assert link is not None
            spawned = collector.open("spawn", "w1", [link], detached=True, push=False)
            outer = collector.start("step", "outer1")  # wrongly under main, not under w1
            inner = collector.start("fn_call", "inner1")
            for span_id in (inner, outer, spawned, main):
                collector.end(span_id)
        counts = stress.verify(collector.spans(), 2, True)
        assert counts["misparented"] == 1
        assert counts["missing"] == 1  # task 0 never ran
