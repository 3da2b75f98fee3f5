"""Carrying the tracing context into threads.

``asyncio.to_thread`` and ``anyio.to_thread.run_sync`` already run the
function in a copy of the caller's context, so spans opened in the thread
parent under the caller's current span with no help. ``loop.run_in_executor``
does not copy the context (the gap OpenTelemetry tracks as contrib#1009): the
function runs in the worker thread's own, empty context, so its spans would be
roots in the default collector. :func:`traced_run_in_executor`,
:func:`carry_context` and :class:`ContextThreadPoolExecutor` close that gap.

The collector is safe to use from threads: span ids come from an
``itertools.count`` (atomic under the GIL) and each thread's chain lives in
its own context.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ("ContextThreadPoolExecutor", "carry_context", "traced_run_in_executor")

P = ParamSpec("P")
R = TypeVar("R")


def carry_context(func: Callable[P, R]) -> Callable[P, R]:
    """Bind ``func`` to a snapshot of the current context (collector, span chain).

    Each call runs in its own copy of that snapshot, so the wrapper may be
    called from several threads at once (one ``Context`` cannot be entered
    twice concurrently).

    Example:
        >>> import threading
        >>> def work() -> None: ...
        >>> thread = threading.Thread(target=carry_context(work)); thread.start(); thread.join()
    """
    snapshot = contextvars.copy_context()

    @functools.wraps(func)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return snapshot.copy().run(func, *args, **kwargs)

    return run


def traced_run_in_executor(
    executor: Executor | None, func: Callable[..., R], *args: object
) -> asyncio.Future[R]:
    """``loop.run_in_executor`` that runs ``func`` in a copy of the caller's context.

    Example:
        >>> async def main() -> int:
        ...     return await traced_run_in_executor(None, sum, [1, 2, 3])
        >>> asyncio.run(main())
        6
    """
    checked: object = executor  # typed callers pass an Executor; untyped ones get a clear error
    if checked is not None and not isinstance(checked, Executor):
        raise TypeError(
            "traced_run_in_executor(): executor must be a concurrent.futures.Executor or None, "
            f"got {type(checked).__name__}"
        )
    if not callable(func):
        raise TypeError(
            f"traced_run_in_executor(): func must be callable, got {type(func).__name__}"
        )
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return loop.run_in_executor(executor, functools.partial(context.run, func, *args))


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ``ThreadPoolExecutor`` that runs each function in the submitter's context.

    ``loop.run_in_executor`` calls ``executor.submit`` from the caller's
    task, so with this as the loop's default executor even a raw
    ``loop.run_in_executor(None, fn)`` keeps the current span and collector
    (asyncio only accepts a ``ThreadPoolExecutor`` there, hence the subclass).

    Example:
        >>> async def main() -> None:
        ...     asyncio.get_running_loop().set_default_executor(ContextThreadPoolExecutor())
        ...     await asyncio.get_running_loop().run_in_executor(None, print, "in a thread")
        >>> asyncio.run(main())
        in a thread
    """

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)`` in a copy of the calling context."""
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)
