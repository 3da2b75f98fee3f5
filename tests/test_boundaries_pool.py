"""TracedPool: submit/dequeue spans, outcomes, dwell, errors, shutdown with no lost jobs."""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from boundaries_support import Traced, dedent_tree, outline

from harn_async_trace import (
    PoolClosedError,
    PoolFullError,
    SpanKind,
    TracedPool,
    span,
)


class TestTree:
    def test_outcomes_links_and_exact_dwell(self, traced: Traced) -> None:
        """accepted/queued/rejected submits; each job's dequeue span links back with its dwell."""

        async def work(ms: int) -> int:
            with span(SpanKind.FN_CALL, "work"):
                traced.advance_ms(ms)
            return ms

        async def main() -> list[int]:
            pool = TracedPool(1, 2, name="db")
            with span(SpanKind.PIPELINE, "main"):
                futures = [pool.submit(work, 3, name=f"job{i}") for i in range(3)]
                with pytest.raises(PoolFullError, match="pool 'db' is full"):
                    pool.submit(work, 1, name="job3")
                results = await asyncio.gather(*futures)
                await pool.shutdown()
            return results

        assert traced.run(main) == [3, 3, 3]
        assert outline(traced.collector.spans(), skip_meta=("error",)) == dedent_tree("""
            #1 pipeline main 9ms
              #2 pool_submit job0 0ms outcome=accepted pool=db queue_depth=0
              #3 pool_submit job1 0ms outcome=queued pool=db queue_depth=1
              #4 pool_submit job2 0ms outcome=queued pool=db queue_depth=2
              #5 pool_submit job3 0ms error_type=PoolFullError outcome=rejected pool=db \
queue_depth=3
              #12 drain db 0ms mode=finish queued=0 running=0
            #6 pool_dequeue job0 3ms pool=db queue_dwell_ms=0 status=ok worker=0 \
-> #2{relation=submitted_by}
              #7 fn_call work 3ms
            #8 pool_dequeue job1 3ms pool=db queue_dwell_ms=3 status=ok worker=0 \
-> #3{relation=submitted_by}
              #9 fn_call work 3ms
            #10 pool_dequeue job2 3ms pool=db queue_dwell_ms=6 status=ok worker=0 \
-> #4{relation=submitted_by}
              #11 fn_call work 3ms
        """)

    def test_job_runs_in_submitter_context(self, traced: Traced) -> None:
        """Context variables set by the submitter are visible inside the job."""
        tenant: contextvars.ContextVar[str] = contextvars.ContextVar("tenant")

        async def read() -> str:
            return tenant.get()

        async def main() -> list[str]:
            async with TracedPool(2, 4, name="p") as pool:
                tenant.set("a")
                first = pool.submit(read)
                tenant.set("b")
                second = pool.submit(read)
                return [await first, await second]

        assert traced.run(main) == ["a", "b"]


class TestAdmission:
    def test_accepts_one_job_per_free_worker(self, traced: Traced) -> None:
        """With max_queue=0, exactly ``workers`` jobs are accepted while all are busy."""

        async def main() -> int:
            gate = asyncio.Event()
            pool = TracedPool(3, 0, name="p")
            for i in range(3):
                pool.submit(gate.wait, name=f"j{i}")
            with pytest.raises(PoolFullError):
                pool.submit(gate.wait, name="j3")
            await asyncio.sleep(0)
            running = pool.running
            gate.set()
            await pool.shutdown()
            return running

        assert traced.run(main) == 3
        outcomes = [
            (s.name, s.metadata["outcome"])
            for s in traced.collector.spans()
            if s.kind == SpanKind.POOL_SUBMIT
        ]
        assert outcomes == [
            ("j0", "accepted"),
            ("j1", "accepted"),
            ("j2", "accepted"),
            ("j3", "rejected"),
        ]

    def test_free_worker_accepts_again_after_a_job_ends(self, traced: Traced) -> None:
        """Once a job finishes, the next submit is accepted rather than queued."""

        async def quick() -> None:
            pass

        async def main() -> None:
            async with TracedPool(1, 1, name="p") as pool:
                await pool.submit(quick, name="a")
                await pool.submit(quick, name="b")

        traced.run(main)
        outcomes = {
            s.name: s.metadata["outcome"]
            for s in traced.collector.spans()
            if s.kind == SpanKind.POOL_SUBMIT
        }
        assert outcomes == {"a": "accepted", "b": "accepted"}

    def test_submit_after_shutdown_is_refused(self, traced: Traced) -> None:
        """After shutdown, submit raises PoolClosedError and records a rejected submit."""

        async def job() -> None:
            pass

        async def main() -> None:
            pool = TracedPool(1, 1, name="p")
            await pool.shutdown()
            with pytest.raises(PoolClosedError):
                pool.submit(job(), name="late")

        traced.run(main)
        rejected = traced.by_name("late")
        assert rejected.metadata["outcome"] == "rejected"
        assert rejected.metadata["error_type"] == "PoolClosedError"

    @pytest.mark.parametrize(
        ("workers", "max_queue", "error"),
        [(0, 1, ValueError), (1, -1, ValueError), (1.0, 1, TypeError), (1, True, TypeError)],
    )
    def test_bad_sizes(self, workers: object, max_queue: object, error: type[Exception]) -> None:
        """Sizes must be ints: workers >= 1, max_queue >= 0."""
        with pytest.raises(error):
            TracedPool(workers, max_queue)  # type: ignore[arg-type]  # runtime guard


