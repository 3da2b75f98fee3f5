"""Where spans read time: the ``Clock`` seam, the real clock and the mock.

Only :class:`SystemClock` reads real time. Everything else asks
:func:`current_clock`, which resolves, in order: the clock of the virtual
loop running in the calling thread (or of the loop an executor job in this
thread works for), else the innermost process-wide :func:`install_override`,
else the system clock. Two threads each running their own virtual loop so
record each their own times. :class:`MockClock` itself lives in
``_mock_clock.py`` and is imported from here.

:func:`mock_time` is the user-facing switch: it installs a fresh
:class:`MockClock` process wide, and the loop layer (``harn_async_trace.loop``,
which registers its part here when imported) makes asyncio time virtual (see
docs/virtual-time.md); :func:`advance_time` moves the active mock. This is the
ground floor: it imports nothing of the package but ``_mock_clock`` and the
dependency-free ``_sync_async``.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from types import TracebackType
from typing import Any, Final, Protocol, TypeVar, cast, runtime_checkable

from ._mock_clock import MockClock, MockClockError, _check_autojump_threshold
from ._sync_async import SyncAsyncContext

__all__ = (
    "Clock",
    "MockClock",
    "MockClockError",
    "OverrideGuard",
    "SystemClock",
    "active_mock_clock",
    "advance_time",
    "current_clock",
    "install_override",
    "mock_time",
)

F = TypeVar("F", bound=Callable[..., Any])


@runtime_checkable
class Clock(Protocol):
    """A source of integer nanosecond time.

    Example:
        >>> SystemClock().monotonic_ns() >= 0
        True
    """

    def wall_ns(self) -> int:
        """Nanoseconds since the Unix epoch."""
        ...

    def monotonic_ns(self) -> int:
        """Nanoseconds on a clock that never goes backwards."""
        ...


class SystemClock:
    """The real clock: ``time.time_ns`` and ``time.monotonic_ns``.

    Example:
        >>> SystemClock().wall_ns() > 0
        True
    """

    __slots__ = ()
    # Bound straight to the C functions: this is read twice per span.
    wall_ns = staticmethod(time.time_ns)
    monotonic_ns = staticmethod(time.monotonic_ns)


_SYSTEM: Final = SystemClock()
# The process-wide override stack. Index -1 is the clock spans read in a
# thread with no clock of its own; index 0 is always the system clock.
_ACTIVE: list[Clock] = [_SYSTEM]
# Thread ident -> the clock of the virtual loop running in that thread (or
# of the loop an executor job there works for). Empty unless some virtual
# loop runs, so the common case costs one truth test.
_THREAD_CLOCKS: dict[int, Clock] = {}
_get_ident: Final = threading.get_ident


def current_clock() -> Clock:
    """The clock spans read now, in this thread.

    The clock of the virtual loop running in this thread, else the innermost
    :func:`install_override`, else the system clock. This is the one read the
    collector makes per span start (keep it this cheap).

    Example:
        >>> isinstance(current_clock(), Clock)
        True
    """
    if _THREAD_CLOCKS:
        clock = _THREAD_CLOCKS.get(_get_ident())
        if clock is not None:
            return clock
    return _ACTIVE[-1]


def _bind_thread_clock(clock: Clock | None) -> Clock | None:
    """Make ``clock`` (None: none) this thread's own clock; returns the previous binding.

    For the loop layer: a virtual loop binds its clock while it runs, an
    executor job for the duration of the job. Undo with
    :func:`_restore_thread_clock` and the value returned.
    """
    ident = _get_ident()
    previous = _THREAD_CLOCKS.get(ident)
    if clock is None:
        _THREAD_CLOCKS.pop(ident, None)
    else:
        _THREAD_CLOCKS[ident] = clock
    return previous


def _restore_thread_clock(previous: Clock | None) -> None:
    """Undo :func:`_bind_thread_clock` (``previous`` is what it returned)."""
    _bind_thread_clock(previous)


def active_mock_clock() -> MockClock | None:
    """The mock clock spans read now in this thread, or None when time is real.

    Example:
        >>> active_mock_clock() is None
        True
    """
    clock = current_clock()
    return clock if isinstance(clock, MockClock) else None


class OverrideGuard:
    """Restores the previous clock when closed (also a context manager)."""

    __slots__ = ("_clock", "_closed")

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._closed = False

    @property
    def clock(self) -> Clock:
        """The clock this guard installed."""
        return self._clock

    def restore(self) -> None:
        """Uninstall this override (idempotent; out-of-order restores are fine)."""
        if self._closed:
            return
        self._closed = True
        for index in range(len(_ACTIVE) - 1, 0, -1):
            if _ACTIVE[index] is self._clock:
                del _ACTIVE[index]
                return

    def __enter__(self) -> Clock:
        return self._clock

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()


def install_override(clock: Clock) -> OverrideGuard:
    """Make ``clock`` the active clock process wide until the guard is restored.

    Overrides nest; the innermost wins.

    Example:
        >>> with install_override(MockClock()) as clock:
        ...     active_mock_clock() is clock
        True
    """
    if not isinstance(clock, Clock):
        raise TypeError(f"clock must provide wall_ns() and monotonic_ns(), got {clock!r}")
    _ACTIVE.append(clock)
    return OverrideGuard(clock)


def advance_time(seconds: float | timedelta) -> None:
    """Advance the active mock clock; due virtual timers fire on the loop's next pass.

    Raises :class:`MockClockError` when no mock is active.

    Example:
        >>> with mock_time(start_wall_ms=0) as clock:
        ...     advance_time(2.5)
        ...     clock.now_monotonic_ms()
        2500
    """
    clock = active_mock_clock()
    if clock is None:
        raise MockClockError(
            "advance_time() needs an active mock clock, but time is real here. "
            "Wrap the code in `with harn_async_trace.mock_time():` (or use it as a decorator), "
            "or run it with harn_async_trace.loop.run(main(), clock=MockClock())."
        )
    clock.advance(delta=seconds)


# What mock_time() does to event loops (and, with patch_wall, the wall clock):
# registered by harn_async_trace._vtime.session when the loop layer is
# imported (the package does), since this module may import nothing above it.
# An effect takes (clock, autojump_threshold, patch_wall), applies itself and
# returns its undo; it raises (having undone itself) when it cannot apply.
LoopEffect = Callable[[MockClock, float, bool], Callable[[], None]]
_LOOP_EFFECTS: list[LoopEffect] = []


def _register_loop_effect(effect: LoopEffect) -> None:
    """Called once by the loop layer at import; the last registered effect is used."""
    _LOOP_EFFECTS.append(effect)


# Lower-case: reads like the function it stands for (cf. contextlib.suppress).
class mock_time(SyncAsyncContext):
    """Run a block (or each call of a function) under a fresh :class:`MockClock`.

    Sync and async context manager (``as`` gives the clock) and decorator.
    While active: spans read the mock; asyncio loops created inside (e.g. by
    ``asyncio.run``) run on virtual time; an already running stock asyncio
    loop (or one of ours) is virtualised in place until the block ends.
    ``patch_wall=True`` also makes ``time.time()``/``datetime.now()`` follow the
    mock (via time-machine). ``autojump_threshold`` (real seconds) is used by
    loops virtualised here. See docs/virtual-time.md.

    Example:
        >>> import asyncio
        >>> async def main():
        ...     await asyncio.sleep(3600)
        ...     return active_mock_clock().now_monotonic_ms()
        >>> with mock_time(start_wall_ms=0):
        ...     asyncio.run(main())
        3600000
    """

    __slots__ = ("_clock", "_guard", "_options", "_undo")

    def __init__(
        self,
        start_wall_ms: int = 1_700_000_000_000,
        *,
        patch_wall: bool = False,
        autojump_threshold: float = 0.0,
    ) -> None:
        MockClock(start_wall_ms)  # validate now, not at __enter__
        threshold = _check_autojump_threshold(autojump_threshold)
        self._options = (start_wall_ms, bool(patch_wall), threshold)
        self._clock: MockClock | None = None
        self._guard: OverrideGuard | None = None
        self._undo: list[Callable[[], None]] = []

    def __enter__(self) -> MockClock:
        if self._clock is not None:
            raise MockClockError(
                "this mock_time() is already active; use a new mock_time() for a nested block"
            )
        start_wall_ms, patch_wall, threshold = self._options
        clock = MockClock(start_wall_ms)
        if _LOOP_EFFECTS:
            undo = [_LOOP_EFFECTS[-1](clock, threshold, patch_wall)]
        elif patch_wall:
            raise MockClockError(
                "mock_time(patch_wall=True) needs the loop layer: import harn_async_trace"
            )
        else:
            undo = []
        self._undo = undo
        self._clock = clock
        self._guard = install_override(clock)
        return clock

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        guard, undo = self._guard, self._undo
        self._clock = self._guard = None
        self._undo = []
        try:
            for step in reversed(undo):
                step()
        finally:
            if guard is not None:
                guard.restore()

    def _fresh(self) -> mock_time:
        start_wall_ms, patch_wall, threshold = self._options
        return mock_time(start_wall_ms, patch_wall=patch_wall, autojump_threshold=threshold)

    def __call__(self, fn: F) -> F:
        """Decorate ``fn`` so that each call runs under its own fresh mock clock."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await fn(*args, **kwargs)

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return cast(F, wrapper)
