"""instrument_asyncio in every way programs make loops, beside other factories, on and off."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

import pytest
import uvloop
from boundaries_support import LOOPS, dedent_tree, new_loop, outline, spawn_names

from harn_async_trace import (
    MockClock,
    SpanCollector,
    SpanKind,
    install_override,
    instrument_asyncio,
    mock_time,
    run,
    span,
    uninstrument_asyncio,
    use_collector,
)
from harn_async_trace.loop import virtual_loop_factory


async def _leaf(label: str) -> str:
    with span(SpanKind.FN_CALL, label):
        await asyncio.sleep(0)
    return label


class TestLoops:
    """Loops made after instrumenting, in each of the ways programs make them."""

    @staticmethod
    def _program(collector: SpanCollector) -> Coroutine[Any, Any, None]:
        async def main() -> None:
            with use_collector(collector), span(SpanKind.PIPELINE, "main"):
                await asyncio.create_task(_leaf("leaf"), name="child")

        return main()

    def _check(self, collector: SpanCollector) -> None:
        assert outline(collector.spans()) == dedent_tree("""
            #1 pipeline main 0ms
            #2 spawn child 0ms status=ok -> #1{relation=spawned_from}
              #3 fn_call leaf 0ms
        """)

    @pytest.mark.parametrize(
        "how",
        [
            "asyncio.run",
            "asyncio.Runner()",
            "new_event_loop",
            "uvloop.run",
            "Runner(uvloop)",
            "uvloop policy",
            "harn run",
            "virtual factory",
        ],
    )
    def test_loop_created_after_instrumenting(self, how: str, instrumented: Any) -> None:
        """Every loop made from now on gets the factory, whoever makes it."""
        collector = SpanCollector()
        program = self._program(collector)
        # Spans read a mock clock on the real loops too (exact durations).
        with install_override(MockClock()):
            if how == "asyncio.run":
                asyncio.run(program)
            elif how == "asyncio.Runner()":
                with asyncio.Runner() as runner:
                    runner.run(program)
            elif how == "new_event_loop":
                loop = asyncio.new_event_loop()
                try:
                    loop.run_until_complete(program)
                finally:
                    loop.close()
            elif how == "uvloop.run":
                uvloop.run(program)
            elif how == "Runner(uvloop)":
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    runner.run(program)
            elif how == "uvloop policy":
                previous = asyncio.get_event_loop_policy()
                asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
                try:
                    asyncio.run(program)
                finally:
                    asyncio.set_event_loop_policy(previous)
            elif how == "harn run":
                run(program, clock=MockClock())
            else:
                with asyncio.Runner(loop_factory=virtual_loop_factory(MockClock())) as runner:
                    runner.run(program)
        self._check(collector)

    @pytest.mark.parametrize("kind", LOOPS)
    def test_instrumenting_inside_a_running_loop(self, kind: str) -> None:
        """A loop built by hand is covered by calling instrument_asyncio() inside it."""
        collector = SpanCollector()
        clock = MockClock()
        loop = new_loop(kind, clock)

        async def main() -> None:
            with instrument_asyncio():
                await self._program(collector)

        # Spans read the mock on the real loops too: durations are exact, not
        # "0 ms unless the machine is busy".
        try:
            with install_override(clock):
                loop.run_until_complete(main())
        finally:
            loop.close()
        self._check(collector)

    @pytest.mark.parametrize("kind", LOOPS)
    def test_loop_makes_the_same_kind_of_task(self, kind: str, instrumented: Any) -> None:
        """A loop's own task class is kept (the virtual loops order theirs for replays)."""
        loop = new_loop(kind, MockClock())

        async def main() -> tuple[type[Any], type[Any]]:
            plain = asyncio.create_task(asyncio.sleep(0))
            with use_collector(SpanCollector()), span(SpanKind.PIPELINE, "main"):
                wrapped = asyncio.create_task(asyncio.sleep(0))
            await asyncio.gather(plain, wrapped)
            return type(plain), type(wrapped)

        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            plain_type, wrapped_type = runner.run(main())
        uninstrument_asyncio()
        with asyncio.Runner(loop_factory=lambda: new_loop(kind, MockClock())) as runner:
            native = runner.run(_task_type())
        assert plain_type is wrapped_type is native


def test_mock_time_entered_inside_an_instrumented_loop(instrumented: Any) -> None:
    """A running loop made virtual in place by mock_time() makes its own tasks again."""

    async def main() -> tuple[type[Any], type[Any]]:
        with mock_time(), use_collector(SpanCollector()), span(SpanKind.PIPELINE, "m"):
            wrapped = asyncio.create_task(asyncio.sleep(3600))
            await wrapped
            return type(wrapped), await _task_type()

    wrapped_type, native = asyncio.run(main())
    assert wrapped_type is native
    assert wrapped_type is not asyncio.Task  # the virtual loop's own task class