class TestFailures:
    def test_job_error_goes_to_future_and_worker_survives(self, traced: Traced) -> None:
        """A failing job fails its future and span; the same worker runs the next job."""

        async def bad() -> None:
            raise ValueError("nope")

        async def good() -> str:
            return "fine"

        async def main() -> str:
            async with TracedPool(1, 5, name="p") as pool:
                failing = pool.submit(bad, name="bad")
                passing = pool.submit(good, name="good")
                with pytest.raises(ValueError, match="nope"):
                    await failing
                return await passing

        assert traced.run(main) == "fine"
        submits = [s for s in traced.collector.spans() if s.kind == SpanKind.POOL_SUBMIT]
        assert [s.metadata["outcome"] for s in submits] == ["accepted", "queued"]
        dequeued = [s for s in traced.collector.spans() if s.kind == SpanKind.POOL_DEQUEUE]
        assert [(s.metadata["status"], s.metadata["worker"]) for s in dequeued] == [
            ("error", 0),
            ("ok", 0),
        ]
        assert traced.collector.open_span_count() == 0

    def test_cancelling_a_queued_future_skips_the_job(self, traced: Traced) -> None:
        """A job whose future is cancelled while queued never runs but gets a closed span."""
        ran: list[str] = []

        async def job(name: str) -> None:
            ran.append(name)
            await asyncio.sleep(0)

        async def main() -> None:
            async with TracedPool(1, 5, name="p") as pool:
                first = pool.submit(job, "first")
                second = pool.submit(job, "second")
                second.cancel()
                await first

        traced.run(main)
        assert ran == ["first"]
        skipped = [s for s in traced.collector.spans() if s.metadata.get("ran") is False]
        assert len(skipped) == 1
        assert skipped[0].metadata["status"] == "cancelled"

    def test_cancelling_a_running_future_cancels_the_job(self, traced: Traced) -> None:
        """Cancelling the future of a running job cancels the job task and its span."""

        async def forever() -> None:
            with span(SpanKind.FN_CALL, "inside"):
                await asyncio.Event().wait()

        async def main() -> None:
            async with TracedPool(1, 0, name="p") as pool:
                future = pool.submit(forever)
                await asyncio.sleep(0)
                traced.advance_ms(2)
                future.cancel()
                await asyncio.sleep(0)

        traced.run(main)
        assert traced.by_name("inside").metadata == {"cancelled": True}
        dequeue = [s for s in traced.collector.spans() if s.kind == SpanKind.POOL_DEQUEUE]
        assert [(s.duration_ms, s.metadata["status"]) for s in dequeue] == [(2, "cancelled")]


