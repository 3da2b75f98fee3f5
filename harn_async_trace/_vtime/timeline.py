"""How a virtual loop's timers move between real time and a mock clock.

A loop's timers live on one *timeline*: the base loop's real clock (no mock
attached; one real base-loop timer is kept armed for the earliest deadline)
or a :class:`MockClock`'s monotonic time. Switching keeps every pending
timer's remaining delay, and keeps ``loop.time()`` continuous through an
offset, so code holding old deadlines is not surprised.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from ..clock import MockClock
from .timers import TimerQueue

__all__ = ("TimelineMixin",)

_NS: Final = 1_000_000_000
# Deadlines at or past this (about 146 years) mean "never": never jumped to.
_NEVER: Final = 1 << 62


def _seconds_to_ns(seconds: float) -> int:
    if seconds != seconds:  # NaN
        raise ValueError("timer delay/deadline is NaN")
    if math.isinf(seconds) or abs(seconds) * _NS >= _NEVER:
        return _NEVER if seconds > 0 else -_NEVER
    return round(seconds * _NS)


class TimelineMixin:
    """Real-mode timer arming and timeline switching; the base of ``VirtualTimeMixin``."""

    # State and hooks provided by VirtualTimeMixin and the concrete loop classes.
    _v_clock: MockClock | None
    _v_timers: TimerQueue
    _v_offset_ns: int
    _v_activity: int
    _v_seen: int
    _v_idle: int
    _v_idle_since: int | None
    _v_thread: int | None
    _v_pump_handle: asyncio.Handle | None
    _v_real_armed: tuple[int, asyncio.Handle] | None

    if TYPE_CHECKING:
        # The event loop's own methods, which the loop class after the mixins
        # provides; declared for the type checker only so they never shadow it.
        def is_running(self) -> bool: ...
        def is_closed(self) -> bool: ...
        def get_debug(self) -> bool: ...
        def get_task_factory(self) -> Any: ...
        def call_soon(
            self,
            callback: Callable[..., object],
            *args: Any,
            context: contextvars.Context | None = None,
        ) -> asyncio.Handle: ...

    def _v_base_time(self) -> float:
        raise NotImplementedError

    def _v_base_call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.Handle:
        raise NotImplementedError

    def _v_fire_due(self, now: int) -> bool:
        raise NotImplementedError

    def _v_kick(self) -> None:
        raise NotImplementedError

    def _v_disarm_waker(self) -> None:
        raise NotImplementedError

    def _v_on_time_moved(self) -> None:
        raise NotImplementedError

    def _v_bind_thread(self) -> None:
        raise NotImplementedError

    def _v_unbind_thread(self) -> None:
        raise NotImplementedError

    # -- real mode -------------------------------------------------------------------

    def _v_arm_real(self) -> None:
        """Keep one base-loop timer armed for the earliest live deadline."""
        due = self._v_timers.peek_due()
        armed = self._v_real_armed
        if due is None or due >= _NEVER:
            if armed is not None:
                armed[1].cancel()
                self._v_real_armed = None
            return
        if armed is not None:
            if armed[0] <= due:
                return
            armed[1].cancel()
        delay = max(0.0, (due - round(self._v_base_time() * _NS)) / _NS)
        self._v_real_armed = (due, self._v_base_call_later(delay, self._v_real_fire))

    def _v_real_fire(self) -> None:
        self._v_real_armed = None
        if self._v_clock is None:
            self._v_fire_due(round(self._v_base_time() * _NS))
            self._v_arm_real()

    # -- switching timelines -----------------------------------------------------------

    def _v_rebase(self, shift_ns: int) -> None:
        """Move every pending deadline by ``shift_ns`` (keeps order and remaining delays)."""
        offset = self._v_offset_ns

        def retime(due: int, handle: Any) -> None:
            handle._when = (due + offset) / _NS

        self._v_timers.rebase(shift_ns, _NEVER, retime)

    def _v_attach(self, clock: MockClock, *, offset_ns: int | None = None) -> None:
        """Switch from real time to ``clock``; pending timers keep their remaining delay.

        ``offset_ns`` defaults to keeping ``loop.time()`` continuous.
        """
        if self._v_clock is not None:
            raise RuntimeError("loop already runs on a mock clock")
        armed = self._v_real_armed
        if armed is not None:
            armed[1].cancel()
            self._v_real_armed = None
        real_now = round(self._v_base_time() * _NS)
        mono = clock.monotonic_ns()
        if offset_ns is None:
            offset_ns = real_now - mono
        self._v_offset_ns = offset_ns
        self._v_rebase(mono - real_now)
        self._v_clock = clock
        self._v_idle = 0
        self._v_idle_since = None
        self._v_seen = self._v_activity
        clock._add_listener(self._v_on_time_moved)
        if self.is_running():
            self._v_thread = threading.get_ident()
            self._v_bind_thread()
        if self._v_timers:
            self._v_kick()

    def _v_detach(self) -> None:
        """Back to real time; pending timers keep their remaining delay."""
        clock = self._v_clock
        if clock is None:
            return
        clock._remove_listener(self._v_on_time_moved)
        self._v_unbind_thread()
        self._v_disarm_waker()
        pump = self._v_pump_handle
        if pump is not None and hasattr(pump, "cancel"):  # not the running-pass marker
            pump.cancel()
            self._v_pump_handle = None
        real_now = round(self._v_base_time() * _NS)
        shift = real_now - clock.monotonic_ns()
        self._v_clock = None
        self._v_offset_ns = 0
        self._v_rebase(shift)
        self._v_arm_real()
