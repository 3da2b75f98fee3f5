"""``VirtualTimeMixin``: timers of our own, over any event loop's public methods.

Why our own timers: uvloop keeps its timers in libuv, where overriding
``time()`` changes nothing, so fast-forwarding needs timers the loop class
cannot see. The mixin overrides ``time``, ``call_at``, ``call_later``,
``run_in_executor`` (to see thread work) and, where needed, ``call_soon``
and ``call_soon_threadsafe`` (to notice activity), and keeps every timer in
one :class:`~.timers.TimerQueue` ordered by (deadline in integer
nanoseconds, scheduling order): no float drift, and timers due at the same
instant fire in FIFO order.

A *pump* callback, queued with the base loop's ``call_soon``, fires due
timers. In virtual mode (a :class:`MockClock` is attached) the pump also
decides when the loop is idle - a pass with no ready callbacks, no
``call_soon`` since the previous pass and no executor work in flight - and
then jumps the clock straight to the next deadline (autojump). With an
``autojump_threshold`` it first waits that many *real* seconds of
continuous idleness, for work it cannot see (plain threads, sockets).

In real mode (no clock attached: a loop from ``run()`` before any
``mock_time``) the queue is driven by one real timer of the base loop, so
timers can later move to virtual time (and back) keeping their remaining
delay.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, Final, cast

from ..clock import (
    Clock,
    MockClock,
    _bind_thread_clock,
    _check_autojump_threshold,
    _restore_thread_clock,
)
from .tasks import OrderedTask
from .timeline import _NEVER, _NS, TimelineMixin, _seconds_to_ns
from .timers import TimerQueue

__all__ = ("VirtualTimeMixin",)

# The direct slot fill in _v_push is only used when the layout is the one it
# was written for (CPython 3.11-3.13); otherwise the constructor is called.
_FAST_HANDLES: Final = set(asyncio.Handle.__slots__) == {
    "_callback", "_args", "_cancelled", "_loop", "_source_traceback", "_repr", "__weakref__",
    "_context",
} and set(asyncio.TimerHandle.__slots__) == {"_scheduled", "_when"}  # fmt: skip
_new_timer_handle: Final = asyncio.TimerHandle.__new__
_copy_context: Final = contextvars.copy_context
# Stands in for the pump's handle while a pass runs (kicks are then no-ops).
_RUNNING: Final[Any] = object()


def _job_on_clock(clock: MockClock, func: Callable[..., Any], args: tuple[Any, ...]) -> Any:
    """An executor job of a virtual loop: spans in the worker read the loop's clock."""
    saved = _bind_thread_clock(clock)
    try:
        return func(*args)
    finally:
        _restore_thread_clock(saved)


