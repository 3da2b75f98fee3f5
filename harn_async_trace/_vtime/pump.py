"""``PumpMixin``: how a loop whose ready queue cannot be inspected (uvloop) fires timers and jumps.

A *pump* callback, queued with the base loop's ``call_soon``, fires due
timers. uvloop runs ready callbacks from a libuv idle handler we cannot
look into, so activity is judged by counting ``call_soon`` calls: a pass
with no timer fired and no ``call_soon`` since the previous pass is idle,
and after ``_v_idle_passes`` idle passes in a row the loop asks whether it
may jump (``VirtualTimeMixin._v_may_jump``). While it may not, a real libuv
timer wakes the pump to ask again.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, ClassVar, Final, cast

from .mixin import VirtualTimeMixin
from .timeline import _NEVER, _NS

__all__ = ["PumpMixin"]

# Stands in for the pump's handle while a pass runs (kicks are then no-ops).
_RUNNING: Final[Any] = object()


class PumpMixin(VirtualTimeMixin):
    """Timers fired and time jumped from a pump callback; see the module doc."""

    # Three idle passes before a jump: the second follows a libuv poll, but
    # writes queued by the callbacks before it are flushed only after that
    # poll (libuv's check phase), so the third is the first to follow a poll
    # that can see their effect on loopback sockets.
    _v_idle_passes: ClassVar[int] = 3

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Any:
        """As uvloop does: a delay <= 0 is a ``call_soon`` (same order, a plain Handle)."""
        if delay <= 0:
            return self.call_soon(callback, *args, context=context)
        return super().call_later(delay, callback, *args, context=context)

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> Any:
        """As uvloop does: a deadline already reached is a ``call_soon``."""
        if when <= self.time():
            return self.call_soon(callback, *args, context=context)
        return super().call_at(when, callback, *args, context=context)

    def _v_counted_call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """``loop.call_soon``, counted: a ready callback means the loop is not idle."""
        self._v_activity += 1
        base: Any = super()
        return cast(asyncio.Handle, base.call_soon(callback, *args, context=context))

    def _v_counted_call_soon_threadsafe(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """``loop.call_soon_threadsafe``, counted like :meth:`_v_counted_call_soon`."""
        self._v_activity += 1
        base: Any = super()
        return cast(asyncio.Handle, base.call_soon_threadsafe(callback, *args, context=context))

    def _v_kick(self) -> None:
        """Make sure a pump pass is queued (loop thread only)."""
        if self._v_pump_handle is None and not self.is_closed():
            self._v_pump_handle = self._v_base_call_soon(self._v_pump)

    def _v_pump(self) -> None:
        # While the pass runs, kicks are no-ops: timers that callbacks add
        # "for now" must wait behind callbacks they call_soon, as on asyncio.
        self._v_pump_handle = _RUNNING
        try:
            again = self._v_pump_pass()
        finally:
            self._v_pump_handle = None
        if again:
            self._v_kick()

    def _v_pump_pass(self) -> bool:
        """One pass: fire due timers, maybe jump; True to queue another pass."""
        clock = self._v_clock
        if clock is None:
            return False
        self._v_disarm_waker()
        timers = self._v_timers
        fired = self._v_fire_due(clock.monotonic_ns())
        due = timers.peek_due()
        if due is None:
            self._v_idle = 0
            self._v_busy()
            return False  # nothing to wait for: block like a real loop until woken
        busy = fired or self._v_activity != self._v_seen
        self._v_seen = self._v_activity
        if busy:
            self._v_idle = 0
            self._v_busy()
            return True
        self._v_idle += 1
        if self._v_idle < self._v_idle_passes:
            return True
        wait_ns = self._v_may_jump()
        if wait_ns:
            self._v_arm_waker(wait_ns)
            return False
        if due >= _NEVER:
            return False
        self._v_idle = 0
        now = clock._move_to_ns(due, self._v_on_time_moved)
        self._v_fire_due(now)
        self._v_seen = self._v_activity
        return True

    def _v_arm_waker(self, delay_ns: int) -> None:
        # A libuv timer: uvloop's own timers run on real time.
        self._v_waker = self._v_base_call_later(delay_ns / _NS, self._v_kick)

    def _v_disarm_waker(self) -> None:
        waker = self._v_waker
        if waker is not None:
            self._v_waker = None
            waker.cancel()
