"""The concrete virtual-time loop classes and how loops become virtual.

* :class:`VirtualEventLoop` - stock ``asyncio.SelectorEventLoop`` + mixin;
* ``VirtualUVLoop`` - ``uvloop.Loop`` + mixin (built on first use, so uvloop
  stays optional);
* :func:`virtual_class_for` - the same mixin over any stock loop class, for
  virtualising an existing (even running) loop by swapping its class;
* :func:`new_virtual_loop`, :func:`adopt_new_loop`,
  :func:`virtualise_in_place`.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
from collections.abc import Callable
from typing import Any, Final, cast

from ..clock import MockClock, MockClockError
from .mixin import _FAST_HANDLES, VirtualTimeMixin

_new_handle: Final = asyncio.Handle.__new__
_copy_context: Final = contextvars.copy_context

__all__ = (
    "ENTRY_POINTS_HINT",
    "VirtualEventLoop",
    "adopt_new_loop",
    "is_uvloop",
    "new_virtual_loop",
    "virtual_class_for",
    "virtualise_in_place",
)

_NS: Final = 1_000_000_000

ENTRY_POINTS_HINT: Final = (
    "Create the loop with virtual time instead: harn_async_trace.loop.run(main(), "
    "clock=MockClock(), use_uvloop=True), or pass "
    "loop_factory=harn_async_trace.loop.virtual_loop_factory(clock, use_uvloop=True) to "
    "uvloop.run / asyncio.Runner / anyio.run(backend_options=...), or enter mock_time() "
    "before the loop is created (asyncio.run inside it gets a virtual loop)."
)


class _StockHooks(VirtualTimeMixin):
    """Base-loop access for stock asyncio loops (``BaseEventLoop`` subclasses)."""

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

    def _v_has_ready(self) -> bool:
        return bool(self._ready)  # type: ignore[attr-defined]

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


class VirtualEventLoop(_StockHooks, asyncio.SelectorEventLoop):  # type: ignore[misc]
    """The stock asyncio selector loop on (optionally) virtual time.

    Make one with :func:`new_virtual_loop` (or the public
    ``harn_async_trace.loop.virtual_loop_factory``).
    """


_CLASS_CACHE: dict[type[Any], type[Any]] = {asyncio.SelectorEventLoop: VirtualEventLoop}
_UVLOOP_CLASS: list[type[Any]] = []


def is_uvloop(loop: object) -> bool:
    """True for uvloop loops (without importing uvloop)."""
    return any(cls.__module__.startswith("uvloop") for cls in type(loop).__mro__)


def _uvloop_class() -> type[Any]:
    if not _UVLOOP_CLASS:
        try:
            import uvloop
        except ImportError:
            raise MockClockError(
                "use_uvloop=True needs uvloop: pip install 'harn-async-trace[uvloop]'"
            ) from None

        class VirtualUVLoop(VirtualTimeMixin, uvloop.Loop):  # type: ignore[misc]
            """``uvloop.Loop`` on (optionally) virtual time."""

            # uvloop runs ready callbacks in a libuv idle handler we cannot
            # inspect, so idleness is judged by call_soon counts over two passes.
            _v_idle_passes = 2
            _v_counts_by_class = True
            # Same calls as uvloop's, typed without typeshed's TypeVarTuple.
            call_soon = VirtualTimeMixin._v_counted_call_soon  # type: ignore[assignment]
            call_soon_threadsafe = VirtualTimeMixin._v_counted_call_soon_threadsafe  # type: ignore[assignment]

            def _v_base_time(self) -> float:
                return uvloop.Loop.time(self)

            def _v_base_call_soon(self, callback: Callable[[], None]) -> asyncio.Handle:
                return uvloop.Loop.call_soon(self, callback, context=self._v_ctx)

            def _v_base_call_soon_threadsafe(
                self, callback: Callable[[], None]
            ) -> asyncio.Handle:
                return uvloop.Loop.call_soon_threadsafe(self, callback, context=self._v_ctx)

            def _v_base_call_later(
                self, delay: float, callback: Callable[[], None]
            ) -> asyncio.Handle:
                # uvloop's call_later goes straight to libuv (real time).
                return uvloop.Loop.call_later(self, delay, callback, context=self._v_ctx)

        VirtualUVLoop.__module__ = __name__
        _UVLOOP_CLASS.append(VirtualUVLoop)
    return _UVLOOP_CLASS[0]


def virtual_class_for(cls: type[Any]) -> type[Any]:
    """The virtual-time subclass of a stock loop class (cached).

    Example:
        >>> virtual_class_for(asyncio.SelectorEventLoop) is VirtualEventLoop
        True
    """
    if issubclass(cls, VirtualTimeMixin):
        return cls
    made = _CLASS_CACHE.get(cls)
    if made is None:
        made = type(f"Virtual{cls.__name__}", (_StockHooks, cls), {"__module__": __name__})
        _CLASS_CACHE[cls] = made
    return made


def new_virtual_loop(
    clock: MockClock | None,
    *,
    use_uvloop: bool = False,
    autojump_threshold: float = 0.0,
) -> asyncio.AbstractEventLoop:
    """A new loop on ``clock`` (``loop.time()`` == its monotonic seconds), or dormant on real time.

    Example:
        >>> loop = new_virtual_loop(MockClock())
        >>> loop.time()
        0.0
        >>> loop.close()
    """
    cls = _uvloop_class() if use_uvloop else VirtualEventLoop
    loop = cls()
    loop._v_setup(autojump_threshold=autojump_threshold)
    if clock is not None:
        loop._v_attach(clock, offset_ns=0)
    return cast(asyncio.AbstractEventLoop, loop)


def _take_base_timers(loop: Any) -> None:
    """Move a stock loop's pending timers into our queue (real timeline)."""
    timers = loop._v_timers
    for handle in sorted(loop._scheduled):  # by deadline
        if handle._cancelled:
            handle._scheduled = False
        else:
            timers.push(round(handle._when * _NS), handle)
    loop._scheduled = []
    loop._timer_cancelled_count = 0


