"""Fuzzed concurrency invariants: random programs on virtual asyncio and uvloop.

Hypothesis draws programs (``reliability_programs``) of nested spans (some
starting a new trace), sleeps, spawns and plain ``create_task`` tasks under
``instrument_asyncio`` (awaited, cancelled, forgotten), capped/settled
parallel fan-outs, task groups, pool submits, channel emits with batching
triggers, queues with a consumer task, timeouts and raises.
Each runs under a MockClock on the virtual loop and its trace is checked
against the interpreter's ground truth (``reliability_invariants``), then
replayed: the second trace must be identical, ids and times included.

Profiles (env ``HARN_RELIABILITY_PROFILE``): ``ci`` (default: 120 programs,
derandomized, so CI is reproducible) and ``deep`` (2000 random programs per
loop, for local runs; see docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from reliability_interpreter import run_program
from reliability_invariants import check
from reliability_programs import (
    Body,
    Channel,
    Group,
    Parallel,
    Pool,
    Queue,
    Raise,
    Sleep,
    Span,
    Spawn,
    Timeout,
    Try,
    programs,
)

from harn_async_trace import SpanCollector, SpanKind, SpanLink
from harn_async_trace.export import span_to_dict

settings.register_profile(
    "ci",
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "deep",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("HARN_RELIABILITY_PROFILE", "ci")
FUZZ = settings.get_profile(PROFILE)

LOOPS = pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])


def _dicts(program: Body, use_uvloop: bool) -> list[dict[str, object]]:
    return [span_to_dict(s) for s in run_program(program, use_uvloop=use_uvloop).collector.spans()]


class TestFuzzedInvariants:
    @LOOPS
    @FUZZ
    @given(program=programs())
    def test_trace_matches_program_structure(self, program: Body, use_uvloop: bool) -> None:
        """Every random program's trace has the parents, links and outcomes the program implies."""
        run = run_program(program, use_uvloop=use_uvloop)
        assert check(run) == []

    @LOOPS
    @FUZZ
    @given(program=programs())
    def test_replay_gives_the_identical_trace(self, program: Body, use_uvloop: bool) -> None:
        """Running the same program twice on fresh mock clocks gives byte-identical span dicts."""
        assert _dicts(program, use_uvloop) == _dicts(program, use_uvloop)


# Hand-written programs for the cases the invariants are about, so each is
# exercised on every run whatever hypothesis draws.
EDGE_PROGRAMS: dict[str, Body] = {
    "forgotten spawn cancelled by the runner": (
        Spawn((Span((Sleep(10),)),), "forget", 0),
    ),
    "cancel mid-span in a spawned task": (
        Spawn((Span((Span((Sleep(10),)),)),), "cancel", 5),
    ),
    "timeout cancels nested spans": (Timeout(2, (Span((Span((Sleep(5),)),)),)),),
    "parallel first failure cancels siblings": (
        Try((Parallel(((Sleep(1), Raise()), (Span((Sleep(10),)),), (Sleep(0),)), 2, False),)),
    ),
    "settled parallel keeps going": (
        Parallel(((Raise(),), (Span((Sleep(1),)),), (Span((Raise(),)),)), 1, True),
    ),
    "pool rejects and fails jobs": (
        Pool(((Sleep(5),), (Raise(),), (Span((Sleep(1),)),), (Sleep(0),)), 1, 1),
    ),
    "pool cancelled mid-drain by a timeout": (
        Timeout(3, (Pool(((Span((Sleep(10),)),), (Sleep(10),)), 1, 2),)),
    ),
    "batched channel with a failing handler": (
        Channel(5, 2, (Span((Sleep(1), Raise())),)),
    ),
    "spawn inside a handler inside a pool job": (
        Pool(((Channel(2, 1, (Spawn((Span((Sleep(1),)),), "await", 0),)),),), 1, 0),
    ),
    "raise escapes every level": (Span((Parallel(((Span((Raise(),)),),), None, False),)),),
    "task group: a failing child cancels its siblings": (
        Try((Group(((Sleep(1), Raise()), (Span((Sleep(10),)),), (Sleep(0),)), (Sleep(5),)),)),
    ),
    "task group: the block fails before any child ran": (
        Try((Group(((Span((Sleep(1),)),), (Sleep(1),)), (Raise(),)),)),
    ),
    "queue: full buffer, failing handler": (Queue(4, 1, (Span((Sleep(1), Raise())),)),),
    "queue: producer timed out while blocked": (Timeout(2, (Queue(4, 1, (Sleep(5),)),)),),
    "create_task: cancelled, forgotten, failed": (
        Spawn((Span((Sleep(10),)),), "cancel", 0, "create_task"),
        Spawn((Sleep(3),), "forget", 0, "create_task"),
        Try((Spawn((Raise(),), "await", 0, "create_task"),)),
    ),
    "new_trace request with tasks, a queue and a group under it": (
        Span(
            (
                Spawn((Span(()),), "await", 0, "create_task"),
                Queue(1, 0, (Span((Sleep(1),)),)),
                Group(((Sleep(1),),), (Span(()),)),
            ),
            True,
        ),
    ),
}


