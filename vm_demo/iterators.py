"""Lazy iteration: generators (`fn` bodies with `yield`), `Iter` values, and the
async pull protocol that `for` loops use for sources that may suspend.

A list, dict, string or set iterates with a plain Python iterator (the fast
path of FOR_ITER). Channels, generators and `Iter`s may have to run Harn
code or wait, so GET_ITER wraps them in an `AsyncIter` whose `pull()` is
awaited; it returns `END` when the source is exhausted.

A generator's frame is kept between pulls. Each pull runs it until the next
`yield` inside its own `fn_call` span, opened under whatever span the
consumer has open, so generator work nests where it is consumed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from vm_demo.errors import HarnRuntimeError, ending_span
from vm_demo.objects import Channel, Closure, HarnSet, sorted_keys, type_name

__all__ = (
    "END",
    "SUSPENDED",
    "AsyncIter",
    "Generator",
    "GeneratorFn",
    "LazyIter",
    "async_iter",
    "lift",
    "snapshot",
)

END = object()  # a pull found the source exhausted
SUSPENDED = object()  # run_frame stopped at a `yield`


class AsyncIter:
    """What GET_ITER pushes for a source that may suspend; `await pull()` -> item or END."""

    __slots__ = ("pull",)

    def __init__(self, pull: Callable[[], Awaitable[Any]]) -> None:
        self.pull = pull


class GeneratorFn(Closure):
    """A `fn` whose body yields: calling it makes a `Generator`, running nothing yet."""

    __slots__ = ()

    def harn_display(self) -> str:
        return f"<fn {self.name}>"

    def harn_type(self) -> str:
        return "closure"

    async def harn_call(self, vm: Any, args: list[Any]) -> Generator:
        return Generator(self.name, vm.make_frame(self, list(args), None))


class Generator:
    """A suspended generator body; `.next()` gives `{value, done}`."""

    __slots__ = ("done", "frame", "name")

    def __init__(self, name: str, frame: Any) -> None:
        self.name = name
        self.frame = frame
        self.done = False

    def harn_display(self) -> str:
        return f"<generator {self.name}>"

    def harn_type(self) -> str:
        return "generator"

    async def resume(self, vm: Any) -> Any:
        """Run to the next `yield` (its value) or to the end (END)."""
        if self.done:
            return END
        sid = vm.generator_span(self.name)
        try:
            with ending_span(sid):
                r = await vm.run_frame(self.frame)
        except BaseException:
            self.done = True
            raise
        if r is SUSPENDED:
            return self.frame.retval
        self.done = True
        return END


class LazyIter:
    """An `Iter<T>`: single-pass and fused; combinators wrap it without running anything."""

    __slots__ = ("done", "source")

    def __init__(self, source: AsyncIterator[Any]) -> None:
        self.source = source
        self.done = False

    def harn_display(self) -> str:
        return "<iter (exhausted)>" if self.done else "<iter>"

    def harn_type(self) -> str:
        return "iter"

    async def pull(self) -> Any:
        if self.done:
            return END
        try:
            return await anext(self.source)
        except StopAsyncIteration:
            self.done = True
            return END


async def _from_items(items: list[Any]) -> AsyncIterator[Any]:
    for x in items:
        yield x


async def _from_channel(ch: Channel) -> AsyncIterator[Any]:
    while True:
        while not ch.ready():
            await ch.changed()
        if not ch.items:
            return
        yield ch.take()


async def _from_generator(vm: Any, gen: Generator) -> AsyncIterator[Any]:
    while True:
        v = await gen.resume(vm)
        if v is END:
            return
        yield v


def snapshot(v: Any, *, pairs: bool) -> list[Any] | None:
    """The items of a plain collection (dict entries as Pairs when `pairs`), else None."""
    from vm_demo.objects_types import Pair

    t = type(v)
    if t is list or t is str:
        return list(v)
    if t is HarnSet:
        return list(v.items)
    if t is dict:
        if pairs:
            return [Pair(k, v[k]) for k in sorted_keys(v)]
        return [{"key": k, "value": v[k]} for k in sorted_keys(v)]
    return None


async def _from_range(r: range) -> AsyncIterator[Any]:
    for x in r:
        yield x


def lift(vm: Any, v: Any) -> LazyIter:
    """`iter(v)` / `v.iter()`: an Iter over any iterable source (no-op on an Iter)."""
    if isinstance(v, LazyIter):
        return v
    if isinstance(v, range):  # no upfront allocation: `(1 to 10_000_000).take(5)` is instant
        return LazyIter(_from_range(v))
    items = snapshot(v, pairs=True)
    if items is not None:
        return LazyIter(_from_items(items))
    if isinstance(v, Channel):
        return LazyIter(_from_channel(v))
    if isinstance(v, Generator):
        return LazyIter(_from_generator(vm, v))
    raise HarnRuntimeError(f"TypeError: cannot iterate over {type_name(v)}")


def async_iter(vm: Any, v: Any) -> AsyncIter:
    """The FOR_ITER source for a channel, generator or Iter."""
    if isinstance(v, LazyIter):
        return AsyncIter(v.pull)
    if isinstance(v, Generator):
        return AsyncIter(lambda: v.resume(vm))
    if isinstance(v, Channel):
        return AsyncIter(lift(vm, v).pull)
    raise HarnRuntimeError(f"TypeError: cannot iterate over {type_name(v)}")
