"""What :func:`harn_async_trace.mock_time` does to event loops and the wall clock.

Each function applies one effect and returns the callable that undoes it;
:func:`enter_mock_time` applies them in order and is registered with
``clock.py`` at import (the clock is the ground floor and cannot import us).

Loops created while a mock is active become virtual through an event-loop
policy wrapper: ``asyncio.run``, ``asyncio.Runner()`` and
``asyncio.new_event_loop()`` all ask the policy for a new loop, so wrapping
``new_event_loop`` (and delegating everything else to the previous policy,
e.g. uvloop's) covers them without patching asyncio functions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ..clock import MockClock, MockClockError, _register_loop_effect
from .loops import ENTRY_POINTS_HINT, adopt_new_loop, is_uvloop, virtualise_in_place
from .mixin import VirtualTimeMixin

__all__ = (
    "enter_mock_time",
    "install_loop_policy",
    "patch_wall_clock",
    "virtualise_running_loop",
)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _noop() -> None:
    return None


def virtualise_running_loop(clock: MockClock, autojump_threshold: float) -> Callable[[], None]:
    """Put the loop running in this thread (if any) on ``clock`` until undone."""
    loop = asyncio._get_running_loop()
    if loop is None:
        return _noop
    if isinstance(loop, VirtualTimeMixin):
        current = loop._v_clock
        if current is not None:
            raise MockClockError(
                f"mock_time() cannot nest here: the running loop already runs on {current!r} "
                "(from run(..., clock=...), virtual_loop_factory(...) or an outer mock_time()). "
                "Use that clock instead: advance_time(seconds) or active_mock_clock()."
            )
        saved = loop._v_threshold_ns
        loop._v_set_threshold(autojump_threshold)
        loop._v_attach(clock)

        def undo_ours() -> None:
            loop._v_detach()
            loop._v_set_threshold(saved / 1_000_000_000)

        return undo_ours
    if is_uvloop(loop):
        raise MockClockError(
            "mock_time() cannot virtualise a running uvloop loop that was not created by "
            "harn-async-trace: its timers live inside libuv. " + ENTRY_POINTS_HINT
        )
    if isinstance(loop, asyncio.BaseEventLoop):
        return virtualise_in_place(loop, clock, autojump_threshold)
    raise MockClockError(
        f"mock_time() cannot virtualise a running {type(loop).__qualname__} loop. "
        + ENTRY_POINTS_HINT
    )


class _VirtualPolicy(asyncio.AbstractEventLoopPolicy):
    """Delegates to the previous policy; new loops come out virtual on the clock."""

    def __init__(
        self, inner: asyncio.AbstractEventLoopPolicy, clock: MockClock, threshold: float
    ) -> None:
        self._inner = inner
        self._clock = clock
        self._threshold = threshold

    def get_event_loop(self) -> asyncio.AbstractEventLoop:
        return self._inner.get_event_loop()

    def set_event_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self._inner.set_event_loop(loop)

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        return adopt_new_loop(self._inner.new_event_loop(), self._clock, self._threshold)

    def get_child_watcher(self) -> Any:
        return self._inner.get_child_watcher()

    def set_child_watcher(self, watcher: Any) -> None:
        self._inner.set_child_watcher(watcher)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def install_loop_policy(clock: MockClock, autojump_threshold: float) -> Callable[[], None]:
    """Make loops created from now on virtual on ``clock``, until undone."""
    previous = asyncio.get_event_loop_policy()
    ours = _VirtualPolicy(previous, clock, autojump_threshold)
    asyncio.set_event_loop_policy(ours)

    def undo() -> None:
        # Someone may have replaced the policy meanwhile; then theirs stays.
        if asyncio.get_event_loop_policy() is ours:
            asyncio.set_event_loop_policy(previous)

    return undo


def patch_wall_clock(clock: MockClock) -> Callable[[], None]:
    """``time.time()``/``datetime.now()`` follow ``clock``'s wall time (time-machine), until undone.

    Exact to the microsecond: the traveller moves by whole microseconds, from
    an exact starting point, so no float error accumulates.
    """
    try:
        import time_machine
    except ImportError:  # pragma: no cover - a declared dependency
        raise MockClockError("mock_time(patch_wall=True) needs time-machine") from None

    synced_us = clock.wall_ns() // 1_000
    travel = time_machine.travel(_EPOCH + timedelta(microseconds=synced_us), tick=False)
    traveller = travel.start()

    def follow() -> None:
        nonlocal synced_us
        target = clock.wall_ns() // 1_000
        if target != synced_us:
            traveller.shift(timedelta(microseconds=target - synced_us))
            synced_us = target

    clock._add_listener(follow)

    def undo() -> None:
        clock._remove_listener(follow)
        travel.stop()

    return undo


def enter_mock_time(
    clock: MockClock, autojump_threshold: float, patch_wall: bool
) -> Callable[[], None]:
    """Everything ``mock_time`` does beyond the override, as one undoable step."""
    # Virtualise the running loop first: it is the step that can refuse.
    undo = [virtualise_running_loop(clock, autojump_threshold)]
    try:
        undo.append(install_loop_policy(clock, autojump_threshold))
        if patch_wall:
            undo.append(patch_wall_clock(clock))
    except BaseException:
        for step in reversed(undo):
            step()
        raise

    def undo_all() -> None:
        for step in reversed(undo):
            step()

    return undo_all


_register_loop_effect(enter_mock_time)
