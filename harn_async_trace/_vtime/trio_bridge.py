"""anyio's trio backend (and plain trio) on ``trio.testing.MockClock``.

trio already has a virtual clock with autojump; its ``MockClock`` is final
and trio's runner insists on that exact class, so we cannot drive it with
our clock. Instead the span clock *follows* trio's: during the run, a
:class:`MockClock` subclass whose time is read from the trio clock is the
clock of the run's thread (as a virtual loop's would be), and the user's
clock is synchronised before and after.
"""

from __future__ import annotations

from typing import Any, Final

from ..clock import Clock, MockClock, _bind_thread_clock, _restore_thread_clock

__all__ = ("trio_run_options",)

_NS: Final = 1_000_000_000


class _TrioFollowingClock(MockClock):
    """A MockClock whose monotonic time is the trio MockClock's ``current_time()``."""

    __slots__ = ("_origin", "_trio")

    def __init__(self, origin: MockClock, trio_clock: Any) -> None:
        super().__init__(0)
        self._start_wall_ns = origin.wall_ns() - origin.monotonic_ns()
        self._origin = origin
        self._trio = trio_clock

    def monotonic_ns(self) -> int:
        now: float = self._trio.current_time()
        return round(now * _NS)

    def wall_ns(self) -> int:
        return self._start_wall_ns + self.monotonic_ns()

    def now_wall_ms(self) -> int:
        return self.wall_ns() // 1_000_000

    def now_monotonic_ms(self) -> int:
        return self.monotonic_ns() // 1_000_000

    def advance_ns(self, delta_ns: int) -> None:
        if delta_ns < 0:
            raise ValueError(f"time can't go backwards: advance by {delta_ns} ns")
        self._trio.jump(delta_ns / _NS)

    def set_monotonic_ns(self, value_ns: int) -> None:
        current = self.monotonic_ns()
        if value_ns < current:
            raise ValueError(f"time can't go backwards: {value_ns} ns < current {current} ns")
        self._trio.jump((value_ns - current) / _NS)

    def next_trace_seq(self) -> int:
        # The user's clock owns the counter, so ids replay like on asyncio.
        return self._origin.next_trace_seq()


def trio_run_options(clock: MockClock, autojump_threshold: float) -> dict[str, Any]:
    """``trio.run``/anyio ``backend_options``: a trio MockClock plus a syncing instrument."""
    import trio
    import trio.testing

    trio_clock = trio.testing.MockClock(autojump_threshold=autojump_threshold)

    class _SyncClocks(trio.abc.Instrument):
        """Installs the following clock for the run; syncs ``clock`` both ways."""

        def __init__(self) -> None:
            self._saved: Clock | None = None
            self._bound = False
            self._follower = _TrioFollowingClock(clock, trio_clock)

        def before_run(self) -> None:
            lag = clock.monotonic_ns() - self._follower.monotonic_ns()
            if lag > 0:
                trio_clock.jump(lag / _NS)
            self._saved = _bind_thread_clock(self._follower)
            self._bound = True

        def after_run(self) -> None:
            if self._bound:
                self._bound = False
                _restore_thread_clock(self._saved)
            final = self._follower.monotonic_ns()
            if final > clock.monotonic_ns():
                clock.set_monotonic_ns(final)

    return {"clock": trio_clock, "instruments": [_SyncClocks()]}
