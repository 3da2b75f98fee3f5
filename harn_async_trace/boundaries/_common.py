"""Shared machinery for the boundaries: running work under a detached span.

Every boundary (spawn, parallel branch, pool job, channel handler) does the
same three things: open a detached span *before* the new task exists (so its
start time is the moment the work was handed off), make that span the whole
parent chain of the new task's context, and end it with a ``status`` however
the task ends - including when the task is cancelled before its first step,
in which case the wrapper never runs and a done-callback closes the span.

The task bodies the boundaries create are registered with
:func:`boundary_task`: ``instrument_asyncio``'s task factory leaves their
tasks alone, since they already run under a boundary span of their own.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from types import CodeType
from typing import Any, Final, TypeVar

from .._scoped import is_cancellation, record_outcome
from ..collector import SpanCollector
from ..model import SpanLink

__all__ = (
    "BOUNDARY_TASK_CODES",
    "HANDING_OFF",
    "boundary_task",
    "close_span_after_task",
    "close_unstarted",
    "end_with_status",
    "link_to",
    "relink",
    "resolve",
    "run_in_span",
    "status_of",
)

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# The code objects of the coroutine functions boundaries run their tasks in.
# A set of code objects, not a flag set around each create_task: checking it
# costs nothing unless instrument_asyncio is on and a span is open.
BOUNDARY_TASK_CODES: Final[set[CodeType]] = set()



class _HandingOff(threading.local):
    """``active`` while a boundary hands a task to code that wraps its coroutine.

    anyio's task group runs each child in a coroutine of its own, so the code
    check above cannot see ours. Per thread, not a ContextVar: the new task
    copies the context, and a copied flag would hide the child's own tasks.
    """

    active = False


HANDING_OFF: Final = _HandingOff()


def boundary_task(func: F) -> F:
    """Register ``func`` (a coroutine function) as the body of a boundary's tasks."""
    BOUNDARY_TASK_CODES.add(func.__code__)
    return func

STATUS_OK: Final = "ok"
STATUS_ERROR: Final = "error"
STATUS_CANCELLED: Final = "cancelled"


def link_to(collector: SpanCollector, span_id: int, **attributes: str) -> SpanLink:
    """A link with ``attributes`` to the open span ``span_id`` (in its own trace).

    Boundaries that link to a span after it ended (a submit span, an emit
    span) take its link while it is open and :func:`relink` it later.
    """
    link = collector.span_link(span_id)
    if link is None:  # not open: the collector's default trace is the best guess
        return SpanLink(collector.trace_id, str(span_id), attributes)
    return SpanLink(link.trace_id, link.span_id, attributes)


def relink(link: SpanLink, **attributes: str) -> SpanLink:
    """``link`` with ``attributes`` instead of its own."""
    return SpanLink(link.trace_id, link.span_id, attributes)


def status_of(exc: BaseException | None) -> str:
    """``ok`` / ``error`` / ``cancelled`` for how a piece of work ended."""
    if exc is None or isinstance(exc, GeneratorExit):
        return STATUS_OK
    return STATUS_CANCELLED if is_cancellation(exc) else STATUS_ERROR


def end_with_status(collector: SpanCollector, span_id: int, exc: BaseException | None) -> None:
    """Write ``status`` (plus ``error``/``cancelled`` like ``span()``) and end the span."""
    collector.set_metadata(span_id, "status", status_of(exc))
    record_outcome(collector, span_id, exc)
    collector.end(span_id)


@boundary_task
async def run_in_span(
    work: Awaitable[T] | Callable[[], Awaitable[T]],
    collector: SpanCollector | None,
    span_id: int,
) -> T:
    """The body of every boundary task: bind the chain, await the work, end the span.

    ``work`` may be an awaitable or a zero-argument callable returning one
    (called here, inside the bound context, so lazily created coroutines
    already see the span as their parent).
    """
    if collector is None:
        return await resolve(work)
    with collector.bind(span_id):
        try:
            result = await resolve(work)
        except BaseException as exc:
            end_with_status(collector, span_id, exc)
            raise
        end_with_status(collector, span_id, None)
    return result


def resolve(work: Awaitable[T] | Callable[[], Awaitable[T]]) -> Awaitable[T]:
    """``work`` itself if awaitable, else the awaitable returned by calling it."""
    if inspect.isawaitable(work):
        return work
    made = work()
    if not inspect.isawaitable(made):
        raise TypeError(f"expected an awaitable or a callable returning one, got {made!r}")
    return made


def close_unstarted(work: object) -> None:
    """Close a coroutine that never ran, so Python does not warn it was never awaited."""
    if inspect.iscoroutine(work) and inspect.getcoroutinestate(work) == inspect.CORO_CREATED:
        work.close()


def close_span_after_task(
    collector: SpanCollector, span_id: int, work: object
) -> Callable[[asyncio.Future[Any]], None]:
    """A done-callback that ends the span if the task finished without running the wrapper.

    That happens when a task is cancelled before its first step: asyncio
    throws ``CancelledError`` into the unstarted wrapper, whose body (and so
    its ``finally``) never executes.
    """

    def on_done(task: asyncio.Future[Any]) -> None:
        if collector.span_link(span_id) is None:  # the wrapper already ended it
            return
        close_unstarted(work)
        exc: BaseException | None
        if task.cancelled():
            exc = asyncio.CancelledError()
        else:
            exc = task.exception()
        end_with_status(collector, span_id, exc)

    return on_done
