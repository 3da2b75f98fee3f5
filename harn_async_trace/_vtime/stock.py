"""``StockMixin``: virtual time on stock asyncio loops, at the place stock asyncio moves timers.

Each pass of ``BaseEventLoop._run_once`` polls I/O, queues the I/O
callbacks (``_process_events``), then moves the timers that are due to the
end of its ready queue, then runs the ready queue. We do our part right
there, in ``_process_events`` after the base's: due timers go to the end of
the ready queue in (deadline, scheduling) order, so callbacks run in the
order stock asyncio runs them (``call_soon`` before an earlier-made
``call_later(0)`` that was not yet due when they were queued, and so on),
each as its own handle (debug mode times each one, never a jump).

The jump is decided there too: a pass whose poll returned no event, with
nothing ready and the next deadline in the future, is where a real loop
would block. If :meth:`~.mixin.VirtualTimeMixin._v_may_jump` allows, the
clock moves to that deadline and its timers are queued in the same pass;
otherwise the next poll waits the real time it asks for. The poll's timeout
is ours to choose because the selector's ``select`` is wrapped: stock
asyncio computes it from ``time()``, which is frozen virtual time here.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, Final, cast

from .mixin import _FAST_HANDLES, VirtualTimeMixin
from .timeline import _NEVER, _NS

__all__ = ["StockMixin", "unwrap_selector"]

_new_handle: Final = asyncio.Handle.__new__
_copy_context: Final = contextvars.copy_context
# Stands in for a pump handle: stock loops need no kick when a timer is pushed.
_NO_PUMP: Final[Any] = object()


def unwrap_selector(loop: Any) -> None:
    """Undo the ``select`` wrapper of :meth:`StockMixin._v_setup` (in-place virtualisation)."""
    selector = getattr(loop, "_selector", None)
    wrapped = getattr(loop, "_v_select_saved", None)
    if selector is None or wrapped is None:
        return
    saved, had_own = wrapped
    if had_own:
        selector.select = saved
    else:
        del selector.select
    loop._v_select_saved = None


class StockMixin(VirtualTimeMixin):
    """Base-loop access and the timer/jump step for stock asyncio loops (see the module doc)."""

    def _v_setup(self, *, autojump_threshold: float) -> None:
        super()._v_setup(autojump_threshold=autojump_threshold)
        self._v_pump_handle = _NO_PUMP
        # Real ns the next poll may wait while work runs (None: as asyncio asks).
        self._v_poll_ns: int | None = None
        raw: Any = self
        selector = getattr(raw, "_selector", None)
        if getattr(raw, "_v_select_saved", None) is not None:
            return  # set up before (a loop adopted again): already wrapped
        self._v_select_saved: tuple[Any, bool] | None = None
        if selector is not None:
            original = selector.select
            self._v_select_saved = (original, "select" in vars(selector))

            def select(timeout: float | None = None) -> Any:
                if self._v_clock is not None and (timeout is None or timeout > 0):
                    timeout = self._v_poll_timeout(timeout)
                return original(timeout)

            selector.select = select

    def _v_poll_timeout(self, timeout: float | None) -> float | None:
        """The real seconds the next poll may block, asyncio having asked for ``timeout``."""
        due = self._v_timers.peek_due()
        if due is None or due >= _NEVER:
            return timeout  # no virtual deadline: block as asyncio asks (I/O, wake-ups)
        wait = self._v_poll_ns
        if wait is None:
            return 0  # poll, then decide in _process_events
        return wait / _NS if timeout is None else min(timeout, wait / _NS)

    def _process_events(self, event_list: Any) -> None:
        base: Any = super()
        base._process_events(event_list)
        clock = self._v_clock
        if clock is None:
            return
        self._v_poll_ns = None
        timers = self._v_timers
        now = clock.monotonic_ns()
        due = timers.peek_due()
        if due is None:
            return
        if due > now:
            raw: Any = self
            if event_list or raw._ready or raw._stopping:
                self._v_busy()
                return
            # Here a real loop would block until the deadline.
            wait_ns = self._v_may_jump()
            if wait_ns:
                self._v_poll_ns = wait_ns
                return
            if due >= _NEVER:
                return
            now = clock._move_to_ns(due, self._v_on_time_moved)
        ready = cast(Any, self)._ready
        for handle in timers.pop_until(now):
            handle._scheduled = False
            if not handle._cancelled:
                ready.append(handle)

    def _v_kick(self) -> None:
        # Every pass looks at the timers: being in the loop's thread is enough.
        pass

    def _v_kick_threadsafe(self) -> None:
        try:
            self._v_base_call_soon_threadsafe(_nothing)  # wakes a blocked poll
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _v_disarm_waker(self) -> None:
        self._v_poll_ns = None

    def _v_base_time(self) -> float:
        base: Any = super(VirtualTimeMixin, self)
        return cast(float, base.time())

    def _v_base_call_soon(self, callback: Callable[[], None]) -> asyncio.Handle:
        base: Any = super(VirtualTimeMixin, self)
        return cast(asyncio.Handle, base.call_soon(callback, context=self._v_ctx))

    def _v_base_call_soon_threadsafe(self, callback: Callable[[], None]) -> asyncio.Handle:
        base: Any = super(VirtualTimeMixin, self)
        return cast(asyncio.Handle, base.call_soon_threadsafe(callback, context=self._v_ctx))

    def _v_base_call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.Handle:
        # BaseEventLoop.call_later would call our call_at; its call_at does not.
        base: Any = super(VirtualTimeMixin, self)
        when = self._v_base_time() + delay
        return cast(asyncio.Handle, base.call_at(when, callback, context=self._v_ctx))

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """``BaseEventLoop.call_soon`` minus two Python frames (it wakes every task).

        Outside debug mode it does exactly what the stock method does: check
        the loop is open, make a Handle, append it to the ready queue.
        """
        raw: Any = self
        if raw._debug or not _FAST_HANDLES:
            base: Any = super(VirtualTimeMixin, self)
            return cast(asyncio.Handle, base.call_soon(callback, *args, context=context))
        if raw._closed:
            raise RuntimeError("Event loop is closed")
        handle: Any = _new_handle(asyncio.Handle)
        handle._callback = callback
        handle._args = args
        handle._cancelled = False
        handle._loop = self
        handle._source_traceback = None
        handle._repr = None
        handle._context = context if context is not None else _copy_context()
        raw._ready.append(handle)
        return cast(asyncio.Handle, handle)


def _nothing() -> None:
    return None
