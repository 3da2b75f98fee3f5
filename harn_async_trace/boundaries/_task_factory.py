"""The task factory behind ``instrument_asyncio``: each loop it is set on gets one.

A task created while a span of the current collector is open runs its
coroutine inside :func:`_spawned`, which opens a detached ``spawn`` span
linked to that span (``relation=spawned_from``), makes it the task's whole
chain and ends it with ``status``. Everything else is handed on untouched:
tasks created with no span open, tasks whose body is a boundary's own
(``BOUNDARY_TASK_CODES``, ``HANDING_OFF``), and anything that is not a plain
coroutine.

The span opens in the factory, right after the task exists, as a
boundary's span opens at the hand-off: its start is the moment the task was
created, and spawn span ids follow creation order. On Python 3.11 (and on
uvloop) the loop gives the factory no name and names the task only after
the factory returns, so the span opens named after what the factory sees
(the coroutine's qualname, for asyncio's default ``Task-N``) and
:func:`_spawned`, at the task's first step, renames it
(``collector.rename``) when the task's name differs by then -- a
``create_task(..., name=...)`` or a ``set_name`` before the first step. A
task cancelled before its first step never runs :func:`_spawned`; its
done-callback (:class:`_Handoff`) ends the span, as cancelled and under the
task's final name, and closes the coroutine so Python does not warn that it
was never awaited. An eager task (3.12+) takes its first step inside the
factory, before the task is returned: it opens the span there itself.
"""

from __future__ import annotations

import asyncio
import sys
import types
from collections.abc import Callable
from typing import Any, Final

from ..collector import SpanCollector
from ..context import current_collector
from ..kinds import SpanKind
from ..model import SpanLink
from ._common import (
    BOUNDARY_TASK_CODES,
    HANDING_OFF,
    boundary_task,
    end_with_status,
    link_to,
    run_in_span,
)

__all__ = ("STATE", "TaskFactory", "new_task_factory")

_COROUTINE: Final = types.CoroutineType
_SPAWN: Final = SpanKind.SPAWN


class _State:
    """Whether instrumentation is on; every installed factory reads this one object."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = False


STATE: Final = _State()


def span_name(task: asyncio.Future[Any] | None, coro: types.CoroutineType[Any, Any, Any]) -> str:
    """The task's name; for asyncio's default ``Task-N``, the coroutine's qualname.

    ``N`` counts every task the process ever made, so it would give the same
    program different span names from run to run.
    """
    if isinstance(task, asyncio.Task):
        name = task.get_name()
        if not (name.startswith("Task-") and name[5:].isdigit()):
            return name
    return coro.__qualname__


class _Handoff:
    """One task started under an open span: what its span needs.

    Also the task's done-callback, which only has work to do when the task
    was cancelled before :func:`_spawned` ever ran.
    """

    __slots__ = ("collector", "coro", "link", "span_id", "started", "task_name")

    def __init__(
        self, collector: SpanCollector, coro: types.CoroutineType[Any, Any, Any], link: SpanLink
    ) -> None:
        self.collector = collector
        self.coro = coro
        self.link = link
        self.started = False
        self.span_id = 0  # 0 until the span opens
        # What the task was called when its span opened (None: not an
        # asyncio.Task, whose span is named after the coroutine for good).
        self.task_name: str | None = None

    def open(self, task: asyncio.Future[Any] | None) -> int:
        """Open the task's span, named after what ``task`` is called right now."""
        if isinstance(task, asyncio.Task):
            self.task_name = task.get_name()
        span_id = self.span_id = self.collector.open(
            _SPAWN, span_name(task, self.coro), [self.link], detached=True, push=False
        )
        return span_id

    def renamed(self, task: asyncio.Future[Any] | None) -> None:
        """Rename the span if the task's name changed since it opened.

        The loop may name the task after the factory opened its span
        (``create_task(coro, name=...)`` on 3.11 and uvloop), and
        ``set_name`` may rename it before it runs. Comparing the raw task
        names first keeps the common case (no new name) to one call.
        """
        if isinstance(task, asyncio.Task) and task.get_name() != self.task_name:
            self.task_name = task.get_name()
            self.collector.rename(self.span_id, span_name(task, self.coro))

    def __call__(self, task: asyncio.Future[Any]) -> None:
        if self.started:
            return
        self.coro.close()
        exc = asyncio.CancelledError() if task.cancelled() else task.exception()
        if self.span_id == 0:  # the factory's open raised: the task still gets its span
            self.open(task)
        else:
            self.renamed(task)
        end_with_status(self.collector, self.span_id, exc)


@boundary_task
async def _spawned(handoff: _Handoff) -> Any:
    handoff.started = True
    task = asyncio.current_task()
    if handoff.span_id == 0:  # an eager task (3.12+): its first step runs inside the factory
        handoff.open(task)
    else:
        handoff.renamed(task)
    return await run_in_span(handoff.coro, handoff.collector, handoff.span_id)


def _makes_plain_tasks(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop.create_task`` with no factory is just ``asyncio.Task(...)``.

    Then the factory builds the task itself; a loop that makes tasks of its
    own (the virtual-time loops hash theirs by creation order) is asked to.
    """
    method = type(loop).create_task
    if method is asyncio.BaseEventLoop.create_task:
        return True
    uvloop = sys.modules.get("uvloop")
    return uvloop is not None and method is uvloop.Loop.create_task


TaskFactory = Callable[..., "asyncio.Future[Any]"]


def new_task_factory(loop: asyncio.AbstractEventLoop, previous: Any) -> TaskFactory:
    """The factory to set on ``loop``, over ``previous`` (the factory found there, or None).

    A closure, not an object with ``__call__``: the loop calls it for every
    task, and a plain function is the cheapest thing to call from C (about
    150 ns less per task, see benchmarks/RESULTS.md).
    """
    # Checked against the loop's class on each call: mock_time() may turn a
    # running stock loop into a virtual one in place.
    plain_class = type(loop) if previous is None and _makes_plain_tasks(loop) else None
    task_class = asyncio.Task

    def factory(
        loop: asyncio.AbstractEventLoop, coro: Any, context: Any = None, **kwargs: Any
    ) -> asyncio.Future[Any]:
        handoff = None
        # Ordered so that the common no-span case is rejected in a few steps.
        if STATE.active and type(coro) is _COROUTINE:
            collector = current_collector()
            if collector.enabled:
                parent = collector.current_span_id()
                if (
                    parent is not None
                    and coro.cr_code not in BOUNDARY_TASK_CODES
                    and not HANDING_OFF.active
                ):
                    link = link_to(collector, parent, relation="spawned_from")
                    handoff = _Handoff(collector, coro, link)
                    coro = _spawned(handoff)
        if context is not None:
            kwargs["context"] = context
        if previous is not None:
            # Called as the loop would call it (no context= unless given).
            task: asyncio.Future[Any] = previous(loop, coro, **kwargs)
        elif type(loop) is plain_class:
            task = task_class(coro, loop=loop, **kwargs)
        else:
            # Step aside while the loop makes the task it would make without us.
            loop.set_task_factory(None)
            try:
                task = loop.create_task(coro, **kwargs)
            finally:
                loop.set_task_factory(factory)
        if handoff is not None:
            # Opened here, not at the first step: the span starts when the
            # task is made, and span ids follow creation order. An eager
            # task (3.12+) already ran its first step, which opened it.
            if not handoff.started:
                handoff.open(task)
            task.add_done_callback(handoff)
        return task

    return factory