def adopt_new_loop(
    loop: asyncio.AbstractEventLoop, clock: MockClock, autojump_threshold: float
) -> asyncio.AbstractEventLoop:
    """Make a loop that was just created (not running) virtual on ``clock``, for good."""
    if isinstance(loop, VirtualTimeMixin):
        if loop._v_clock is None:
            loop._v_attach(clock, offset_ns=0)
        return loop
    if is_uvloop(loop):
        # Its timers live in libuv; a fresh virtual uvloop loop is equivalent.
        loop.close()
        return new_virtual_loop(clock, use_uvloop=True, autojump_threshold=autojump_threshold)
    if isinstance(loop, asyncio.BaseEventLoop):
        raw: Any = loop
        raw.__class__ = virtual_class_for(type(loop))
        raw._v_setup(autojump_threshold=autojump_threshold)
        _take_base_timers(raw)
        raw._v_attach(clock, offset_ns=0)
        return loop
    loop.close()
    raise MockClockError(
        f"mock_time() cannot make a {type(loop).__qualname__} loop virtual. " + ENTRY_POINTS_HINT
    )


def virtualise_in_place(
    loop: asyncio.BaseEventLoop, clock: MockClock, autojump_threshold: float
) -> Callable[[], None]:
    """Virtualise a (running) stock loop until the returned undo is called.

    Its pending timers move to virtual time keeping their remaining delay,
    and move back (again keeping it) on undo.
    """
    raw: Any = loop
    original = type(loop)
    raw.__class__ = virtual_class_for(original)
    raw._v_setup(autojump_threshold=autojump_threshold)
    _take_base_timers(raw)
    raw._v_attach(clock)

    def undo() -> None:
        raw._v_detach()
        armed = raw._v_real_armed
        if armed is not None:
            armed[1].cancel()
        for _, handle in raw._v_timers.items():
            handle._scheduled = True
            heapq.heappush(raw._scheduled, handle)
        for name in [key for key in vars(raw) if key.startswith("_v_") or key.startswith("call_")]:
            delattr(raw, name)
        raw.__class__ = original

    return undo
