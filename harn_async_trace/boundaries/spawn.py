"""``traced_spawn``: fire-and-forget tasks that stay linked to their caller.

The spawned task's span is a detached root (it may outlive the caller's
span by hours), linked back with ``relation=spawned_from``. Its context is a
copy of the caller's whose chain holds only that span, so everything the task
opens nests under it even after the caller's span has ended.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..context import current_collector
from ..kinds import SpanKind
from ..model import SpanLink
from ._common import HANDING_OFF, close_span_after_task, close_unstarted, link_to, run_in_span

__all__ = ("traced_spawn", "traced_start_soon")

T = TypeVar("T")


def _default_name(work: object) -> str:
    name = getattr(work, "__qualname__", None)
    return name if isinstance(name, str) else type(work).__qualname__


def traced_spawn(coro: Awaitable[T], *, name: str | None = None) -> asyncio.Task[T]:
    """Start ``coro`` as an ``asyncio.Task`` under its own detached ``spawn`` span.

    ``name`` (default: the coroutine's ``__qualname__``) names both the task
    and the span. The span starts now, ends when the task ends (however it
    ends) and carries ``status`` = ``ok`` | ``error`` | ``cancelled``. With
    tracing disabled this is exactly ``asyncio.create_task``.

    Example:
        >>> async def main() -> str:
        ...     async def job() -> str:
        ...         return "done"
        ...     return await traced_spawn(job(), name="job")
        >>> asyncio.run(main())
        'done'
    """
    if not inspect.isawaitable(coro):
        raise TypeError(f"traced_spawn() needs a coroutine or awaitable, got {coro!r}")
    given_name: object = name  # typed callers pass a str; untyped ones get a clear error
    if name is None:
        name = _default_name(coro)
    elif not isinstance(given_name, str):
        close_unstarted(coro)  # rejected before it could run: don't leak "never awaited"
        raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError as exc:
        close_unstarted(coro)  # like create_task: no loop is an error, not a leak
        raise RuntimeError(
            "traced_spawn() returns an asyncio.Task, so it needs a running asyncio loop "
            "(under trio, start the work in an anyio task group: spans opened in its "
            "children nest under the caller's span)"
        ) from exc
    collector = current_collector()
    if not collector.enabled:
        if inspect.iscoroutine(coro):
            return loop.create_task(coro, name=name)
        return loop.create_task(run_in_span(coro, None, 0), name=name)
    parent_id = collector.current_span_id()
    links = None if parent_id is None else [link_to(collector, parent_id, relation="spawned_from")]
    span_id = collector.open(SpanKind.SPAWN, name, links, detached=True, push=False)
    # The task copies the caller's context; run_in_span rebinds its chain to
    # this span first thing, before any user code runs in it.
    task = loop.create_task(run_in_span(coro, collector, span_id), name=name)
    task.add_done_callback(close_span_after_task(collector, span_id, coro))
    return task


def traced_start_soon(
    group: Any,  # anyio TaskGroup or trio Nursery: anything with start_soon(func, *args, name=)
    func: Callable[..., Awaitable[Any]],
    /,
    *args: object,
    name: str | None = None,
) -> None:
    """``group.start_soon(func, *args)`` with the child under its own linked ``spawn`` span.

    For anyio task groups (asyncio or trio backend) and trio nurseries: the
    structured-concurrency counterpart of :func:`traced_spawn`. The child runs
    under a detached ``spawn`` span named ``name`` (default: ``func``'s
    qualname) linked to the caller's current span (``relation=spawned_from``),
    with ``status`` when it ends. The link is taken now; the span opens when the
    child starts, so a child cancelled before it ever runs leaves no span.

    Example:
        >>> import anyio
        >>> async def main() -> None:
        ...     async def child() -> None: ...
        ...     async with anyio.create_task_group() as group:
        ...         traced_start_soon(group, child, name="child")
        >>> anyio.run(main)
    """
    if not callable(func):
        raise TypeError(f"traced_start_soon() needs an async callable, got {func!r}")
    if name is None:
        name = _default_name(func)
    elif not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
    collector = current_collector()
    if not collector.enabled:
        group.start_soon(func, *args, name=name)
        return
    parent_id = collector.current_span_id()
    link: SpanLink | None = (
        None if parent_id is None else link_to(collector, parent_id, relation="spawned_from")
    )
    span_name = name

    async def child() -> Any:
        span_id = collector.open(
            SpanKind.SPAWN, span_name, None if link is None else [link], detached=True, push=False
        )
        return await run_in_span(functools.partial(func, *args), collector, span_id)

    # anyio wraps `child` in a coroutine of its own, so instrument_asyncio's
    # task factory is told directly that this task has its span already.
    handing_off, HANDING_OFF.active = HANDING_OFF.active, True
    try:
        group.start_soon(child, name=name)
    finally:
        HANDING_OFF.active = handing_off
