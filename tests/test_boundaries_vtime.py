"""Boundaries on the virtual-time loop: real sleeps and timeouts, exact durations."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from boundaries_support import VIRTUAL_LOOPS, Traced, dedent_tree, make_traced

from harn_async_trace import (
    SpanKind,
    TracedChannel,
    TracedPool,
    span,
    span_to_dict,
    traced_parallel,
    traced_resume,
    traced_spawn,
    traced_suspension,
)


@pytest.fixture(params=VIRTUAL_LOOPS)
def traced(request: pytest.FixtureRequest) -> Iterator[Traced]:
    """A collector and a runner on the virtual-time loop (asyncio or uvloop base)."""
    value, restore = make_traced(request.param)
    yield value
    restore()


async def _sleep_in_span(name: str, seconds: float) -> float:
    with span(SpanKind.FN_CALL, name):
        await asyncio.sleep(seconds)
    return seconds


class TestSpawn:
    def test_hour_long_background_task(self, traced: Traced) -> None:
        """A task sleeping an hour after its caller ended: spans say exactly one hour."""

        async def main() -> None:
            with span(SpanKind.PIPELINE, "main"):
                task = traced_spawn(_sleep_in_span("nap", 3600), name="bg")
                await asyncio.sleep(0.25)
            await task

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 250ms
            #2 spawn bg 3600000ms status=ok -> #1{relation=spawned_from}
              #3 fn_call nap 3600000ms
        """)


class TestParallel:
    def test_cap_schedules_branches_in_virtual_time(self, traced: Traced) -> None:
        """max_concurrent=2 over sleeps of 3,1,2,1 s: exact starts, ends and total."""

        async def main() -> list[float]:
            branches = [_sleep_in_span(f"s{i}", sec) for i, sec in enumerate([3, 1, 2, 1])]
            return await traced_parallel(branches, max_concurrent=2, name="fan")

        assert traced.run(main) == [3, 1, 2, 1]
        assert traced.outline() == dedent_tree("""
            #1 parallel fan 4000ms branches=4 max_concurrent=2 peak_concurrency=2 status=ok
            #2 spawn fan[0] 3000ms status=ok -> #1{relation=branch_of,index=0}
              #4 fn_call s0 3000ms
            #3 spawn fan[1] 1000ms status=ok -> #1{relation=branch_of,index=1}
              #5 fn_call s1 1000ms
            #6 spawn fan[2] 2000ms status=ok -> #1{relation=branch_of,index=2}
              #7 fn_call s2 2000ms
            #8 spawn fan[3] 1000ms status=ok -> #1{relation=branch_of,index=3}
              #9 fn_call s3 1000ms
        """)
        starts = [traced.by_name(f"fan[{i}]").start_ms for i in range(4)]
        assert starts == [0, 0, 1000, 3000]

    def test_timeout_cancels_slow_branches(self, traced: Traced) -> None:
        """asyncio.timeout(2.5) over 1/2/3/10 s branches: two finish, two are cancelled."""

        async def main() -> None:
            branches = [_sleep_in_span(f"s{i}", sec) for i, sec in enumerate([1, 2, 3, 10])]
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(2.5):
                    await traced_parallel(branches)

        traced.run(main)
        result = {
            s.name: (s.duration_ms, s.metadata.get("status"))
            for s in traced.collector.spans()
            if s.kind in (SpanKind.SPAWN, SpanKind.PARALLEL)
        }
        assert result == {
            "parallel[0]": (1000, "ok"),
            "parallel[1]": (2000, "ok"),
            "parallel[2]": (2500, "cancelled"),
            "parallel[3]": (2500, "cancelled"),
            "parallel": (2500, "cancelled"),
        }
        assert traced.by_name("parallel").metadata["branches_cancelled"] == 2
        assert traced.collector.open_span_count() == 0


