"""``@step``: one ``step`` span per call of a function, coroutine or (async) generator.

Sync functions and coroutines reuse ``span()`` (pushed on the caller's chain
for the duration of the call). Async generators cannot be pushed: between two
``yield``s the *consumer* runs in the same context, and its spans would nest
under the generator's step. So the generator's span is opened unpushed, as a
child of the caller's span, and bound to the chain only while the generator's
own code runs (each ``asend``/``athrow``), then unbound before the value is
handed out. Sync generators get the same treatment.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import Any, TypeVar, cast, overload

from .._scoped import record_outcome, span
from ..collector import SpanCollector
from ..context import current_collector
from ..kinds import SpanKind
from ..model import _SpanSlots

__all__ = ["step"]

F = TypeVar("F", bound=Callable[..., Any])


@overload
def step(func: F, /) -> F: ...


@overload
def step(
    func: str | None = None,
    /,
    *,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    **extra_metadata: Any,
) -> Callable[[F], F]: ...


def step(
    func: Callable[..., Any] | str | None = None,
    /,
    *,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    **extra_metadata: Any,
) -> Any:
    """Trace each call as a ``step`` span (default name: the function's ``__qualname__``).

    Works bare (``@step``), with a name (``@step("load")``) or with keywords
    (``@step(name="load", metadata={"source": "disk"})``; other keywords are
    metadata too, like ``span()``: ``@step(source="disk")``), on sync
    functions, coroutine functions, async generator functions and generator
    functions. Errors and cancellation are recorded like ``span()``.

    Example:
        >>> @step(name="double", metadata={"unit": "x"})
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> double(4)
        8
    """
    if isinstance(func, str):
        if name is not None:
            raise TypeError("give the step name once: positionally or as name=")
        name, func = func, None
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"metadata must be a mapping, got {metadata!r}")
    extra = dict(metadata or {})
    extra.update(extra_metadata)

    def decorate(target: F) -> F:
        if not callable(target):
            raise TypeError(f"@step needs a function, got {target!r}")
        step_name = name if name is not None else getattr(target, "__qualname__", repr(target))
        if inspect.isasyncgenfunction(target):
            return cast(F, _wrap_async_gen(target, step_name, extra))
        if inspect.isgeneratorfunction(target):
            return cast(F, _wrap_gen(target, step_name, extra))
        return cast(F, span(SpanKind.STEP, step_name, **extra)(target))

    if func is None:
        return decorate
    return decorate(func)


def _open_step(
    collector: SpanCollector, step_name: str, extra: dict[str, Any]
) -> _SpanSlots | None:
    """Open a generator's step span with its metadata (None when tracing is off).

    A child of the caller's span, not pushed (see the module docstring): the
    wrappers bind it to the chain only while the generator's own code runs.
    """
    if not collector.enabled:
        return None
    live = collector._open_span(SpanKind.STEP, step_name, None, False, push=False)
    for key, value in extra.items():
        collector.set_metadata(live._span_id, key, value)
    return live


def _end_step(
    collector: SpanCollector, live: _SpanSlots | None, outcome: BaseException | None
) -> None:
    """Record how the generator ended and end its span (if one was opened)."""
    if live is not None:
        record_outcome(collector, live._span_id, outcome)
        collector.end(live._span_id)


def _wrap_async_gen(
    func: Callable[..., AsyncGenerator[Any, Any]], step_name: str, extra: dict[str, Any]
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        collector = current_collector()
        agen = func(*args, **kwargs)
        live = _open_step(collector, step_name, extra)
        chain = collector._chain
        outcome: BaseException | None = None
        send: Any = None
        throw: BaseException | None = None
        # Drive agen by hand (not `async for`) so values sent and exceptions
        # thrown into the wrapper reach it, each step with the span bound.
        try:
            while True:
                token = None if live is None else chain.set(live)
                try:
                    if throw is not None:
                        exc, throw = throw, None
                        item = await agen.athrow(exc)
                    else:
                        item = await agen.asend(send)
                except StopAsyncIteration:
                    return
                finally:
                    if token is not None:
                        chain.reset(token)
                try:
                    send = yield item
                except GeneratorExit:
                    raise
                except BaseException as exc:
                    throw = exc
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            token = None if live is None else chain.set(live)
            try:
                await agen.aclose()  # a no-op once it is exhausted
            finally:
                if token is not None:
                    chain.reset(token)
                _end_step(collector, live, outcome)

    return wrapper


def _wrap_gen(
    func: Callable[..., Generator[Any, Any, Any]], step_name: str, extra: dict[str, Any]
) -> Callable[..., Generator[Any, Any, Any]]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        collector = current_collector()
        gen = func(*args, **kwargs)
        live = _open_step(collector, step_name, extra)
        chain = collector._chain
        outcome: BaseException | None = None
        send: Any = None
        throw: BaseException | None = None
        try:
            while True:
                token = None if live is None else chain.set(live)
                try:
                    if throw is not None:
                        exc, throw = throw, None
                        item = gen.throw(exc)
                    else:
                        item = gen.send(send)
                except StopIteration as stop:
                    return stop.value
                finally:
                    if token is not None:
                        chain.reset(token)
                try:
                    send = yield item
                except GeneratorExit:
                    raise
                except BaseException as exc:
                    throw = exc
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            token = None if live is None else chain.set(live)
            try:
                gen.close()
            finally:
                if token is not None:
                    chain.reset(token)
                _end_step(collector, live, outcome)

    return wrapper
