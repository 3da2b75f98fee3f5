"""traced_parallel: a parallel span, linked branch spans, caps, settle and cancellation."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Awaitable, Callable

import pytest
from boundaries_support import Traced, dedent_tree

from harn_async_trace import SpanKind, span, traced_parallel


async def _ticks(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


class TestTree:
    def test_branches_link_to_parallel_span(self, traced: Traced) -> None:
        """Each branch is a detached spawn span linked with relation and index; exact times."""

        async def branch(i: int) -> int:
            with span(SpanKind.FN_CALL, f"work{i}"):
                traced.advance_ms(i + 1)
            return i * 10

        async def main() -> list[int]:
            with span(SpanKind.PIPELINE, "main"):
                return await traced_parallel([branch(i) for i in range(3)])

        assert traced.run(main) == [0, 10, 20]
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 6ms
              #2 parallel parallel 6ms branches=3 peak_concurrency=3 status=ok
            #3 spawn parallel[0] 1ms status=ok -> #2{relation=branch_of,index=0}
              #6 fn_call work0 1ms
            #4 spawn parallel[1] 3ms status=ok -> #2{relation=branch_of,index=1}
              #7 fn_call work1 2ms
            #5 spawn parallel[2] 6ms status=ok -> #2{relation=branch_of,index=2}
              #8 fn_call work2 3ms
        """)

    def test_cap_starts_branches_as_slots_free(self, traced: Traced) -> None:
        """With max_concurrent=1 each branch span opens when the previous one ends."""

        async def branch(i: int) -> int:
            traced.advance_ms(5)
            return i

        async def main() -> list[int]:
            return await traced_parallel(
                [branch(i) for i in range(3)], max_concurrent=1, name="fan"
            )

        assert traced.run(main) == [0, 1, 2]
        assert traced.outline() == dedent_tree("""
            #1 parallel fan 15ms branches=3 max_concurrent=1 peak_concurrency=1 status=ok
            #2 spawn fan[0] 5ms status=ok -> #1{relation=branch_of,index=0}
            #3 spawn fan[1] 5ms status=ok -> #1{relation=branch_of,index=1}
            #4 spawn fan[2] 5ms status=ok -> #1{relation=branch_of,index=2}
        """)
        assert [traced.by_name(f"fan[{i}]").start_ms for i in range(3)] == [0, 5, 10]

    def test_nested_parallel_inside_branch(self, traced: Traced) -> None:
        """A parallel inside a branch is a child of that branch's span."""

        async def leaf() -> int:
            return 1

        async def branch() -> list[int]:
            return await traced_parallel([leaf()], name="inner")

        async def main() -> list[list[int]]:
            return await traced_parallel([branch()], name="outer")

        assert traced.run(main) == [[1]]
        assert traced.outline() == dedent_tree("""
            #1 parallel outer 0ms branches=1 peak_concurrency=1 status=ok
            #2 spawn outer[0] 0ms status=ok -> #1{relation=branch_of,index=0}
              #3 parallel inner 0ms branches=1 peak_concurrency=1 status=ok
            #4 spawn inner[0] 0ms status=ok -> #3{relation=branch_of,index=0}
        """)


