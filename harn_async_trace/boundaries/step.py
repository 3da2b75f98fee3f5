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
from contextlib import AbstractContextManager, nullcontext
from typing import Any, TypeVar, cast, overload

from .._scoped import record_outcome, span
from ..collector import SpanCollector
from ..context import current_collector
from ..kinds import SpanKind

__all__ = ("step",)

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


class _GeneratorStep:
    """The step span of one generator call: opened unpushed, bound per step.

    A child of the caller's span, not pushed (see the module docstring):
    ``bound()`` binds it to the chain only while the generator's own code
    runs, and ``end()`` records how the generator ended.
    """

    __slots__ = ("collector", "span_id")

    def __init__(self, step_name: str, extra: dict[str, Any]) -> None:
        collector = current_collector()
        self.collector: SpanCollector | None = collector if collector.enabled else None
        self.span_id = (
            0
            if self.collector is None
            else collector.open(SpanKind.STEP, step_name, push=False, metadata=extra)
        )

    def bound(self) -> AbstractContextManager[None]:
        """The span as the chain for one step of the generator's own code."""
        return nullcontext() if self.collector is None else self.collector.bind(self.span_id)

    def end(self, outcome: BaseException | None) -> None:
        if self.collector is not None:
            record_outcome(self.collector, self.span_id, outcome)
            self.collector.close(self.span_id)


def _wrap_async_gen(
    func: Callable[..., AsyncGenerator[Any, Any]], step_name: str, extra: dict[str, Any]
) -> Callable[..., AsyncGenerator[Any, Any]]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        agen = func(*args, **kwargs)
        span = _GeneratorStep(step_name, extra)
        outcome: BaseException | None = None
        send: Any = None
        throw: BaseException | None = None
        # Drive agen by hand (not `async for`) so values sent and exceptions
        # thrown into the wrapper reach it, each step with the span bound.
        try:
            while True:
                try:
                    with span.bound():
                        if throw is not None:
                            exc, throw = throw, None
                            item = await agen.athrow(exc)
                        else:
                            item = await agen.asend(send)
                except StopAsyncIteration:
                    return
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
            try:
                with span.bound():
                    await agen.aclose()  # a no-op once it is exhausted
            finally:
                span.end(outcome)

    return wrapper


def _wrap_gen(
    func: Callable[..., Generator[Any, Any, Any]], step_name: str, extra: dict[str, Any]
) -> Callable[..., Generator[Any, Any, Any]]:
    # What _wrap_async_gen drives by hand, ``yield from`` does for a sync
    # generator (sends, throws, the return value): only the binding is ours.
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        gen = func(*args, **kwargs)
        span = _GeneratorStep(step_name, extra)
        outcome: BaseException | None = None
        try:
            return (yield from _BoundSteps(gen, span))
        except BaseException as exc:
            outcome = exc
            raise
        finally:
            try:
                with span.bound():
                    gen.close()
            finally:
                span.end(outcome)

    return wrapper


class _BoundSteps:
    """A generator whose every resumption runs with its step span bound.

    It has no ``close()``, so ``yield from`` does not close the generator
    when the wrapper is closed: the wrapper's ``finally`` does, once, as the
    async driver does.
    """

    __slots__ = ("_gen", "_span")

    def __init__(self, gen: Generator[Any, Any, Any], span: _GeneratorStep) -> None:
        self._gen = gen
        self._span = span

    def __iter__(self) -> _BoundSteps:
        return self

    def __next__(self) -> Any:
        with self._span.bound():
            return self._gen.send(None)

    def send(self, value: Any) -> Any:
        with self._span.bound():
            return self._gen.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        # yield from passes throw()'s arguments on as the caller gave them.
        with self._span.bound():
            if val is None and tb is None:
                return self._gen.throw(typ)
            return self._gen.throw(typ, val, tb)