class VirtualTimeMixin(TimelineMixin):
    """Mixed in front of a loop class (stock asyncio or uvloop); see the module doc.

    Concrete classes set ``_v_idle_passes`` and implement the ``_v_base_*``
    hooks; instances are made by ``loops.py`` (``_v_setup`` initialises the
    state, also for stock loops whose class is swapped in place).
    """

    # How many consecutive idle pump passes before a jump. Stock loops can
    # see their ready queue, so one pass is exact; uvloop cannot, so two.
    _v_idle_passes: ClassVar[int] = 1
    # True when the class itself counts call_soon (uvloop: it cannot see its
    # ready queue, so counting is the only activity signal).
    _v_counts_by_class: ClassVar[bool] = False
    # Real time for the autojump threshold, kept as an attribute so tests can
    # patch it (as trio's MockClock does).
    _v_real_clock_ns = staticmethod(time.monotonic_ns)

    # -- hooks each concrete class provides -----------------------------------

    def _v_base_time(self) -> float:
        raise NotImplementedError

    def _v_base_call_soon(self, callback: Callable[[], None]) -> asyncio.Handle:
        raise NotImplementedError

    def _v_base_call_soon_threadsafe(self, callback: Callable[[], None]) -> asyncio.Handle:
        raise NotImplementedError

    def _v_base_call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.Handle:
        raise NotImplementedError

    def _v_has_ready(self) -> bool:
        """True when the base loop has callbacks queued (only stock loops can tell)."""
        return False

    # -- state ----------------------------------------------------------------

    def _v_setup(self, *, autojump_threshold: float) -> None:
        self._v_timers = TimerQueue()
        self._v_clock = None
        self._v_offset_ns = 0
        self._v_set_threshold(autojump_threshold)
        self._v_pump_handle: asyncio.Handle | None = None
        self._v_real_armed: tuple[int, asyncio.Handle] | None = None
        self._v_activity = 0
        self._v_seen = 0
        self._v_idle = 0
        self._v_idle_since: int | None = None
        self._v_executor_pending = 0
        self._v_tasks_made = 0
        self._v_waker: threading.Timer | None = None
        self._v_thread: int | None = None
        # This thread's clock binding from before the loop bound its own (see clock.py).
        self._v_thread_saved: Clock | None = None
        self._v_thread_bound = False
        # The pump runs in one fixed empty context instead of a fresh copy per pass.
        self._v_ctx = contextvars.Context()

    @property
    def virtual_clock(self) -> MockClock | None:
        """The MockClock driving this loop, or None while it runs on real time."""
        return self._v_clock

    # -- the overridden public methods -----------------------------------------

    def time(self) -> float:
        """Loop time in seconds: the mock's monotonic time (plus an offset) when virtual."""
        clock = self._v_clock
        if clock is None:
            return self._v_base_time()
        return (self._v_offset_ns + clock.monotonic_ns()) / _NS

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Like ``loop.call_later``, on this loop's (possibly virtual) timeline."""
        clock = self._v_clock
        now = round(self._v_base_time() * _NS) if clock is None else clock.monotonic_ns()
        if 0 < delay < 1e9:  # the common case, without the checks for inf/NaN
            due = now + round(delay * _NS)
        else:
            due = min(now + _seconds_to_ns(delay), _NEVER) if delay > 0 else now
        return self._v_push(due, callback, args, context)

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Like ``loop.call_at``; ``when`` is in :meth:`time` units."""
        if -1e9 < when < 1e9:
            due = round(when * _NS) - self._v_offset_ns
        else:
            due = min(_seconds_to_ns(when) - self._v_offset_ns, _NEVER)
        return self._v_push(due, callback, args, context)

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

    def _v_set_threshold(self, seconds: float) -> None:
        """Set the autojump threshold (real seconds; 0 = jump as soon as idle)."""
        self._v_threshold_ns = _seconds_to_ns(_check_autojump_threshold(seconds))
        if self._v_counts_by_class:
            return
        # Stock loops see their ready queue, so they count call_soon only when
        # a threshold needs to know about activity *between* passes; counting
        # costs a Python call per callback, so it is switched on per instance.
        slots = vars(self)
        if self._v_threshold_ns:
            slots["call_soon"] = self._v_counted_call_soon
            slots["call_soon_threadsafe"] = self._v_counted_call_soon_threadsafe
        else:
            slots.pop("call_soon", None)
            slots.pop("call_soon_threadsafe", None)

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> Any:
        """``loop.run_in_executor``, tracked: time never jumps while such work is in flight.

        On virtual time the job reads this loop's clock in its worker thread.
        """
        clock = self._v_clock
        if clock is not None and callable(func) and not asyncio.iscoroutinefunction(func):
            future = super().run_in_executor(executor, _job_on_clock, clock, func, args)  # type: ignore[misc]
        else:  # real time, or something the base method rejects with its own message
            future = super().run_in_executor(executor, func, *args)  # type: ignore[misc]
        self._v_executor_pending += 1
        future.add_done_callback(self._v_executor_done)
        return future

    def create_task(
        self,
        coro: Any,
        *,
        name: str | None = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        """``loop.create_task``; on virtual time the task hashes by creation number.

        So asyncio's task sets (``all_tasks``, ``TaskGroup``) iterate in the
        same order on every run (see ``tasks.py``). A user task factory wins.
        """
        base: Any = super()
        if self._v_clock is None or self.get_task_factory() is not None:  # type: ignore[attr-defined]
            return cast("asyncio.Task[Any]", base.create_task(coro, name=name, context=context))
        if self.is_closed():  # type: ignore[attr-defined]
            raise RuntimeError("Event loop is closed")
        self._v_tasks_made += 1
        return OrderedTask(
            coro, loop=self, name=name, context=context, order=self._v_tasks_made  # type: ignore[arg-type]
        )

    def run_forever(self) -> None:
        """Run the loop; spans in this thread read its clock meanwhile (if it has one)."""
        self._v_thread = threading.get_ident()
        if self._v_clock is not None:
            self._v_bind_thread()
        if self._v_timers:
            self._v_kick()
        try:
            super().run_forever()  # type: ignore[misc]
        finally:
            self._v_thread = None
            self._v_unbind_thread()

    def _v_bind_thread(self) -> None:
        """Make this loop's clock the one spans read in the loop's thread (loop thread only)."""
        if self._v_thread_bound:
            return
        self._v_thread_saved = _bind_thread_clock(self._v_clock)
        self._v_thread_bound = True

    def _v_unbind_thread(self) -> None:
        if self._v_thread_bound:
            self._v_thread_bound = False
            _restore_thread_clock(self._v_thread_saved)
            self._v_thread_saved = None

    def close(self) -> None:
        """Close the loop and let go of its clock."""
        self._v_disarm_waker()
        clock = self._v_clock
        if clock is not None:
            clock._remove_listener(self._v_on_time_moved)
        super().close()  # type: ignore[misc]

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # Called by TimerHandle.cancel(); the queue skips cancelled entries.
        if handle._scheduled:  # type: ignore[attr-defined]
            self._v_timers.note_cancelled()

    # -- the timers ---------------------------------------------------------------

    def _v_push(
        self,
        due: int,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
    ) -> asyncio.TimerHandle:
        if self.is_closed():  # type: ignore[attr-defined]
            raise RuntimeError("Event loop is closed")
        when = (due + self._v_offset_ns) / _NS
        if _FAST_HANDLES and not self.get_debug():  # type: ignore[attr-defined]
            # Fill the slots directly: TimerHandle.__init__ -> Handle.__init__
            # costs two Python frames per timer, a visible share of a sleep.
            raw: Any = _new_timer_handle(asyncio.TimerHandle)
            raw._callback = callback
            raw._args = args
            raw._cancelled = False
            raw._loop = self
            raw._source_traceback = None
            raw._repr = None
            raw._context = context if context is not None else _copy_context()
            raw._when = when
            raw._scheduled = True
            handle: asyncio.TimerHandle = raw
        else:
            handle = asyncio.TimerHandle(when, callback, args, self, context)  # type: ignore[arg-type]
            handle._scheduled = True  # type: ignore[attr-defined]
        self._v_timers.push(due, handle)
        if self._v_clock is None:
            self._v_arm_real()
        elif self._v_pump_handle is None:
            self._v_kick()
        return handle

    def _v_fire_due(self, now: int) -> bool:
        """Run every timer due at ``now`` in (due, scheduling) order; True if any ran."""
        batch = self._v_timers.pop_until(now)
        ran = False
        # Timers added by these callbacks wait for the next pass, as on asyncio.
        for index, handle in enumerate(batch):
            if handle._cancelled:
                handle._scheduled = False
                continue
            handle._scheduled = False
            ran = True
            try:
                handle._run()
            except BaseException:
                # KeyboardInterrupt/SystemExit: keep the rest for the next run.
                timers = self._v_timers
                for rest in batch[index + 1 :]:
                    if not rest._cancelled:
                        timers.push(round(rest._when * _NS) - self._v_offset_ns, rest)
                raise
        return ran

    # -- the pump (virtual mode) ----------------------------------------------------

    def _v_kick(self) -> None:
        """Make sure a pump pass is queued (loop thread only)."""
        if self._v_pump_handle is None and not self.is_closed():  # type: ignore[attr-defined]
            self._v_pump_handle = self._v_base_call_soon(self._v_pump)

    def _v_kick_threadsafe(self) -> None:
        try:
            self._v_base_call_soon_threadsafe(self._v_kick)
        except RuntimeError:  # the loop closed meanwhile: nothing left to wake
            pass

    def _v_on_time_moved(self) -> None:
        """Clock listener: someone else moved time (advance_time, another loop)."""
        if self._v_clock is None or not self.is_running():  # type: ignore[attr-defined]
            return  # run_forever kicks the pump when it starts
        if threading.get_ident() == self._v_thread:
            self._v_kick()
        else:
            self._v_kick_threadsafe()

    def _v_executor_done(self, _future: object) -> None:
        self._v_executor_pending -= 1
        if self._v_clock is not None:
            self._v_kick()

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
            self._v_idle_since = None
            return False  # nothing to wait for: block like a real loop until woken
        busy = fired or self._v_activity != self._v_seen or self._v_has_ready()
        self._v_seen = self._v_activity
        if busy:
            self._v_idle = 0
            self._v_idle_since = None
            return True
        if self._v_executor_pending:
            return False  # the executor future's done-callback kicks us again
        self._v_idle += 1
        if self._v_idle < self._v_idle_passes:
            return True
        if self._v_threshold_ns:
            real_now = self._v_real_clock_ns()
            if self._v_idle_since is None:
                self._v_idle_since = real_now
            remaining = self._v_threshold_ns - (real_now - self._v_idle_since)
            if remaining > 0:
                self._v_arm_waker(remaining)
                return False
        if due >= _NEVER:
            return False
        self._v_idle = 0
        self._v_idle_since = None
        now = clock._move_to_ns(due, self._v_on_time_moved)
        self._v_fire_due(now)
        self._v_seen = self._v_activity
        return True

    def _v_arm_waker(self, delay_ns: int) -> None:
        # A real timer in a helper thread: on stock asyncio, a base-loop timer
        # would be compared with the (frozen) virtual time and never fire.
        waker = threading.Timer(delay_ns / _NS, self._v_kick_threadsafe)
        waker.daemon = True
        self._v_waker = waker
        waker.start()

    def _v_disarm_waker(self) -> None:
        waker = self._v_waker
        if waker is not None:
            self._v_waker = None
            waker.cancel()
