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
import heapq
from collections.abc import Callable
from typing import Any, Final, cast

from ..clock import MockClock, MockClockError
from .mixin import VirtualTimeMixin
from .pump import PumpMixin
from .stock import StockMixin, unwrap_selector

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


class VirtualEventLoop(StockMixin, asyncio.SelectorEventLoop):  # type: ignore[misc]  # mixin signatures looser than typeshed
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

        class VirtualUVLoop(PumpMixin, uvloop.Loop):  # type: ignore[misc]  # its stubs disagree with typeshed
            """``uvloop.Loop`` on (optionally) virtual time."""

            # uvloop runs ready callbacks in a libuv idle handler we cannot
            # inspect, so activity is judged by counting call_soon calls.
            # Same calls as uvloop's, typed without typeshed's TypeVarTuple.
            call_soon = PumpMixin._v_counted_call_soon  # type: ignore[assignment]  # see above
            call_soon_threadsafe = PumpMixin._v_counted_call_soon_threadsafe  # type: ignore[assignment]  # as above

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

        # Code that tells uvloop apart by module (anyio does) must see uvloop.
        VirtualUVLoop.__module__ = uvloop.Loop.__module__
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
        made = type(f"Virtual{cls.__name__}", (StockMixin, cls), {"__module__": cls.__module__})
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
        unwrap_selector(raw)
        for name in [key for key in vars(raw) if key.startswith("_v_") or key.startswith("call_")]:
            delattr(raw, name)
        raw.__class__ = original

    return undo
