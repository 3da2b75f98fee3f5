"""Registries of builtin functions and methods, filled by the builtins modules.

A builtin is `fn(vm, args) -> value` (or a coroutine when `is_async`); a
method is `fn(vm, receiver, args)`. Registration happens at import time of
`builtins_core`, `builtins_concurrency`, `builtins_tracing` and `llm`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import Builtin, to_display, type_name

__all__ = ("BUILTINS", "METHODS", "arity", "builtin", "method", "want")

BUILTINS: dict[str, Any] = {}
METHODS: dict[type, dict[str, tuple[Callable[..., Any], bool]]] = {}

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def builtin(*names: str, is_async: bool = False) -> Callable[[F], F]:
    """Register `fn(vm, args)` under each of `names`."""

    def deco(fn: F) -> F:
        for name in names:
            BUILTINS[name] = Builtin(name, fn, is_async)
        return fn

    return deco


def method(types: tuple[type, ...], *names: str, is_async: bool = False) -> Callable[[F], F]:
    """Register `fn(vm, receiver, args)` as a method of each type in `types`."""

    def deco(fn: F) -> F:
        for t in types:
            table = METHODS.setdefault(t, {})
            for name in names:
                table[name] = (fn, is_async)
        return fn

    return deco


def arity(name: str, args: list[Any], lo: int, hi: int | None = None) -> None:
    """Raise a clear error unless `lo <= len(args) <= hi` (hi defaults to lo)."""
    hi = lo if hi is None else hi
    if not lo <= len(args) <= hi:
        want = str(lo) if lo == hi else f"{lo} to {hi}"
        raise HarnRuntimeError(f"{name}() expects {want} argument(s), got {len(args)}")


@overload
def want(name: str, value: Any, kind: type[T], /, *, what: str = "") -> T: ...
@overload
def want(name: str, value: Any, *types: type, what: str = "") -> Any: ...
def want(name: str, value: Any, *types: type, what: str = "") -> Any:
    """Check a builtin argument's type; `bool` never passes as `int`.

    A range passes as a list (and comes back as one).
    """
    if type(value) is range and list in types:
        return list(value)
    if type(value) is bool and bool not in types:
        ok = False
    else:
        ok = isinstance(value, types)
    if not ok:
        desc = what or " or ".join(t.__name__ for t in types)
        raise HarnRuntimeError(
            f"{name}() expected {desc}, got {type_name(value)} ({to_display(value, True)})"
        )
    return value