class TestOrderAndCap:
    def test_results_keep_input_order(self, traced: Traced) -> None:
        """Branches finishing in reverse order still return in input order."""

        async def branch(i: int) -> int:
            await _ticks(20 - i)
            return i

        assert traced.run(lambda: traced_parallel([branch(i) for i in range(20)])) == list(
            range(20)
        )

    @pytest.mark.parametrize("cap", [1, 3, 7])
    def test_peak_in_flight_never_exceeds_cap(self, traced: Traced, cap: int) -> None:
        """Many uneven branches: at most ``cap`` run at once, and the cap is reached."""
        state = {"now": 0, "peak": 0}

        async def branch(i: int) -> int:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
            await _ticks(1 + i % 5)
            state["now"] -= 1
            return i

        async def main() -> list[int]:
            return await traced_parallel([branch(i) for i in range(60)], max_concurrent=cap)

        assert traced.run(main) == list(range(60))
        assert state["peak"] == cap
        assert traced.by_name("parallel").metadata["peak_concurrency"] == cap
        assert traced.collector.open_span_count() == 0

    def test_callables_are_called_lazily_inside_the_branch(self, traced: Traced) -> None:
        """Zero-arg callables are called only when their branch starts, under its span."""
        started: list[int] = []

        def make(i: int) -> Callable[[], Awaitable[int]]:
            async def run() -> int:
                started.append(i)
                with span(SpanKind.STEP, f"s{i}"):
                    await asyncio.sleep(0)
                return i

            def factory() -> Awaitable[int]:
                started.append(-i - 1)
                return run()

            return factory

        assert traced.run(lambda: traced_parallel([make(i) for i in range(3)], max_concurrent=1))
        assert started == [-1, 0, -2, 1, -3, 2]
        for i in range(3):
            assert traced.by_name(f"s{i}").parent_id == traced.by_name(f"parallel[{i}]").span_id


class TestFailures:
    def test_settle_returns_exceptions_in_place(self, traced: Traced) -> None:
        """settle=True returns errors in place and counts successes and failures."""

        async def branch(i: int) -> int:
            if i % 2:
                raise ValueError(f"bad {i}")
            return i

        results = traced.run(lambda: traced_parallel([branch(i) for i in range(4)], settle=True))
        assert results[0::2] == [0, 2]
        assert [str(r) for r in results[1::2]] == ["bad 1", "bad 3"]
        assert traced.outline() == dedent_tree("""
            #1 parallel parallel 0ms branches=4 failed=2 peak_concurrency=4 settle=true \
status=ok succeeded=2
            #2 spawn parallel[0] 0ms status=ok -> #1{relation=branch_of,index=0}
            #3 spawn parallel[1] 0ms error=bad 1 error_type=ValueError status=error \
-> #1{relation=branch_of,index=1}
            #4 spawn parallel[2] 0ms status=ok -> #1{relation=branch_of,index=2}
            #5 spawn parallel[3] 0ms error=bad 3 error_type=ValueError status=error \
-> #1{relation=branch_of,index=3}
        """)

    def test_first_failure_cancels_others_and_raises(self, traced: Traced) -> None:
        """Without settle, the first error cancels running branches, skips the rest, raises."""

        async def slow(i: int) -> int:
            with span(SpanKind.FN_CALL, f"slow{i}"):
                await asyncio.Event().wait()
            return i

        async def boom() -> int:
            await asyncio.sleep(0)
            traced.advance_ms(4)
            raise RuntimeError("boom")

        async def main() -> None:
            branches = [slow(0), boom(), slow(2), slow(3), slow(4)]
            with pytest.raises(RuntimeError, match="boom"):
                await traced_parallel(branches, max_concurrent=3)

        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the two never-started branches are closed
            traced.run(main)
            gc.collect()
        assert traced.outline() == dedent_tree("""
            #1 parallel parallel 4ms branches=5 branches_cancelled=2 branches_not_started=2 \
error=boom error_type=RuntimeError max_concurrent=3 peak_concurrency=3 status=error
            #2 spawn parallel[0] 4ms cancelled=true status=cancelled \
-> #1{relation=branch_of,index=0}
              #5 fn_call slow0 4ms cancelled=true
            #3 spawn parallel[1] 4ms error=boom error_type=RuntimeError status=error \
-> #1{relation=branch_of,index=1}
            #4 spawn parallel[2] 4ms cancelled=true status=cancelled \
-> #1{relation=branch_of,index=2}
              #6 fn_call slow2 4ms cancelled=true
        """)

    def test_parent_cancellation_cancels_branches(self, traced: Traced) -> None:
        """Cancelling the caller cancels every branch and records it on every span."""

        async def forever(i: int) -> None:
            with span(SpanKind.FN_CALL, f"wait{i}"):
                await asyncio.Event().wait()

        async def caller() -> None:
            await traced_parallel([forever(i) for i in range(3)], max_concurrent=2)

        async def main() -> None:
            task = asyncio.create_task(caller())
            await _ticks(3)
            traced.advance_ms(9)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 parallel parallel 9ms branches=3 branches_cancelled=2 branches_not_started=1 \
