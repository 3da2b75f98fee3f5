"""Methods of lists, strings, dicts and sets (`xs.map(f)`, `s.split(",")`...).

Lists are values: `push` and friends return a new list. Methods that take a
callback are async because the callback is Harn code run by the VM.
"""

from __future__ import annotations

from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import HarnSet, sorted_keys, to_display
from vm_demo.operators import compare, contains, equal
from vm_demo.registry import arity, method, want

__all__ = ("no_such_method",)

L = (list,)
S = (str,)
D = (dict,)
LS = (list, str)

# -- shared: list and string -----------------------------------------------------------


@method((list, str, dict, HarnSet), "len", "count")
def _len(vm: Any, obj: Any, args: list[Any]) -> int:
    return len(obj)


@method((list, str, dict), "is_empty", "empty")
def _is_empty(vm: Any, obj: Any, args: list[Any]) -> bool:
    return len(obj) == 0


@method((list, str, HarnSet), "contains")
def _contains(vm: Any, obj: Any, args: list[Any]) -> bool:
    arity("contains", args, 1)
    return contains(obj, args[0])


@method(LS, "index_of")
def _index_of(vm: Any, obj: Any, args: list[Any]) -> int:
    arity("index_of", args, 1)
    if isinstance(obj, str):
        return obj.find(want("index_of", args[0], str))
    for i, x in enumerate(obj):
        if equal(x, args[0]):
            return i
    return -1


@method(LS, "reverse", "reversed")
def _reverse(vm: Any, obj: Any, args: list[Any]) -> Any:
    return obj[::-1]


@method(LS, "slice")
def _slice(vm: Any, obj: Any, args: list[Any]) -> Any:
    arity("slice", args, 1, 2)
    return obj[args[0] : args[1] if len(args) > 1 else None]


# -- lists -----------------------------------------------------------------------------


