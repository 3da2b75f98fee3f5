"""Virtual-time event loops for stock asyncio and uvloop: the public entry points.

``asyncio.sleep``, ``wait_for``, ``asyncio.timeout`` and ``call_later`` /
``call_at`` run against a :class:`~harn_async_trace.MockClock`; when the
loop is quiescent (nothing ready, and none of the real work it can see -
executor jobs, threads it started, subprocesses, connections in flight -
really running) it jumps straight to the next deadline, so a test that
sleeps an hour finishes in milliseconds and its spans say exactly one hour.

* :func:`run` - like ``asyncio.run``, optionally on a mock clock;
* :func:`virtual_loop_factory` - a zero-argument loop factory for
  ``asyncio.Runner(loop_factory=...)``, ``uvloop.run(loop_factory=...)`` and
  ``anyio.run(backend_options={"loop_factory": ...})``;
* :func:`anyio_backend_options` - ready-made ``backend_options`` for anyio's
  asyncio backend (our loop) or trio backend (``trio.testing.MockClock``).

The machinery lives in ``harn_async_trace._vtime``; docs/virtual-time.md
explains the model and when a run is deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from ._mock_clock import _check_autojump_threshold
from ._vtime.loops import new_virtual_loop
from ._vtime.mixin import VirtualTimeMixin
from .clock import MockClock, active_mock_clock

if TYPE_CHECKING:  # uvloop is optional at run time
    import uvloop

__all__ = ("anyio_backend_options", "loop_clock", "run", "virtual_loop_factory")

T = TypeVar("T")


def _check_clock(clock: object) -> None:
    if not isinstance(clock, MockClock):
        raise TypeError(f"clock must be a MockClock, got {clock!r}")


@overload
def virtual_loop_factory(
    clock: MockClock, *, use_uvloop: Literal[True], autojump_threshold: float = 0.0
) -> Callable[[], uvloop.Loop]: ...


@overload
def virtual_loop_factory(
    clock: MockClock, *, use_uvloop: bool = False, autojump_threshold: float = 0.0
) -> Callable[[], asyncio.AbstractEventLoop]: ...


def virtual_loop_factory(
    clock: MockClock, *, use_uvloop: bool = False, autojump_threshold: float = 0.0
) -> Callable[[], Any]:
    """A loop factory whose loops run on ``clock`` (and make it the active mock while running).

    ``loop.time()`` is the clock's monotonic time in seconds. With
    ``use_uvloop=True`` the loops are ``uvloop.Loop`` subclasses.
    ``autojump_threshold``: real seconds of quiescence to wait before
    jumping, for work the loop cannot see (threads that were running before
    the loop started, replies from other processes; see
    docs/virtual-time.md, "When time jumps").

    Example:
        >>> async def main():
        ...     await asyncio.sleep(60)
        ...     return asyncio.get_running_loop().time()
        >>> with asyncio.Runner(loop_factory=virtual_loop_factory(MockClock())) as runner:
        ...     runner.run(main())
        60.0
    """
    _check_clock(clock)
    autojump_threshold = _check_autojump_threshold(autojump_threshold)

    def factory() -> asyncio.AbstractEventLoop:
        return new_virtual_loop(
            clock, use_uvloop=use_uvloop, autojump_threshold=autojump_threshold
        )

    factory.__qualname__ = factory.__name__ = (
        f"virtual_loop_factory({clock!r}, use_uvloop={use_uvloop})"
    )
    return factory


def run(
    coro: Coroutine[Any, Any, T],
    *,
    clock: MockClock | None = None,
    use_uvloop: bool = False,
    autojump_threshold: float = 0.0,
    debug: bool | None = None,
) -> T:
    """Run ``coro`` like ``asyncio.run``, on virtual time when there is a clock.

    With ``clock`` (or, without it, when a ``mock_time`` is active) the loop
    runs on that clock, which is the active mock for the run. Without either,
    the loop runs on real time until the program enters ``mock_time()``,
    which then virtualises it in place - on uvloop too.

    Example:
        >>> async def main():
        ...     await asyncio.sleep(3600)
        ...     return "done"
        >>> clock = MockClock()
        >>> run(main(), clock=clock), clock.now_monotonic_ms()
        ('done', 3600000)
    """
    if clock is None:
        clock = active_mock_clock()
    else:
        _check_clock(clock)
    autojump_threshold = _check_autojump_threshold(autojump_threshold)
    chosen = clock

    def factory() -> asyncio.AbstractEventLoop:
        return new_virtual_loop(
            chosen, use_uvloop=use_uvloop, autojump_threshold=autojump_threshold
        )

    with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
        return runner.run(_then_cancel_leftovers(coro))


def _creation_key(task: asyncio.Task[Any]) -> tuple[int, int, str]:
    # Default names count up ("Task-7"); other names come from the program.
    name = task.get_name()
    number = name[5:]
    if name.startswith("Task-") and number.isdigit():
        return (0, int(number), "")
    return (1, 0, name)


async def _then_cancel_leftovers(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main``, then cancel the tasks it left running in creation order.

    asyncio.run cancels leftovers in set order, i.e. by memory address, so
    the spans of tasks still running at the end would close in a different
    order from run to run; creation order keeps replays identical.
    """
    try:
        return await main
    finally:
        current = asyncio.current_task()
        leftovers = sorted(
            (task for task in asyncio.all_tasks() if task is not current), key=_creation_key
        )
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
            loop = asyncio.get_running_loop()
            for task in leftovers:
                if not task.cancelled() and task.exception() is not None:
                    loop.call_exception_handler(
                        {
                            "message": "unhandled exception during run() shutdown",
                            "exception": task.exception(),
                            "task": task,
                        }
                    )


def loop_clock(loop: asyncio.AbstractEventLoop | None = None) -> MockClock | None:
    """The MockClock driving ``loop`` (default: the running loop), or None on real time.

    Example:
        >>> clock = MockClock()
        >>> async def main():
        ...     return loop_clock() is clock
        >>> run(main(), clock=clock)
        True
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    return loop.virtual_clock if isinstance(loop, VirtualTimeMixin) else None


def anyio_backend_options(
    clock: MockClock,
    backend: str = "asyncio",
    *,
    use_uvloop: bool = False,
    autojump_threshold: float = 0.0,
) -> dict[str, Any]:
    """``backend_options`` for ``anyio.run`` that put the run on ``clock``.

    asyncio: our virtual loop (uvloop optional). trio: a
    ``trio.testing.MockClock`` that autojumps, plus an instrument that makes a
    MockClock following trio's time the active mock during the run (so spans
    and ``advance_time`` work) and moves ``clock`` to trio's final time after.
    The same dict also works as ``trio.run(main, **options)``.

    Example:
        >>> import anyio
        >>> async def main():
        ...     await anyio.sleep(90)
        >>> clock = MockClock()
        >>> anyio.run(main, backend_options=anyio_backend_options(clock))
        >>> clock.now_monotonic_ms()
        90000
    """
    _check_clock(clock)
    if backend == "asyncio":
        factory = virtual_loop_factory(
            clock, use_uvloop=use_uvloop, autojump_threshold=autojump_threshold
        )
        return {"loop_factory": factory}
    if backend == "trio":
        if use_uvloop:
            raise ValueError("use_uvloop applies to the asyncio backend only")
        from ._vtime.trio_bridge import trio_run_options

        return trio_run_options(clock, autojump_threshold)
    raise ValueError(f"backend must be 'asyncio' or 'trio', got {backend!r}")
