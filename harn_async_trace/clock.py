"""Where spans read time: the ``Clock`` seam, the real clock and the mock.

Only :class:`SystemClock` reads real time. Everything else asks
:func:`current_clock`, which resolves, in order: the clock of the virtual
loop running in the calling thread (or of the loop an executor job in this
thread works for), else the innermost process-wide :func:`install_override`,
else the system clock. Two threads each running their own virtual loop so
record each their own times.

:func:`mock_time` is the user-facing switch: it installs a fresh
:class:`MockClock` process wide, and the loop layer (``harn_async_trace.loop``,
which registers its part here when imported) makes asyncio time virtual (see
docs/virtual-time.md); :func:`advance_time` moves the active mock. This is the
ground floor: it imports nothing of the package but the dependency-free
``_sync_async``.
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

_NS_PER_MS: Final = 1_000_000
_NS_PER_S: Final = 1_000_000_000


class MockClockError(RuntimeError):
    """Raised when mock time is used in a way that cannot work (e.g. no mock active)."""


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


class MockClock:
    """A clock that moves only when told to.

    Monotonic time starts at 0; wall time is ``start_wall_ms`` plus monotonic
    time. Thread-safe.

    Example:
        >>> clock = MockClock(start_wall_ms=1_000)
        >>> clock.advance(1.5)
        >>> (clock.now_monotonic_ms(), clock.now_wall_ms())
        (1500, 2500)
    """

    __slots__ = (
        "__weakref__",
        "_listeners",
        "_lock",
        "_monotonic_ns",
        "_start_wall_ns",
        "_trace_counter",
    )

    def __init__(self, start_wall_ms: int = 1_700_000_000_000) -> None:
        if isinstance(start_wall_ms, bool) or not isinstance(start_wall_ms, int):
            raise TypeError(
                f"start_wall_ms must be an int (ms since the epoch), got {start_wall_ms!r}"
            )
        if start_wall_ms < 0:
            raise ValueError(f"start_wall_ms must be >= 0, got {start_wall_ms}")
        self._start_wall_ns = start_wall_ms * _NS_PER_MS
        self._monotonic_ns = 0
        self._lock = threading.Lock()
        self._trace_counter = 0
        # Called (outside the lock) after every move, so virtual loops fire
        # due timers and a patched wall clock follows. Copy-on-write tuple:
        # readers never need the lock.
        self._listeners: tuple[Callable[[], None], ...] = ()

    @classmethod
    def at_wall_ms(cls, ms: int) -> MockClock:
        """A mock whose wall clock starts at ``ms``.

        Example:
            >>> MockClock.at_wall_ms(5).now_wall_ms()
            5
        """
        return cls(start_wall_ms=ms)

    def wall_ns(self) -> int:
        """Mock wall time in ns: start plus monotonic."""
        return self._start_wall_ns + self._monotonic_ns

    def monotonic_ns(self) -> int:
        """Mock monotonic time in ns (starts at 0)."""
        return self._monotonic_ns

    def now_wall_ms(self) -> int:
        """Mock wall time in whole ms."""
        return (self._start_wall_ns + self._monotonic_ns) // _NS_PER_MS

    def now_monotonic_ms(self) -> int:
        """Mock monotonic time in whole ms."""
        return self._monotonic_ns // _NS_PER_MS

    def advance(self, delta: float | timedelta) -> None:
        """Move time forward by ``delta`` seconds (or a ``timedelta``).

        Example:
            >>> c = MockClock(); c.advance(timedelta(milliseconds=3)); c.now_monotonic_ms()
            3
        """
        self.advance_ns(_delta_to_ns(delta))

    def advance_ns(self, delta_ns: int) -> None:
        """Move time forward by an exact number of nanoseconds (an int).

        Example:
            >>> c = MockClock(); c.advance_ns(1_500_000); c.now_monotonic_ms()
            1
        """
        _check_ns("delta_ns", delta_ns)
        if delta_ns < 0:
            raise ValueError(f"time can't go backwards: advance by {delta_ns} ns")
        with self._lock:
            self._monotonic_ns += delta_ns
        if delta_ns and self._listeners:
            self._notify(None)

    def set_monotonic_ns(self, value_ns: int) -> None:
        """Jump monotonic time to ``value_ns`` (never backwards); used by the virtual loop."""
        _check_ns("value_ns", value_ns)
        with self._lock:
            if value_ns < self._monotonic_ns:
                raise ValueError(
                    f"time can't go backwards: {value_ns} ns < current {self._monotonic_ns} ns"
                )
            moved = value_ns != self._monotonic_ns
            self._monotonic_ns = value_ns
        if moved and self._listeners:
            self._notify(None)

    def _move_to_ns(self, value_ns: int, source: Callable[[], None] | None) -> int:
        """Move to at least ``value_ns`` and return the new time (a loop's autojump).

        Never goes backwards: another thread may have advanced past ``value_ns``
        already, which is fine. ``source`` (the mover's own listener) is not
        notified.
        """
        with self._lock:
            moved = value_ns > self._monotonic_ns
            if moved:
                self._monotonic_ns = value_ns
            now = self._monotonic_ns
        if moved and self._listeners:
            self._notify(source)
        return now

    def _add_listener(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def _remove_listener(self, listener: Callable[[], None]) -> None:
        with self._lock:
            kept = list(self._listeners)
            if listener in kept:
                kept.remove(listener)
            self._listeners = tuple(kept)

    def _notify(self, source: Callable[[], None] | None) -> None:
        for listener in self._listeners:
            if listener != source:
                listener()

    def next_trace_seq(self) -> int:
        """A per-clock counter, so trace ids made under this clock replay identically."""
        with self._lock:
            self._trace_counter += 1
            return self._trace_counter

    def __repr__(self) -> str:
        return f"MockClock(wall_ms={self.now_wall_ms()}, monotonic_ms={self.now_monotonic_ms()})"


def _check_ns(label: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{label} must be an int number of nanoseconds, got {value!r}")


def _check_autojump_threshold(value: object) -> float:
    """``value`` as a float if it is a valid autojump threshold (finite real seconds >= 0).

    Example:
        >>> _check_autojump_threshold(0)
        0.0
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"autojump_threshold must be a number of seconds, got {value!r}")
    if not 0 <= value < float("inf"):  # also rejects NaN
        raise ValueError(
            f"autojump_threshold must be a finite number of seconds >= 0, got {value!r}"
        )
    return float(value)


def _delta_to_ns(delta: float | timedelta) -> int:
    if isinstance(delta, timedelta):
        # timedelta is exact in microseconds; avoid float rounding.
        return (
            (delta.days * 86_400 + delta.seconds) * _NS_PER_S + delta.microseconds * 1_000
        )
    if isinstance(delta, bool) or not isinstance(delta, int | float):
        raise TypeError(f"delta must be seconds (int or float) or a timedelta, got {delta!r}")
    if delta != delta or delta in (float("inf"), float("-inf")):
        raise ValueError(f"delta must be a finite number of seconds, got {delta!r}")
    return round(delta * _NS_PER_S)


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