@method(L, "push", "append")
def _push(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    arity("push", args, 1)
    return [*obj, args[0]]


@method(L, "first")
def _first(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    return obj[0] if obj else None


@method(L, "last")
def _last(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    return obj[-1] if obj else None


@method(L, "join")
def _join(vm: Any, obj: list[Any], args: list[Any]) -> str:
    arity("join", args, 0, 1)
    sep = want("join", args[0], str) if args else ""
    return sep.join(to_display(x) for x in obj)


@method(L, "concat")
def _concat(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    arity("concat", args, 1)
    other: list[Any] = want("concat", args[0], list)
    return obj + other


@method(L, "take")
def _take(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    arity("take", args, 1)
    return obj[: want("take", args[0], int)]


@method(L, "skip")
def _skip(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    arity("skip", args, 1)
    return obj[want("skip", args[0], int) :]


@method(L, "sum")
def _sum(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    return sum(obj)


@method(L, "min")
def _min(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    return min(obj) if obj else None


@method(L, "max")
def _max(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    return max(obj) if obj else None


@method(L, "unique")
def _unique(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in obj:
        if not any(equal(x, y) for y in out):
            out.append(x)
    return out


@method(L, "enumerate")
def _enumerate(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    return [{"index": i, "value": x} for i, x in enumerate(obj)]


@method(L, "zip")
def _zip(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    arity("zip", args, 1)
    return [[a, b] for a, b in zip(obj, want("zip", args[0], list), strict=False)]


def _sort_key(a: Any, b: Any) -> int:
    if equal(a, b):
        return 0
    return -1 if compare("<", a, b) else 1


@method(L, "sort", "sorted", is_async=True)
async def _sort(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    import functools

    arity("sort", args, 0, 1)
    if not args:
        return sorted(obj, key=functools.cmp_to_key(_sort_key))
    keys = [await vm.call(args[0], [x]) for x in obj]

    def by_key(i: int, j: int) -> int:
        return _sort_key(keys[i], keys[j])

    order = sorted(range(len(obj)), key=functools.cmp_to_key(by_key))
    return [obj[i] for i in order]


@method(L, "sort_by", is_async=True)
async def _sort_by(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    return await _sort(vm, obj, args)


@method(L, "map", is_async=True)
async def _map(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    arity("map", args, 1)
    return [await vm.call(args[0], [x]) for x in obj]


@method(L, "filter", is_async=True)
async def _filter(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    arity("filter", args, 1)
    return [x for x in obj if await vm.call(args[0], [x])]


@method(L, "flat_map", is_async=True)
async def _flat_map(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    arity("flat_map", args, 1)
    out: list[Any] = []
    for x in obj:
        r = await vm.call(args[0], [x])
        out.extend(r if isinstance(r, list) else [r])
    return out


@method(L, "reduce", is_async=True)
async def _reduce(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    arity("reduce", args, 2)
    acc = args[0]
    for x in obj:
        acc = await vm.call(args[1], [acc, x])
    return acc


_NO_MATCH = object()


async def _first_where(vm: Any, obj: list[Any], fn: Any, truth: bool) -> Any:
    """The first item for which `fn(item)` has truth value `truth`, else `_NO_MATCH`.

    Stops at that item: the callback is not run on the rest.
    """
    for x in obj:
        if bool(await vm.call(fn, [x])) is truth:
            return x
    return _NO_MATCH


@method(L, "find", is_async=True)
async def _find(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    arity("find", args, 1)
    x = await _first_where(vm, obj, args[0], True)
    return None if x is _NO_MATCH else x


@method(L, "any", is_async=True)
async def _any(vm: Any, obj: list[Any], args: list[Any]) -> bool:
    arity("any", args, 1)
    return await _first_where(vm, obj, args[0], True) is not _NO_MATCH


@method(L, "all", is_async=True)
async def _all(vm: Any, obj: list[Any], args: list[Any]) -> bool:
    arity("all", args, 1)
    return await _first_where(vm, obj, args[0], False) is _NO_MATCH


@method(L, "for_each", is_async=True)
async def _for_each(vm: Any, obj: list[Any], args: list[Any]) -> None:
    arity("for_each", args, 1)
    for x in obj:
        await vm.call(args[0], [x])


# -- strings ---------------------------------------------------------------------------


def _str_arg(name: str, args: list[Any], n: int = 1) -> list[str]:
    arity(name, args, n)
    return [want(name, a, str) for a in args]


@method(S, "split")
def _split(vm: Any, obj: str, args: list[Any]) -> list[str]:
    (sep,) = _str_arg("split", args)
    return obj.split(sep) if sep else list(obj)


@method(S, "trim")
def _trim(vm: Any, obj: str, args: list[Any]) -> str:
    return obj.strip()


@method(S, "replace")
def _replace(vm: Any, obj: str, args: list[Any]) -> str:
    a, b = _str_arg("replace", args, 2)
    return obj.replace(a, b)


@method(S, "starts_with")
def _starts_with(vm: Any, obj: str, args: list[Any]) -> bool:
    return obj.startswith(_str_arg("starts_with", args)[0])


@method(S, "ends_with")
def _ends_with(vm: Any, obj: str, args: list[Any]) -> bool:
    return obj.endswith(_str_arg("ends_with", args)[0])


@method(S, "uppercase", "upper")
def _upper(vm: Any, obj: str, args: list[Any]) -> str:
    return obj.upper()


@method(S, "lowercase", "lower")
def _lower(vm: Any, obj: str, args: list[Any]) -> str:
    return obj.lower()


@method(S, "substring")
def _substring(vm: Any, obj: str, args: list[Any]) -> str:
    arity("substring", args, 1, 2)
    return obj[want("substring", args[0], int) : args[1] if len(args) > 1 else None]


@method(S, "chars")
def _chars(vm: Any, obj: str, args: list[Any]) -> list[str]:
    return list(obj)


@method(S, "lines")
def _lines(vm: Any, obj: str, args: list[Any]) -> list[str]:
    return obj.splitlines()


@method(S, "repeat")
def _repeat(vm: Any, obj: str, args: list[Any]) -> str:
    arity("repeat", args, 1)
    times: int = want("repeat", args[0], int)
    return obj * times


@method(S, "to_int")
def _s_to_int(vm: Any, obj: str, args: list[Any]) -> int | None:
    try:
        return int(obj.strip())
    except ValueError:
        return None


# -- dicts -------------------------------------------------------------------------------


@method(D, "keys")
def _keys(vm: Any, obj: dict[Any, Any], args: list[Any]) -> list[Any]:
    return sorted_keys(obj)


@method(D, "values")
def _values(vm: Any, obj: dict[Any, Any], args: list[Any]) -> list[Any]:
    return [obj[k] for k in sorted_keys(obj)]


@method(D, "entries")
def _entries(vm: Any, obj: dict[Any, Any], args: list[Any]) -> list[Any]:
    return [{"key": k, "value": obj[k]} for k in sorted_keys(obj)]


@method(D, "has", "contains_key")
def _has(vm: Any, obj: dict[Any, Any], args: list[Any]) -> bool:
    arity("has", args, 1)
    return args[0] in obj


@method(D, "get")
def _get(vm: Any, obj: dict[Any, Any], args: list[Any]) -> Any:
    arity("get", args, 0, 2)
    if not args:
        return None  # Harn: a missing key argument reads as a missing key
    return obj.get(args[0], args[1] if len(args) > 1 else None)


@method(D, "merge")
def _merge(vm: Any, obj: dict[Any, Any], args: list[Any]) -> dict[Any, Any]:
    arity("merge", args, 1)
    return {**obj, **want("merge", args[0], dict)}


@method(D, "set", "with")
def _dset(vm: Any, obj: dict[Any, Any], args: list[Any]) -> dict[Any, Any]:
    arity("set", args, 2)
    return {**obj, args[0]: args[1]}


@method(D, "remove", "without")
def _remove(vm: Any, obj: dict[Any, Any], args: list[Any]) -> dict[Any, Any]:
    arity("remove", args, 1)
    return {k: v for k, v in obj.items() if k != args[0]}


@method(D, "map_values", is_async=True)
async def _map_values(vm: Any, obj: dict[Any, Any], args: list[Any]) -> dict[Any, Any]:
    arity("map_values", args, 1)
    return {k: await vm.call(args[0], [obj[k]]) for k in sorted_keys(obj)}


@method(D, "filter", is_async=True)
async def _dfilter(vm: Any, obj: dict[Any, Any], args: list[Any]) -> dict[Any, Any]:
    arity("filter", args, 1)
    return {k: obj[k] for k in sorted_keys(obj) if await vm.call(args[0], [obj[k]])}


def no_such_method(obj: Any, name: str) -> HarnRuntimeError:
    from vm_demo.objects import type_name

    return HarnRuntimeError(f"{type_name(obj)} has no method '{name}'")