class TestShutdown:
    def test_drain_runs_every_queued_job(self, traced: Traced) -> None:
        """shutdown() finishes running and queued jobs and records each decision."""
        done: list[int] = []

        async def job(i: int) -> None:
            await asyncio.sleep(0)
            traced.advance_ms(1)
            done.append(i)

        async def main() -> None:
            pool = TracedPool(2, 10, name="p")
            for i in range(5):
                pool.submit(job, i, name=f"j{i}")
            await asyncio.sleep(0)  # j0 and j1 start
            await pool.shutdown()

        traced.run(main)
        assert sorted(done) == [0, 1, 2, 3, 4]
        drain = traced.by_name("p")
        decisions = [
            (s.name, s.metadata["decision"], s.metadata["state"])
            for s in traced.collector.spans()
            if s.parent_id == drain.span_id
        ]
        assert decisions == [
            ("j0", "finish", "running"),
            ("j1", "finish", "running"),
            ("j2", "run", "queued"),
            ("j3", "run", "queued"),
            ("j4", "run", "queued"),
        ]
        assert drain.metadata == {"mode": "finish", "queued": 3, "running": 2}
        assert traced.collector.open_span_count() == 0

    def test_cancel_settles_every_job(self, traced: Traced) -> None:
        """shutdown(cancel=True) cancels running jobs and skips queued ones; nothing is lost."""

        async def forever() -> None:
            await asyncio.Event().wait()

        async def main() -> list[bool]:
            pool = TracedPool(2, 10, name="p")
            futures = [pool.submit(forever, name=f"j{i}") for i in range(5)]
            await asyncio.sleep(0)
            await pool.shutdown(cancel=True)
            return [f.cancelled() for f in futures]

        assert traced.run(main) == [True] * 5
        dequeue = {
            s.name: (s.metadata["status"], s.metadata.get("ran", True))
            for s in traced.collector.spans()
            if s.kind == SpanKind.POOL_DEQUEUE
        }
        assert dequeue == {
            "j0": ("cancelled", True),
            "j1": ("cancelled", True),
            "j2": ("cancelled", False),
            "j3": ("cancelled", False),
            "j4": ("cancelled", False),
        }
        assert traced.by_name("p").metadata == {"mode": "cancel", "queued": 3, "running": 2}
        assert traced.collector.open_span_count() == 0

    def test_error_in_async_with_cancels(self, traced: Traced) -> None:
        """Leaving ``async with`` by an exception shuts the pool down in cancel mode."""

        async def forever() -> None:
            await asyncio.Event().wait()

        async def body() -> None:
            async with TracedPool(1, 1, name="p") as pool:
                pool.submit(forever)
                await asyncio.sleep(0)
                raise LookupError

        async def main() -> None:
            with pytest.raises(LookupError):
                await body()

        traced.run(main)
        assert traced.by_name("p").metadata["mode"] == "cancel"
        assert traced.collector.open_span_count() == 0

    def test_loop_teardown_closes_job_spans(self, traced: Traced) -> None:
        """A pool never shut down: the runner's final cancellation still closes every span."""

        async def forever() -> None:
            await asyncio.Event().wait()

        async def main() -> None:
            pool = TracedPool(2, 2, name="p")
            pool.submit(forever)
            pool.submit(forever)
            await asyncio.sleep(0)

        traced.run(main)
        assert traced.collector.open_span_count() == 0


class TestScale:
    def test_many_jobs_many_workers(self, traced: Traced) -> None:
        """2000 jobs on 8 workers: all run, each linked to its own submit, never > 8 at once."""
        state = {"now": 0, "peak": 0}

        async def job(i: int) -> int:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            with span(SpanKind.FN_CALL, f"inner{i}"):
                for _ in range(1 + i % 3):
                    await asyncio.sleep(0)
            state["now"] -= 1
            return i

        async def main() -> list[int]:
            async with TracedPool(8, 2000, name="p") as pool:
                futures = [pool.submit(job, i, name=f"job{i}") for i in range(2000)]
                return list(await asyncio.gather(*futures))

        assert traced.run(main) == list(range(2000))
        assert state["peak"] == 8
        spans = traced.collector.spans()
        submits = {s.name: s for s in spans if s.kind == SpanKind.POOL_SUBMIT}
        dequeues = {s.name: s for s in spans if s.kind == SpanKind.POOL_DEQUEUE}
        inners = {s.name: s for s in spans if s.kind == SpanKind.FN_CALL}
        bad = 0
        for i in range(2000):
            dq = dequeues[f"job{i}"]
            bad += dq.links[0].span_id != str(submits[f"job{i}"].span_id)
            bad += inners[f"inner{i}"].parent_id != dq.span_id
        assert bad == 0
        assert traced.collector.open_span_count() == 0

    def test_disabled_tracing(self, traced: Traced) -> None:
        """With tracing disabled the pool works and records nothing."""
        traced.collector.enabled = False

        async def job(x: int) -> int:
            return x + 1

        async def main() -> int:
            async with TracedPool(1, 1) as pool:
                return await pool.submit(job, 1)

        assert traced.run(main) == 2
        assert traced.collector.spans() == []