cancelled=true max_concurrent=2 peak_concurrency=2 status=cancelled
            #2 spawn parallel[0] 9ms cancelled=true status=cancelled \
-> #1{relation=branch_of,index=0}
              #4 fn_call wait0 9ms cancelled=true
            #3 spawn parallel[1] 9ms cancelled=true status=cancelled \
-> #1{relation=branch_of,index=1}
              #5 fn_call wait1 9ms cancelled=true
        """)
        assert traced.collector.open_span_count() == 0

    def test_timeout_around_parallel_closes_everything(self, traced: Traced) -> None:
        """An asyncio.timeout firing mid fan-out leaves no open span."""

        async def forever() -> None:
            await asyncio.Event().wait()

        async def main() -> None:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0):
                    await traced_parallel([forever() for _ in range(5)])

        traced.run(main)
        assert traced.collector.open_span_count() == 0
        statuses = [s.metadata["status"] for s in traced.collector.spans()]
        assert statuses == ["cancelled"] * 6

    def test_branch_cancelled_from_outside_counts_as_failure(self, traced: Traced) -> None:
        """A branch cancelled by someone else fails the fan-out like gather does."""

        async def victim() -> None:
            current = asyncio.current_task()
            assert current is not None
            current.cancel()
            await asyncio.sleep(0)

        async def main() -> None:
            with pytest.raises(asyncio.CancelledError):
                await traced_parallel([victim()])

        traced.run(main)
        assert traced.by_name("parallel[0]").metadata["status"] == "cancelled"


class TestEdges:
    def test_empty_input(self, traced: Traced) -> None:
        """No branches: an empty list and a parallel span saying so."""
        assert traced.run(lambda: traced_parallel([])) == []
        expected = "#1 parallel parallel 0ms branches=0 peak_concurrency=0 status=ok"
        assert traced.outline() == expected

    def test_disabled_tracing(self, traced: Traced) -> None:
        """With tracing disabled the fan-out still works and records nothing."""
        traced.collector.enabled = False

        async def branch(i: int) -> int:
            return -i

        result = traced.run(lambda: traced_parallel([branch(i) for i in range(3)], settle=True))
        assert result == [0, -1, -2]
        assert traced.collector.spans() == []

    @pytest.mark.parametrize(
        ("cap", "error"), [(0, ValueError), (True, TypeError), (1.5, TypeError)]
    )
    def test_bad_cap_rejected_and_inputs_closed(
        self, traced: Traced, cap: object, error: type[Exception]
    ) -> None:
        """An invalid max_concurrent raises and closes the given coroutines."""

        async def branch() -> None:
            pass

        async def main() -> None:
            with pytest.raises(error):
                await traced_parallel([branch()], max_concurrent=cap)  # type: ignore[arg-type]  # runtime guard

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            traced.run(main)
            gc.collect()
        assert traced.collector.spans() == []

    def test_wide_fan_out_with_cap(self, traced: Traced) -> None:
        """5k branches under a cap of 64 all run, in order, with every span closed."""

        async def branch(i: int) -> int:
            with span(SpanKind.FN_CALL, f"b{i}"):
                await asyncio.sleep(0)
            return i

        result = traced.run(
            lambda: traced_parallel([branch(i) for i in range(5000)], max_concurrent=64)
        )
        assert result == list(range(5000))
        spans = {s.name: s for s in traced.collector.spans()}
        assert all(spans[f"b{i}"].parent_id == spans[f"parallel[{i}]"].span_id for i in range(5000))
        assert traced.collector.open_span_count() == 0
