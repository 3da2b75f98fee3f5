"""Sets: the `set_*` builtins and the same operations as methods (`a.union(b)`).

Sets are values: every operation returns a new set. Members are compared
with Harn equality (`objects.freeze`), so lists and dicts can be members.
"""

from __future__ import annotations

from typing import Any

from vm_demo.objects import HarnSet
from vm_demo.registry import arity, builtin, method, want

__all__ = ("difference", "intersect", "symmetric", "union")


@builtin("set")
def _set(vm: Any, args: list[Any]) -> HarnSet:
    if len(args) == 1 and isinstance(args[0], list):
        return HarnSet(args[0])
    return HarnSet(args)


def _a_set(name: str, v: Any) -> HarnSet:
    return want(name, v, HarnSet, what="a set")


def _other(v: Any) -> HarnSet:
    return v if isinstance(v, HarnSet) else HarnSet(v if isinstance(v, list) else [v])


def union(a: HarnSet, b: HarnSet) -> HarnSet:
    return HarnSet([*a.items, *b.items])


def intersect(a: HarnSet, b: HarnSet) -> HarnSet:
    return HarnSet(x for x in a.items if b.has(x))


def difference(a: HarnSet, b: HarnSet) -> HarnSet:
    return HarnSet(x for x in a.items if not b.has(x))


def symmetric(a: HarnSet, b: HarnSet) -> HarnSet:
    return HarnSet([*difference(a, b).items, *difference(b, a).items])


_BINARY = {
    "union": union,
    "intersect": intersect,
    "intersection": intersect,
    "difference": difference,
    "symmetric_difference": symmetric,
    "is_subset": lambda a, b: all(b.has(x) for x in a.items),
    "is_superset": lambda a, b: all(a.has(x) for x in b.items),
    "is_disjoint": lambda a, b: not any(b.has(x) for x in a.items),
}


def _register(name: str, op: Any) -> None:
    def fn(vm: Any, args: list[Any]) -> Any:
        arity(f"set_{name}", args, 2)
        return op(_a_set(f"set_{name}", args[0]), _other(args[1]))

    def meth(vm: Any, obj: HarnSet, args: list[Any]) -> Any:
        arity(name, args, 1)
        return op(obj, _other(args[0]))

    builtin(f"set_{name}")(fn)
    method((HarnSet,), name)(meth)


for _name, _op in _BINARY.items():
    _register(_name, _op)


@builtin("set_contains")
def _set_contains(vm: Any, args: list[Any]) -> bool:
    arity("set_contains", args, 2)
    return _a_set("set_contains", args[0]).has(args[1])


@builtin("set_add")
def _set_add(vm: Any, args: list[Any]) -> HarnSet:
    arity("set_add", args, 2)
    return HarnSet([*_a_set("set_add", args[0]).items, args[1]])


@builtin("set_remove")
def _set_remove(vm: Any, args: list[Any]) -> HarnSet:
    arity("set_remove", args, 2)
    gone = HarnSet([args[1]])
    return difference(_a_set("set_remove", args[0]), gone)


@method((HarnSet,), "add")
def _m_add(vm: Any, obj: HarnSet, args: list[Any]) -> HarnSet:
    arity("add", args, 1)
    return HarnSet([*obj.items, args[0]])


@method((HarnSet,), "remove")
def _m_remove(vm: Any, obj: HarnSet, args: list[Any]) -> HarnSet:
    arity("remove", args, 1)
    return difference(obj, HarnSet([args[0]]))


@method((HarnSet,), "to_list")
def _m_to_list(vm: Any, obj: HarnSet, args: list[Any]) -> list[Any]:
    return obj.items


@method((HarnSet,), "empty", "is_empty")
def _m_empty(vm: Any, obj: HarnSet, args: list[Any]) -> bool:
    return len(obj) == 0


@method((HarnSet,), "map", is_async=True)
async def _m_map(vm: Any, obj: HarnSet, args: list[Any]) -> HarnSet:
    arity("map", args, 1)
    return HarnSet([await vm.call(args[0], [x]) for x in obj.items])


@method((HarnSet,), "filter", is_async=True)
async def _m_filter(vm: Any, obj: HarnSet, args: list[Any]) -> HarnSet:
    arity("filter", args, 1)
    return HarnSet([x for x in obj.items if await vm.call(args[0], [x])])


@method((HarnSet,), "any", is_async=True)
async def _m_any(vm: Any, obj: HarnSet, args: list[Any]) -> bool:
    arity("any", args, 1)
    for x in obj.items:
        if await vm.call(args[0], [x]):
            return True
    return False


@method((HarnSet,), "all", "every", is_async=True)
async def _m_all(vm: Any, obj: HarnSet, args: list[Any]) -> bool:
    arity("all", args, 1)
    for x in obj.items:
        if not await vm.call(args[0], [x]):
            return False
    return True
