"""``MockClock``: the clock that moves only when told to (trio's ``MockClock`` is the model).

Public as ``harn_async_trace.clock.MockClock`` (and at the package root); it
lives here so that ``clock.py`` holds only where spans read time. Like
``clock.py`` it is the ground floor: it imports nothing of the package.
Virtual loops move it through ``_move_to_ns`` and follow it through its
listeners.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Final

__all__ = ("MockClock", "MockClockError")

_NS_PER_MS: Final = 1_000_000
_NS_PER_S: Final = 1_000_000_000


class MockClockError(RuntimeError):
    """Raised when mock time is used in a way that cannot work (e.g. no mock active)."""


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
