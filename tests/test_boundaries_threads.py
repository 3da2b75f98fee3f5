"""Context across threads: asyncio.to_thread, run_in_executor helpers, carry_context."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from boundaries_support import Traced, dedent_tree

from harn_async_trace import (
    ContextThreadPoolExecutor,
    SpanKind,
    carry_context,
    current_span_id,
    span,
    traced_run_in_executor,
    use_collector,
)


def _open_in_thread(name: str) -> int | None:
    """Open and close a span from the calling thread; report the parent it saw."""
    parent = current_span_id()
    with span(SpanKind.TOOL_CALL, name):
        pass
    return parent


class TestExecutors:
    def test_to_thread_works_out_of_the_box(self, traced: Traced) -> None:
        """asyncio.to_thread copies the context: the thread's span nests under the caller."""

        async def main() -> int | None:
            with span(SpanKind.PIPELINE, "main"):
                return await asyncio.to_thread(_open_in_thread, "in-thread")

        assert traced.run(main) == 1
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 0ms
              #2 tool_call in-thread 0ms
        """)

    def test_raw_run_in_executor_loses_context(self, traced: Traced) -> None:
        """The known gap: loop.run_in_executor runs without the caller's context."""

        async def main() -> int | None:
            loop = asyncio.get_running_loop()
            with span(SpanKind.PIPELINE, "main"):
                return await loop.run_in_executor(None, _open_in_thread, "lost")

        assert traced.run(main) is None
        assert [s.name for s in traced.collector.spans()] == ["main"]

    def test_traced_run_in_executor_carries_context(self, traced: Traced) -> None:
        """traced_run_in_executor runs the function in a copy of the caller's context."""

        async def main() -> int | None:
            with ThreadPoolExecutor(2) as pool, span(SpanKind.PIPELINE, "main"):
                return await traced_run_in_executor(pool, _open_in_thread, "kept")

        assert traced.run(main) == 1
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 0ms
              #2 tool_call kept 0ms
        """)

    def test_threads_and_loop_open_spans_concurrently(self, traced: Traced) -> None:
        """8 threads and 40 loop tasks open spans at once: ids unique, every parent right."""
        per_thread = 300

        def thread_work(job: int) -> None:
            for k in range(per_thread):
                with span(SpanKind.FN_CALL, f"t{job}-outer{k}"):
                    with span(SpanKind.FN_CALL, f"t{job}-inner{k}"):
                        pass

        async def thread_job(pool: ThreadPoolExecutor, job: int) -> None:
            with span(SpanKind.STEP, f"job{job}"):
                await traced_run_in_executor(pool, thread_work, job)

        async def loop_job(task: int) -> None:
            for k in range(50):
                with span(SpanKind.FN_CALL, f"l{task}-outer{k}"):
                    await asyncio.sleep(0)
                    with span(SpanKind.FN_CALL, f"l{task}-inner{k}"):
                        await asyncio.sleep(0)

        async def main() -> None:
            with ThreadPoolExecutor(8) as pool:
                await asyncio.gather(
                    *(thread_job(pool, j) for j in range(8)),
                    *(loop_job(t) for t in range(40)),
                )

        traced.run(main)
        spans = traced.collector.spans()
        assert len({s.span_id for s in spans}) == len(spans) == 8 + 8 * 2 * per_thread + 40 * 100
        by_name = {s.name: s for s in spans}
        wrong = 0
        for job in range(8):
            job_id = by_name[f"job{job}"].span_id
            for k in range(per_thread):
                outer = by_name[f"t{job}-outer{k}"]
                wrong += outer.parent_id != job_id
                wrong += by_name[f"t{job}-inner{k}"].parent_id != outer.span_id
        for task in range(40):
            for k in range(50):
                outer = by_name[f"l{task}-outer{k}"]
                wrong += outer.parent_id is not None
                wrong += by_name[f"l{task}-inner{k}"].parent_id != outer.span_id
        assert wrong == 0
        assert traced.collector.open_span_count() == 0

    def test_context_executor_fixes_raw_run_in_executor(self, traced: Traced) -> None:
        """With ContextThreadPoolExecutor as default, raw run_in_executor keeps the span."""

        async def main() -> list[int | None]:
            loop = asyncio.get_running_loop()
            loop.set_default_executor(ContextThreadPoolExecutor(4))
            with span(SpanKind.PIPELINE, "main"):
                return list(
                    await asyncio.gather(
                        loop.run_in_executor(None, _open_in_thread, "raw"),
                        asyncio.to_thread(_open_in_thread, "to_thread"),
                    )
                )

        assert traced.run(main) == [1, 1]
        # The two threads may open their spans in either order: compare parents.
        assert {s.name: s.parent_id for s in traced.collector.spans()} == {
            "main": None,
            "raw": 1,
            "to_thread": 1,
        }

    def test_context_executor_submit_from_sync_code(self, traced: Traced) -> None:
        """Plain executor.submit from sync code runs in the submitter's context too."""
        with use_collector(traced.collector), ContextThreadPoolExecutor(2) as pool:
            with span(SpanKind.PIPELINE, "outer"):
                first = pool.submit(_open_in_thread, "a").result()
            with span(SpanKind.PIPELINE, "other"):
                second = pool.submit(_open_in_thread, "b").result()
        assert [first, second] == [1, 3]
        assert {s.name: s.parent_id for s in traced.collector.spans()} == {
            "outer": None,
            "other": None,
            "a": 1,
            "b": 3,
        }


class TestCarryContext:
    def test_plain_thread_with_carried_context(self, traced: Traced) -> None:
        """A threading.Thread target wrapped with carry_context nests under the caller."""
        parents: list[int | None] = []
        with use_collector(traced.collector), span(SpanKind.PIPELINE, "main"):
            target = carry_context(lambda: parents.append(_open_in_thread("worker")))
            thread = threading.Thread(target=target)
            thread.start()
            thread.join()
        assert parents == [1]
        assert traced.outline() == dedent_tree("""
            #1 pipeline main 0ms
              #2 tool_call worker 0ms
        """)

    def test_one_wrapper_called_from_many_threads_at_once(self, traced: Traced) -> None:
        """A carried function may run in several threads concurrently."""
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def work(tag: int) -> None:
            try:
                with span(SpanKind.FN_CALL, f"w{tag}"):
                    barrier.wait(timeout=10)  # all six are inside the context at once
            except BaseException as exc:
                errors.append(exc)

        with use_collector(traced.collector), span(SpanKind.PIPELINE, "main"):
            carried = carry_context(work)
            threads = [threading.Thread(target=carried, args=(i,)) for i in range(6)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert errors == []
        assert sorted(s.parent_id or 0 for s in traced.collector.spans()) == [0] + [1] * 6
        assert carried.__name__ == "work"
