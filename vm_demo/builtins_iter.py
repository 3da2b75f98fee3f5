"""The lazy iterator protocol: `iter(x)`, `pair(a, b)`, and the methods of `Iter`
values (combinators that return a new `Iter`, sinks that drain it) and of
generators (`.next()`).

Combinators are Python async generators chained on the source, so nothing
runs until a sink or a `for` loop pulls; callbacks are Harn code run by the
VM in the consumer's task (their spans nest under the consumer's span).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.iterators import END, Generator, LazyIter, lift
from vm_demo.objects import Channel, HarnSet
from vm_demo.objects_types import Pair
from vm_demo.operators import add, compare
from vm_demo.registry import arity, builtin, method, want

__all__ = ("adopt_list_methods", "drain")

_SOURCES = (list, dict, str, HarnSet, Channel, Generator, LazyIter, range)
# Ranges are lazy too: a combinator on `a to b` allocates nothing.
_LAZY = (LazyIter, Generator, range)


@builtin("iter")
def _iter(vm: Any, args: list[Any]) -> LazyIter:
    arity("iter", args, 1)
    return lift(vm, args[0])


@builtin("pair")
def _pair(vm: Any, args: list[Any]) -> Pair:
    arity("pair", args, 2)
    return Pair(args[0], args[1])


@method(_SOURCES, "iter")
def _m_iter(vm: Any, obj: Any, args: list[Any]) -> LazyIter:
    return lift(vm, obj)


@method((Generator,), "next", is_async=True)
async def _gen_next(vm: Any, obj: Generator, args: list[Any]) -> dict[str, Any]:
    v = await obj.resume(vm)
    return {"value": None, "done": True} if v is END else {"value": v, "done": False}


@method((LazyIter,), "next", is_async=True)
async def _iter_next(vm: Any, obj: LazyIter, args: list[Any]) -> dict[str, Any]:
    v = await obj.pull()
    return {"value": None, "done": True} if v is END else {"value": v, "done": False}


# -- combinators -------------------------------------------------------------------------


_Make = Callable[[Any, LazyIter, list[Any]], AsyncIterator[Any]]
_Sink = Callable[[Any, LazyIter, list[Any]], Awaitable[Any]]


def _combinator(name: str, nargs: int = 1) -> Callable[[_Make], _Make]:
    """Register `fn(vm, source_iter, args) -> async generator` as a lazy method."""

    def deco(make: _Make) -> _Make:
        def meth(vm: Any, obj: Any, args: list[Any]) -> LazyIter:
            arity(name, args, nargs)
            return LazyIter(make(vm, lift(vm, obj), args))

        method(_LAZY, name)(meth)
        return make

    return deco


@_combinator("map")
async def _map(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    while (x := await it.pull()) is not END:
        yield await vm.call(args[0], [x])


@_combinator("filter")
async def _filter(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    while (x := await it.pull()) is not END:
        if await vm.call(args[0], [x]):
            yield x


@_combinator("flat_map")
async def _flat_map(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    while (x := await it.pull()) is not END:
        inner = await vm.call(args[0], [x])
        sub = lift(vm, inner if isinstance(inner, _SOURCES) else [inner])
        while (y := await sub.pull()) is not END:
            yield y


@_combinator("take")
async def _take(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    n = want("take", args[0], int)
    for _ in range(n):
        x = await it.pull()
        if x is END:
            return
        yield x


@_combinator("skip")
async def _skip(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    for _ in range(want("skip", args[0], int)):
        if await it.pull() is END:
            return
    while (x := await it.pull()) is not END:
        yield x


@_combinator("take_while")
async def _take_while(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    while (x := await it.pull()) is not END:
        if not await vm.call(args[0], [x]):
            return
        yield x


@_combinator("skip_while")
async def _skip_while(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    while (x := await it.pull()) is not END:
        if not await vm.call(args[0], [x]):
            yield x
            break
    while (x := await it.pull()) is not END:
        yield x


@_combinator("zip")
async def _zip(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    other = lift(vm, args[0])
    while (x := await it.pull()) is not END:
        y = await other.pull()
        if y is END:
            return
        yield Pair(x, y)


@_combinator("enumerate", 0)
async def _enumerate(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    i = 0
    while (x := await it.pull()) is not END:
        yield Pair(i, x)
        i += 1


@_combinator("chain")
async def _chain(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    while (x := await it.pull()) is not END:
        yield x
    other = lift(vm, args[0])
    while (x := await other.pull()) is not END:
        yield x


def _size(name: str, v: Any) -> int:
    n: int = want(name, v, int)
    if n <= 0:
        raise HarnRuntimeError(f"{name}() needs a size of at least 1, got {n}")
    return n


@_combinator("chunks")
async def _chunks(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    n = _size("chunks", args[0])
    buf: list[Any] = []
    while (x := await it.pull()) is not END:
        buf.append(x)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf


@_combinator("windows")
async def _windows(vm: Any, it: LazyIter, args: list[Any]) -> AsyncIterator[Any]:
    n = _size("windows", args[0])
    buf: list[Any] = []
    while (x := await it.pull()) is not END:
        buf = [*buf, x][-n:]
        if len(buf) == n:
            yield list(buf)


# -- sinks -----------------------------------------------------------------------------------


def _sink(*names: str) -> Callable[[_Sink], _Sink]:
    """Register `fn(vm, source_iter, args) -> value` as a draining method."""

    def deco(fn: _Sink) -> _Sink:
        async def meth(vm: Any, obj: Any, args: list[Any]) -> Any:
            return await fn(vm, lift(vm, obj), args)

        method(_LAZY, *names, is_async=True)(meth)
        return fn

    return deco


async def drain(it: LazyIter) -> list[Any]:
    out: list[Any] = []
    while (x := await it.pull()) is not END:
        out.append(x)
    return out


@_sink("to_list")
async def _to_list(vm: Any, it: LazyIter, args: list[Any]) -> list[Any]:
    return await drain(it)


@_sink("to_set")
async def _to_set(vm: Any, it: LazyIter, args: list[Any]) -> HarnSet:
    return HarnSet(await drain(it))


@_sink("to_dict")
async def _to_dict(vm: Any, it: LazyIter, args: list[Any]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for p in await drain(it):
        if not isinstance(p, Pair):
            raise HarnRuntimeError(
                "to_dict() needs an iter of pairs (from .iter() on a dict, .zip or pair())"
            )
        out[p.first] = p.second
    return out


@_sink("count")
async def _count(vm: Any, it: LazyIter, args: list[Any]) -> int:
    return len(await drain(it))


@_sink("sum")
async def _sum(vm: Any, it: LazyIter, args: list[Any]) -> Any:
    total: Any = 0
    for x in await drain(it):
        total = add(total, x)
    return total


async def _extreme(it: LazyIter, op: str) -> Any:
    best: Any = None
    first = True
    for x in await drain(it):
        if first or compare(op, x, best):
            best, first = x, False
    return best


@_sink("min")
async def _min(vm: Any, it: LazyIter, args: list[Any]) -> Any:
    return await _extreme(it, "<")


@_sink("max")
async def _max(vm: Any, it: LazyIter, args: list[Any]) -> Any:
    return await _extreme(it, ">")


@_sink("reduce")
async def _reduce(vm: Any, it: LazyIter, args: list[Any]) -> Any:
    arity("reduce", args, 2)
    acc = args[0]
    while (x := await it.pull()) is not END:
        acc = await vm.call(args[1], [acc, x])
    return acc


@_sink("first")
async def _first(vm: Any, it: LazyIter, args: list[Any]) -> Any:
    x = await it.pull()
    return None if x is END else x


@_sink("last")
async def _last(vm: Any, it: LazyIter, args: list[Any]) -> Any:
    items = await drain(it)
    return items[-1] if items else None


@_sink("any")
async def _any(vm: Any, it: LazyIter, args: list[Any]) -> bool:
    arity("any", args, 1)
    while (x := await it.pull()) is not END:
        if await vm.call(args[0], [x]):
            return True
    return False


@_sink("all")
async def _all(vm: Any, it: LazyIter, args: list[Any]) -> bool:
    arity("all", args, 1)
    while (x := await it.pull()) is not END:
        if not await vm.call(args[0], [x]):
            return False
    return True


@_sink("find")
async def _find(vm: Any, it: LazyIter, args: list[Any]) -> Any:
    arity("find", args, 1)
    while (x := await it.pull()) is not END:
        if await vm.call(args[0], [x]):
            return x
    return None


@_sink("for_each")
async def _for_each(vm: Any, it: LazyIter, args: list[Any]) -> None:
    arity("for_each", args, 1)
    while (x := await it.pull()) is not END:
        await vm.call(args[0], [x])


@method((range,), "len", "count")
def _range_len(vm: Any, obj: range, args: list[Any]) -> int:
    return len(obj)


@method((range,), "contains")
def _range_contains(vm: Any, obj: range, args: list[Any]) -> bool:
    arity("contains", args, 1)
    return type(args[0]) is int and args[0] in obj


def adopt_list_methods() -> None:
    """Give ranges every list method they lack (on the range's items as a list).

    Called once all builtins modules are loaded.
    """
    from vm_demo.registry import METHODS

    own = METHODS.setdefault(range, {})
    for name, (fn, is_async) in METHODS.get(list, {}).items():
        if name in own:
            continue
        if is_async:

            async def call_async(vm: Any, obj: range, args: list[Any], fn: Any = fn) -> Any:
                return await fn(vm, list(obj), args)

            own[name] = (call_async, True)
        else:

            def call(vm: Any, obj: range, args: list[Any], fn: Any = fn) -> Any:
                return fn(vm, list(obj), args)

            own[name] = (call, False)
