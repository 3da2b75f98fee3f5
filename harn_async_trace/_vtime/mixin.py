"""``VirtualTimeMixin``: timers of our own, over any event loop's public methods.

Why our own timers: uvloop keeps its timers in libuv, where overriding
``time()`` changes nothing, so fast-forwarding needs timers the loop class
cannot see. The mixin overrides ``time``, ``call_at``, ``call_later`` and
the methods that start real work (``seen.py``), and keeps every timer in one
:class:`~.timers.TimerQueue` ordered by (deadline in integer nanoseconds,
scheduling order): no float drift, and timers due at the same instant fire
in FIFO order.

When time jumps (virtual mode: a :class:`MockClock` is attached): only when
the loop is *quiescent*, i.e. nothing is ready on it, it has polled I/O
since the last callback ran, and no real work it can see is running
(``holds.py``). Then the clock moves straight to the next deadline. While
such work runs, virtual time holds still and the loop re-checks on a short
real-time back-off; work that waits on the loop (a job blocked on
``run_coroutine_threadsafe(...).result()``) is not running, so the timers it
waits for still fire. An ``autojump_threshold`` adds that many *real*
seconds of continuous quiescence before a jump, for work the loop cannot
see at all. How a loop class finds the moment is its own: stock loops do it
between polling I/O and running callbacks (``loops.py``), exactly where
stock asyncio moves due timers to its ready queue; uvloop, whose ready queue
cannot be inspected, with a *pump* callback that counts passes and
``call_soon`` calls.

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
from typing import Any, Final, cast

from .._mock_clock import _check_autojump_threshold
from ..clock import Clock, MockClock, _bind_thread_clock, _restore_thread_clock
from .holds import LOOP_THREADS, WorkWatch
from .seen import SeesWorkMixin
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


# While real work runs, the loop re-checks on this real back-off (ns).
_RECHECK_FIRST_NS: Final = 100_000
_RECHECK_MAX_NS: Final = 10_000_000
# Before a jump with threads or processes about, the GIL is let go this long
# (real ns) so a thread the loop just woke can run (see holds.py).
_SETTLE_NS: Final = 1_000_000
_OUR_DIR: Final = __file__.rsplit("/", 1)[0]


class VirtualTimeMixin(SeesWorkMixin, TimelineMixin):
    """Mixed in front of a loop class (stock asyncio or uvloop); see the module doc.

    Concrete classes implement the ``_v_base_*`` hooks, ``_v_kick`` and
    ``_v_disarm_waker`` (``stock.py``, ``pump.py``); instances are made by
    ``loops.py`` (``_v_setup`` initialises the
    state, also for stock loops whose class is swapped in place).
    """

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
        self._v_recheck_ns = 0
        self._v_settled = False
        self._v_work = WorkWatch()
        self._v_tasks_made = 0
        self._v_waker: Any = None
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

    def _v_set_threshold(self, seconds: float) -> None:
        """Set the autojump threshold (real seconds; 0 = jump as soon as quiescent)."""
        self._v_threshold_ns = _seconds_to_ns(_check_autojump_threshold(seconds))

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
        if self._v_clock is None or self.get_task_factory() is not None:
            return cast("asyncio.Task[Any]", base.create_task(coro, name=name, context=context))
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        self._v_tasks_made += 1
        task = OrderedTask(
            coro, loop=self, name=name, context=context, order=self._v_tasks_made  # type: ignore[arg-type]  # self is the loop
        )
        trace = task._source_traceback  # type: ignore[attr-defined]  # set in debug mode
        if trace:
            # As BaseEventLoop.create_task drops its own frame: the repr's
            # "created at" is then the caller's line, not ours.
            while trace and trace[-1].filename.startswith(_OUR_DIR):
                del trace[-1]
        return task

    def run_forever(self) -> None:
        """Run the loop; spans in this thread read its clock meanwhile (if it has one)."""
        self._v_thread = threading.get_ident()
        if self._v_clock is not None:
            self._v_bind_thread()
        if self._v_timers:
            self._v_kick()
        try:
            super().run_forever()  # type: ignore[misc]  # the loop class after the mixins
        finally:
            self._v_unbind_thread()
            self._v_thread = None

    def _v_bind_thread(self) -> None:
        """Make this loop's clock the one spans read in the loop's thread (loop thread only)."""
        if self._v_thread_bound:
            return
        self._v_thread_saved = _bind_thread_clock(self._v_clock)
        self._v_thread_bound = True
        ident = threading.get_ident()
        LOOP_THREADS.add(ident)
        self._v_work.start()

    def _v_unbind_thread(self) -> None:
        if self._v_thread_bound:
            self._v_thread_bound = False
            _restore_thread_clock(self._v_thread_saved)
            self._v_thread_saved = None
            LOOP_THREADS.discard(threading.get_ident())

    def close(self) -> None:
        """Close the loop and let go of its clock."""
        self._v_disarm_waker()
        clock = self._v_clock
        if clock is not None:
            clock._remove_listener(self._v_on_time_moved)
        super().close()  # type: ignore[misc]  # the loop class after the mixins

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        # Called by TimerHandle.cancel(); the queue skips cancelled entries.
        if handle._scheduled:  # type: ignore[attr-defined]  # private in typeshed
            self._v_timers.note_cancelled()

    # -- the timers ---------------------------------------------------------------

    def _v_push(
        self,
        due: int,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        context: contextvars.Context | None,
    ) -> asyncio.TimerHandle:
        if self.is_closed():
            raise RuntimeError("Event loop is closed")
        when = (due + self._v_offset_ns) / _NS
        if _FAST_HANDLES and not self.get_debug():
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
            handle = asyncio.TimerHandle(when, callback, args, self, context)  # type: ignore[arg-type]  # self is the loop
            handle._scheduled = True  # type: ignore[attr-defined]  # private in typeshed
            trace = handle._source_traceback  # type: ignore[attr-defined]  # set in debug mode
            while trace and trace[-1].filename.startswith(_OUR_DIR):
                del trace[-1]  # "created at" names the caller, as on stock asyncio
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
            handle._scheduled = False
            if handle._cancelled:
                continue
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

    # -- when time may jump ------------------------------------------------------

    def _v_may_jump(self) -> int:
        """The loop is idle with a future deadline: 0 if it may jump now, else real ns to wait.

        Resets nothing on the loop; the caller waits the returned real time
        (or until something happens) and asks again.
        """
        work = self._v_work
        if work.running(self._v_thread):
            self._v_idle_since = None
            self._v_settled = False
            recheck = self._v_recheck_ns
            recheck = _RECHECK_FIRST_NS if not recheck else min(recheck * 2, _RECHECK_MAX_NS)
            self._v_recheck_ns = recheck
            return recheck
        self._v_recheck_ns = 0
        if work.looked and (not work.still() or not self._v_settled):
            # Look again after letting the GIL go: a thread about to call back moves.
            self._v_settled = True
            return _SETTLE_NS
        if self._v_threshold_ns:
            real_now = self._v_real_clock_ns()
            if self._v_idle_since is None:
                self._v_idle_since = real_now
            remaining = self._v_threshold_ns - (real_now - self._v_idle_since)
            if remaining > 0:
                return remaining
        self._v_idle_since = None
        self._v_settled = False
        return 0

    def _v_busy(self) -> None:
        """Something happened on the loop: quiescence (and the threshold wait) starts over."""
        self._v_idle_since = None
        self._v_recheck_ns = 0
        self._v_settled = False
        self._v_work.forget_looks()

    def _v_on_time_moved(self) -> None:
        """Clock listener: someone else moved time (advance_time, another loop)."""
        if self._v_clock is None or not self.is_running():
            return  # run_forever kicks when it starts
        if threading.get_ident() == self._v_thread:
            self._v_kick()
        else:
            self._v_kick_threadsafe()

    def _v_kick_threadsafe(self) -> None:
        try:
            self._v_base_call_soon_threadsafe(self._v_kick)
        except RuntimeError:  # the loop closed meanwhile: nothing left to wake
            pass

    def _v_work_over(self) -> None:
        if self._v_clock is not None:
            self._v_recheck_ns = 0
            self._v_kick()

    # -- what each loop class provides ------------------------------------------------

    def _v_kick(self) -> None:
        """Make the loop look at its timers soon (loop thread only)."""
        raise NotImplementedError

    def _v_disarm_waker(self) -> None:
        """Cancel a pending real-time re-check, if any."""
        raise NotImplementedError
