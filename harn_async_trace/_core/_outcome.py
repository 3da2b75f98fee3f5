"""How a traced block ended, as span metadata; and the decorator form of ``span()``.

Shared by both cores: the compiled ``span`` type calls :func:`decorate` for
``@span(...)`` and applies the same outcome rules in C.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar, cast

__all__ = ("decorate", "is_cancellation", "record_outcome")

P = ParamSpec("P")
R = TypeVar("R")


class _Collector(Protocol):
    def set_metadata(self, span_id: int, key: str, value: Any) -> None: ...


class _Scope(Protocol):
    def _open(self) -> Any: ...
    def _close(self, handle: Any, exc: BaseException | None) -> None: ...


def is_cancellation(exc: BaseException) -> bool:
    """asyncio's CancelledError, or trio/anyio's ``Cancelled`` (not importing trio).

    Example:
        >>> is_cancellation(asyncio.CancelledError()), is_cancellation(ValueError())
        (True, False)
    """
    return isinstance(exc, asyncio.CancelledError) or type(exc).__name__ == "Cancelled"


def record_outcome(collector: _Collector, span_id: int, exc: BaseException | None) -> None:
    """Write how a block ended onto its open span (nothing for a clean exit).

    Cancellation is ``cancelled: True``; any other exception is ``error``
    (its message) and ``error_type`` (its class name).
    """
    if exc is None or isinstance(exc, GeneratorExit):
        return
    if is_cancellation(exc):
        collector.set_metadata(span_id, "cancelled", True)
    else:
        collector.set_metadata(span_id, "error", str(exc))
        collector.set_metadata(span_id, "error_type", type(exc).__name__)


def decorate(scope: _Scope, func: Callable[P, R]) -> Callable[P, R]:
    """``func`` wrapped so that each call runs inside a fresh span of ``scope``.

    Coroutine functions stay coroutine functions; the wrapper keeps the
    function's name and docstring (``functools.wraps``).
    """
    open_span, close_span = scope._open, scope._close
    if inspect.iscoroutinefunction(func):
        async_func = cast(Callable[P, Awaitable[Any]], func)

        @functools.wraps(func)
        async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
            handle = open_span()
            try:
                result = await async_func(*args, **kwargs)
            except BaseException as exc:
                close_span(handle, exc)
                raise
            close_span(handle, None)
            return result

        return cast(Callable[P, R], async_wrapper)

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        handle = open_span()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            close_span(handle, exc)
            raise
        close_span(handle, None)
        return result

    return wrapper