class TestEdgePrograms:
    @LOOPS
    @pytest.mark.parametrize("name", list(EDGE_PROGRAMS))
    def test_edge_program_invariants_and_replay(self, name: str, use_uvloop: bool) -> None:
        """A hand-picked hard case: invariants hold, nothing is left open, replay is identical."""
        program = EDGE_PROGRAMS[name]
        run = run_program(program, use_uvloop=use_uvloop)
        assert check(run) == []
        assert run.collector.spans(), "the program recorded spans"
        assert _dicts(program, use_uvloop) == [span_to_dict(s) for s in run.collector.spans()]

    def test_cancelled_and_failed_spans_are_recorded_as_such(self) -> None:
        """The timeout and cancel cases really produce cancelled spans, and raises error spans."""
        spans = run_program(EDGE_PROGRAMS["timeout cancels nested spans"], use_uvloop=False)
        steps = [s for s in spans.collector.spans() if s.kind is SpanKind.STEP]
        assert len(steps) == 2
        assert all(s.metadata.get("cancelled") is True for s in steps)
        assert all(s.duration_ms == 2 for s in steps)
        failed = run_program(EDGE_PROGRAMS["raise escapes every level"], use_uvloop=False)
        spans_ = failed.collector.spans()
        errors = [s for s in spans_ if s.metadata.get("error_type") == "ProgramError"]
        assert {str(s.kind) for s in errors} >= {"pipeline", "parallel", "spawn", "step"}


class TestCheckerCanFail:
    """The invariant checker is itself tested: it must flag a broken trace."""

    def test_flags_a_misparented_span(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With chain binding disabled, a spawned task's span parents to the caller: flagged."""
        from harn_async_trace.collector import SpanCollector

        monkeypatch.setattr(SpanCollector, "bind", lambda self, span_id: contextlib.nullcontext())
        run = run_program((Span((Spawn((Span(()),), "await", 0),)),), use_uvloop=False)
        problems = check(run)
        assert any("parent is" in p and "expected ('spawn', 'sp2')" in p for p in problems)

    def test_flags_a_boundary_wrapped_twice(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """If instrument_asyncio's factory wrapped a traced_spawn task again, it is flagged."""
        from harn_async_trace.boundaries import _task_factory

        monkeypatch.setattr(_task_factory, "BOUNDARY_TASK_CODES", set())
        run = run_program((Span((Spawn((Span(()),), "await", 0),)),), use_uvloop=False)
        assert any("two spans with key ('spawn', 'sp2')" in p for p in check(run))

    def test_flags_a_new_trace_that_kept_the_trace(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A new_trace span opened as a plain root (same trace id) is flagged."""
        from harn_async_trace.collector import SpanCollector

        real = SpanCollector.open

        def no_new_trace(
            self: SpanCollector,
            kind: SpanKind | str,
            name: str,
            links: list[SpanLink] | None = None,
            detached: bool = False,
            push: bool = True,
            new_trace: bool = False,
            metadata: dict[str, Any] | None = None,
        ) -> int:
            return real(self, kind, name, links, detached or new_trace, push, False, metadata)

        monkeypatch.setattr(SpanCollector, "open", no_new_trace)
        run = run_program((Span((Span(()),), True),), use_uvloop=False)
        assert any("new_trace span kept the collector's trace id" in p for p in check(run))

    def test_flags_a_queue_item_linked_to_the_wrong_emit(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If a received item's link pointed anywhere but its emit, the checker says so."""
        from harn_async_trace.boundaries import queue

        def wrong(link: SpanLink, **attributes: str) -> SpanLink:
            return SpanLink(link.trace_id, str(int(link.span_id) - 1), attributes)

        monkeypatch.setattr(queue, "relink", wrong)
        run = run_program((Queue(2, 0, ()),), use_uvloop=False)
        problems = check(run)
        assert any(p.startswith("lost span") and "channel_match" in p for p in problems)

    def test_flags_a_span_left_open(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """If cancelled boundary spans were never ended, the checker reports open and lost spans."""
        from harn_async_trace.boundaries import _common

        real = _common.end_with_status

        def skip_cancelled(
            collector: SpanCollector, span_id: int, exc: BaseException | None
        ) -> None:
            if exc is None or not isinstance(exc, asyncio.CancelledError):
                real(collector, span_id, exc)

        monkeypatch.setattr(_common, "end_with_status", skip_cancelled)
        run = run_program((Spawn((Sleep(10),), "cancel", 1),), use_uvloop=False)
        problems = check(run)
        assert "1 spans left open" in problems
        assert any(p.startswith("lost span") for p in problems)
