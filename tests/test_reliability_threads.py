"""Thread safety: spans from worker threads and from the loop at the same time.

Loop tasks, ``asyncio.to_thread`` jobs, ``traced_run_in_executor`` jobs on a
4-thread pool and raw ``threading.Thread`` s (via ``carry_context``) all open
nested spans into one collector at once, with the GIL switch interval turned
down so threads really interleave inside the collector. Afterwards: ids are
exactly 1..N (none lost, none duplicated), every span has the parent its
code implies, nothing is left open.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from harn_async_trace import (
    MockClock,
    Span,
    SpanCollector,
    SpanKind,
    carry_context,
    install_override,
    span,
    traced_run_in_executor,
    use_collector,
)
from harn_async_trace.loop import virtual_loop_factory

LOOP_TASKS = 20
THREAD_JOBS = 12  # per kind of thread hand-off
DEPTH = 3
REPEAT = 40  # spans opened by each thread job, DEPTH deep


@pytest.fixture(autouse=True)
def _fast_gil_switching() -> Iterator[None]:
    """Make threads switch very often, so they interleave inside collector calls."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _thread_job(tag: str) -> None:
    """Sync work in a thread: REPEAT nested chains, DEPTH deep, named after ``tag``."""
    for r in range(REPEAT):
        with span(SpanKind.STEP, f"{tag}.{r}.0"):
            with span(SpanKind.STEP, f"{tag}.{r}.1"), span(SpanKind.STEP, f"{tag}.{r}.2"):
                pass


async def _loop_task(tag: str) -> None:
    for r in range(REPEAT):
        with span(SpanKind.STEP, f"{tag}.{r}.0"):
            await asyncio.sleep(0)
            with span(SpanKind.STEP, f"{tag}.{r}.1"):
                await asyncio.sleep(0)
                with span(SpanKind.STEP, f"{tag}.{r}.2"):
                    pass


async def _handoff(kind: str, i: int, executor: ThreadPoolExecutor) -> None:
    """Hand ``_thread_job`` to a thread from inside a span, and await it there.

    Awaiting inside the span keeps it open while the thread works: spans
    opened after their creator's span ended would (by design) parent to the
    nearest span still open instead, which is timing-dependent with threads.
    """
    tag = f"{kind}{i}"
    with span(SpanKind.FN_CALL, f"call-{tag}"):
        if kind == "to_thread":
            await asyncio.to_thread(_thread_job, tag)
        elif kind == "executor":
            await traced_run_in_executor(executor, _thread_job, tag)
        else:
            thread = threading.Thread(target=carry_context(_thread_job), args=(tag,))
            thread.start()
            await asyncio.to_thread(thread.join)


async def _program(executor: ThreadPoolExecutor) -> None:
    with span(SpanKind.PIPELINE, "main"):
        work = [_loop_task(f"loop{i}") for i in range(LOOP_TASKS)]
        for kind in ("to_thread", "executor", "thread"):
            work += [_handoff(kind, i, executor) for i in range(THREAD_JOBS)]
        await asyncio.gather(*work)


def _run(use_uvloop: bool) -> SpanCollector:
    clock = MockClock()
    with install_override(clock), ThreadPoolExecutor(4) as executor:
        collector = SpanCollector()

        async def bound() -> None:
            with use_collector(collector):
                await _program(executor)

        factory = virtual_loop_factory(clock, use_uvloop=use_uvloop)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(bound())
    return collector


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
class TestThreadsAndLoop:
    def test_no_lost_or_duplicated_ids(self, use_uvloop: bool) -> None:
        """Every id from 1 to N appears exactly once; the count is what the code opened."""
        collector = _run(use_uvloop)
        spans = collector.spans()
        jobs = LOOP_TASKS + 3 * THREAD_JOBS
        expected = 1 + 3 * THREAD_JOBS + jobs * REPEAT * DEPTH
        assert len(spans) == expected
        assert sorted(s.span_id for s in spans) == list(range(1, expected + 1))
        assert collector.open_span_count() == 0
        assert collector.dropped_spans == 0
        # The run really was concurrent: some thread job's ids are interleaved
        # with ids given to other jobs at the same time.
        ids_by_job: dict[str, list[int]] = {}
        for s in spans:
            if "." in s.name:
                ids_by_job.setdefault(s.name.split(".")[0], []).append(s.span_id)
        interleaved = [
            job
            for job, ids in ids_by_job.items()
            if not job.startswith("loop") and max(ids) - min(ids) + 1 > len(ids)
        ]
        assert interleaved

    def test_every_span_has_the_parent_its_code_implies(self, use_uvloop: bool) -> None:
        """Thread chains nest in their thread, under the loop span that handed them off."""
        spans = _run(use_uvloop).spans()
        by_name: dict[str, Span] = {s.name: s for s in spans}
        assert len(by_name) == len(spans)
        main = by_name["main"]
        wrong: list[str] = []
        for s in spans:
            if s.name == "main":
                continue
            if s.name.startswith("call-"):
                want = main.span_id
            else:
                tag, r, depth = s.name.rsplit(".", 2)
                if depth != "0":
                    want = by_name[f"{tag}.{r}.{int(depth) - 1}"].span_id
                elif tag.startswith("loop"):
                    want = main.span_id
                else:
                    want = by_name[f"call-{tag}"].span_id
            if s.parent_id != want:
                wrong.append(f"{s.name}: parent #{s.parent_id}, expected #{want}")
        assert wrong == []