class TestPool:
    def test_queue_dwell_is_exact(self, traced: Traced) -> None:
        """Two workers over jobs of 5,3,4,1 s: queued jobs wait exactly 3 s and 5 s."""

        async def main() -> None:
            async with TracedPool(2, 10, name="p") as pool:
                futures = [
                    pool.submit(_sleep_in_span, f"w{i}", sec, name=f"j{i}")
                    for i, sec in enumerate([5, 3, 4, 1])
                ]
                await asyncio.gather(*futures)

        traced.run(main)
        dequeued = {
            s.name: (s.start_ms, s.duration_ms, s.metadata["queue_dwell_ms"], s.metadata["worker"])
            for s in traced.collector.spans()
            if s.kind == SpanKind.POOL_DEQUEUE
        }
        assert dequeued == {
            "j0": (0, 5000, 0, 0),
            "j1": (0, 3000, 0, 1),
            "j2": (3000, 4000, 3000, 1),
            "j3": (5000, 1000, 5000, 0),
        }

    def test_wait_for_timeout_cancels_the_job(self, traced: Traced) -> None:
        """wait_for on a job's future times out and cancels the running job at 2 s."""

        async def main() -> None:
            async with TracedPool(1, 1, name="p") as pool:
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(pool.submit(_sleep_in_span, "slow", 60, name="j"), 2)

        traced.run(main)
        dequeue = [s for s in traced.collector.spans() if s.kind == SpanKind.POOL_DEQUEUE]
        assert [(s.duration_ms, s.metadata["status"]) for s in dequeue] == [(2000, "cancelled")]
        assert traced.by_name("slow").metadata == {"cancelled": True}

    def test_shutdown_grace_period_cancels_the_rest(self, traced: Traced) -> None:
        """shutdown(grace=5): j0 finishes, j1 is cancelled at 5 s, j2 never runs."""

        async def main() -> list[str]:
            pool = TracedPool(1, 5, name="p")
            futures = [
                pool.submit(_sleep_in_span, f"w{i}", sec, name=f"j{i}")
                for i, sec in enumerate([1, 10, 1])
            ]
            await asyncio.sleep(0)
            await pool.shutdown(grace=5)
            return ["cancelled" if f.cancelled() else "done" for f in futures]

        assert traced.run(main) == ["done", "cancelled", "cancelled"]
        dequeued = {
            s.name: (s.start_ms, s.duration_ms, s.metadata["status"], s.metadata.get("ran", True))
            for s in traced.collector.spans()
            if s.kind == SpanKind.POOL_DEQUEUE
        }
        assert dequeued == {
            "j0": (0, 1000, "ok", True),
            "j1": (1000, 4000, "cancelled", True),
            "j2": (5000, 0, "cancelled", False),
        }
        drain = traced.by_name("p")
        assert (drain.duration_ms, drain.metadata) == (
            5000,
            {"mode": "finish", "grace_ms": 5000, "queued": 2, "running": 1, "timed_out": True},
        )
        decisions = [
            (s.name, s.metadata["decision"], s.metadata["state"], s.metadata.get("reason"))
            for s in traced.collector.spans()
            if s.kind == SpanKind.DRAIN_DECISION
        ]
        assert decisions == [
            ("j0", "finish", "running", None),
            ("j1", "run", "queued", None),
            ("j2", "run", "queued", None),
            ("j1", "cancel", "running", "grace"),
            ("j2", "cancel", "queued", "grace"),
        ]
        assert traced.collector.open_span_count() == 0


class TestChannelAndResume:
    def test_handlers_take_virtual_time(self, traced: Traced) -> None:
        """A handler sleeping 2 s yields a 2000 ms match span linked to its emit."""

        async def main() -> None:
            channel = TracedChannel("jobs")
            channel.trigger(lambda v: _sleep_in_span("handle", v), name="worker")
            await channel.emit(2)
            await channel.aclose()

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 channel_emit jobs 0ms handlers_started=1 triggers_matched=1
            #2 channel_match worker 2000ms batch=1 channel=jobs status=ok \
-> #1{relation=consumed,index=0}
              #5 fn_call handle 2000ms
            #3 drain jobs 2000ms mode=finish pending=0 running=1
              #4 drain_decision jobs:worker 0ms decision=finish trigger=worker
        """)

    def test_resume_an_hour_later_in_another_task(self, traced: Traced) -> None:
        """A resume in another task an hour later links to the suspension span."""

        async def main() -> None:
            with span(SpanKind.PIPELINE, "workflow"):
                with traced_suspension("approval", reason="human") as suspended:
                    await asyncio.sleep(1)
            token = suspended.token
            await asyncio.sleep(3600)

            async def resumed() -> None:
                with traced_resume(token):
                    await _sleep_in_span("continue", 2)

            await asyncio.create_task(resumed())

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 pipeline workflow 1000ms
              #2 suspension approval 1000ms reason=human
            #3 resume approval 2000ms -> #2{relation=resumes}
              #4 fn_call continue 2000ms
        """)
        assert traced.by_name("continue").start_ms == 3_601_000


class TestReplay:
    def test_same_program_same_trace(self, traced: Traced) -> None:
        """Two runs of a program using every boundary give byte-identical traces."""

        async def program() -> None:
            with span(SpanKind.PIPELINE, "main"):
                background = traced_spawn(_sleep_in_span("bg", 1.5), name="bg")
                await traced_parallel(
                    [_sleep_in_span(f"p{i}", 0.1 * (3 - i)) for i in range(3)], max_concurrent=2
                )
                async with TracedPool(2, 4, name="pool") as pool:
                    for i in range(4):
                        pool.submit(_sleep_in_span, f"job{i}", 0.25 * i, name=f"job{i}")
                channel = TracedChannel("c")
                channel.trigger(lambda vs: _sleep_in_span("batch", len(vs)), batch_size=2)
                for i in range(3):
                    await channel.emit(i)
                await channel.aclose()
                await background

        def one_run() -> str:
            again, restore = make_traced(traced.loop_kind)
            try:
                again.run(program)
                return json.dumps([span_to_dict(s) for s in again.collector.spans()])
            finally:
                restore()

        first, second = one_run(), one_run()
        assert first == second
        assert len(json.loads(first)) > 20