async def _task_type() -> type[Any]:
    task = asyncio.create_task(asyncio.sleep(0))
    await task
    return type(task)


class _RecordingFactory:
    """A task factory set before instrumenting: makes its own Task subclass, counts calls."""

    class Task(asyncio.Task[Any]):
        pass

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.Task(coro, loop=loop, **kwargs)


class TestComposition:
    @pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
    def test_existing_factory_is_kept_beneath(self, kind: str) -> None:
        """A factory already set still makes every task, and is put back when turned off."""
        collector = SpanCollector()
        recording = _RecordingFactory()

        async def main() -> tuple[bool, bool, bool]:
            loop = asyncio.get_running_loop()
            loop.set_task_factory(recording)
            with instrument_asyncio():
                with use_collector(collector), span(SpanKind.PIPELINE, "main"):
                    task = asyncio.create_task(_leaf("leaf"), name="child")
                    await task
                changed = loop.get_task_factory() is not recording
            return isinstance(task, _RecordingFactory.Task), changed, (
                loop.get_task_factory() is recording
            )

        loop = new_loop(kind, MockClock())
        try:
            assert loop.run_until_complete(main()) == (True, True, True)
        finally:
            loop.close()
        assert recording.calls == 1
        assert spawn_names(collector) == ["child"]

    @pytest.mark.skipif(sys.version_info < (3, 12), reason="eager tasks are Python 3.12+")
    def test_eager_task_factory(self) -> None:
        """Eager tasks (which run inside create_task) get their span too."""
        collector = SpanCollector()

        async def main() -> None:
            loop = asyncio.get_running_loop()
            loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]  # 3.12+
            with instrument_asyncio(), use_collector(collector), span(SpanKind.PIPELINE, "m"):
                await asyncio.create_task(_leaf("eager"))

        asyncio.run(main())
        assert spawn_names(collector) == ["_leaf"]
        assert collector.open_span_count() == 0


class TestOnOff:
    def test_uninstrument_restores_everything(self) -> None:
        """After turning off: the patched functions are the originals, loops are plain again."""
        originals = (asyncio.new_event_loop, asyncio.events.new_event_loop, asyncio.Runner.__init__)
        with instrument_asyncio():
            assert asyncio.new_event_loop is not originals[0]
        assert (
            asyncio.new_event_loop,
            asyncio.events.new_event_loop,
            asyncio.Runner.__init__,
        ) == originals
        collector = SpanCollector()
        asyncio.run(TestLoops._program(collector))
        assert spawn_names(collector) == []

    def test_running_loop_factory_taken_back_out(self) -> None:
        """Turning off inside a loop puts back the factory the loop had (None here)."""

        async def main() -> tuple[bool, bool]:
            loop = asyncio.get_running_loop()
            with instrument_asyncio():
                during = loop.get_task_factory() is not None
            return during, loop.get_task_factory() is None

        assert asyncio.run(main()) == (True, True)

    def test_handles_count(self) -> None:
        """Instrumentation stays on until the last handle closes; closing twice is harmless."""
        first = instrument_asyncio()
        second = instrument_asyncio()
        first.close()
        first.close()
        assert (first.active, second.active) == (False, True)
        second.close()
        assert (first.active, second.active) == (False, False)
        assert repr(second) == "AsyncioInstrumentation(active=False)"

    def test_uninstrument_wins_over_open_handles(self) -> None:
        """uninstrument_asyncio() turns it off now; old handles then close without effect."""
        old = instrument_asyncio()
        uninstrument_asyncio()
        assert not old.active
        new = instrument_asyncio()
        old.close()
        assert new.active
        new.close()
        uninstrument_asyncio()  # already off: harmless

    def test_tasks_started_before_turning_off_finish_under_their_span(self) -> None:
        """A wrapped task still running when instrumentation goes off ends its span normally."""
        collector = SpanCollector()

        async def main() -> None:
            with use_collector(collector):
                handle = instrument_asyncio()
                with span(SpanKind.PIPELINE, "main"):
                    task = asyncio.create_task(_leaf("late"), name="child")
                handle.close()
                await task
                with span(SpanKind.PIPELINE, "after"):
                    await asyncio.create_task(_leaf("unwrapped"))

        asyncio.run(main())
        assert spawn_names(collector) == ["child"]
        assert collector.open_span_count() == 0
