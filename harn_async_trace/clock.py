"""Where spans read time: the ``Clock`` seam, the real clock and the mock.

Only :class:`SystemClock` reads real time. Everything else asks the active
clock, which is the innermost installed override or the system clock.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from types import TracebackType
from typing import Final, Protocol, runtime_checkable

__all__ = [
    "Clock",
    "MockClock",
    "MockClockError",
    "SystemClock",
    "active_mock_clock",
    "current_clock",
    "install_override",
]

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

    __slots__ = ("__weakref__", "_lock", "_monotonic_ns", "_start_wall_ns", "_trace_counter")

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
        """Move time forward by an exact number of nanoseconds."""
        if delta_ns < 0:
            raise ValueError(f"time can't go backwards: advance by {delta_ns} ns")
        with self._lock:
            self._monotonic_ns += delta_ns

    def set_monotonic_ns(self, value_ns: int) -> None:
        """Jump monotonic time to ``value_ns`` (never backwards); used by the virtual loop."""
        with self._lock:
            if value_ns < self._monotonic_ns:
                raise ValueError(
                    f"time can't go backwards: {value_ns} ns < current {self._monotonic_ns} ns"
                )
            self._monotonic_ns = value_ns

    def next_trace_seq(self) -> int:
        """A per-clock counter, so trace ids made under this clock replay identically."""
        with self._lock:
            self._trace_counter += 1
            return self._trace_counter

    def __repr__(self) -> str:
        return f"MockClock(wall_ms={self.now_wall_ms()}, monotonic_ms={self.now_monotonic_ms()})"


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
# The active-clock stack. Index -1 is the clock spans read; index 0 is always
# the system clock. A plain list (not a ContextVar): overrides are process wide.
_ACTIVE: list[Clock] = [_SYSTEM]


def current_clock() -> Clock:
    """The clock spans read now: the innermost override, else the system clock.

    Example:
        >>> isinstance(current_clock(), Clock)
        True
    """
    return _ACTIVE[-1]


def active_mock_clock() -> MockClock | None:
    """The active mock clock, or None when time is real.

    Example:
        >>> active_mock_clock() is None
        True
    """
    clock = _ACTIVE[-1]
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
