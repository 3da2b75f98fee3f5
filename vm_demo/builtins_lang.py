"""Builtins behind language forms and the type system: `impl` blocks, the
`Result` namespace (`Result.Ok(1)`), `unreachable`, and the free-function
forms of the string helpers (`split(s, ",")`, `contains(xs, x)`...).
"""

from __future__ import annotations

from typing import Any

from vm_demo import builtins_methods  # noqa: F401  (the methods re-exposed below)
from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import Result, to_display
from vm_demo.objects_types import impl
from vm_demo.operators import contains
from vm_demo.registry import BUILTINS, METHODS, arity, builtin, want

__all__ = ("register_string_functions",)


@builtin("__impl")
def _impl(vm: Any, args: list[Any]) -> None:
    impl(args[0], args[1])


class _ResultNamespace:
    """The `Result` name: `Result.Ok(v)` and `Result.Err(e)` build Results."""

    def harn_display(self) -> str:
        return "<enum Result>"

    def harn_type(self) -> str:
        return "enum"

    def harn_attr(self, name: str) -> Any:
        if name in ("Ok", "Err"):
            return BUILTINS[name]
        raise HarnRuntimeError(f"enum Result has no variant '{name}'")

    def harn_method(self, name: str) -> Any:
        if name not in ("Ok", "Err"):
            return None

        async def make(vm: Any, obj: Any, args: list[Any]) -> Result:
            arity(f"Result.{name}", args, 1)
            return Result(name == "Ok", args[0])

        return make


BUILTINS["Result"] = _ResultNamespace()


@builtin("unreachable")
def _unreachable(vm: Any, args: list[Any]) -> None:
    arity("unreachable", args, 0, 1)
    detail = f": {to_display(args[0])}" if args else ""
    raise HarnRuntimeError(f"unreachable code was reached{detail}")


# -- free-function forms of string helpers --------------------------------------------------


def _as_function(name: str, receiver: type, *aliases: str) -> None:
    """Expose the method `name` of `receiver` values as `name(value, ...)`."""
    fn, is_async = METHODS[receiver][name]
    if is_async:

        async def call_async(vm: Any, args: list[Any]) -> Any:
            if not args:
                raise HarnRuntimeError(f"{name}() expects a {receiver.__name__} first")
            return await fn(vm, args[0], args[1:])

        builtin(name, *aliases, is_async=True)(call_async)
        return

    def call(vm: Any, args: list[Any]) -> Any:
        if not args:
            raise HarnRuntimeError(f"{name}() expects a value first")
        want(name, args[0], receiver)
        return fn(vm, args[0], args[1:])

    builtin(name, *aliases)(call)


@builtin("contains")
def _contains(vm: Any, args: list[Any]) -> bool:
    arity("contains", args, 2)
    return contains(args[0], args[1])


@builtin("substring")
def _substring(vm: Any, args: list[Any]) -> str:
    """`substring(s, start, len?)`: note the free form takes a length, the method an end."""
    arity("substring", args, 2, 3)
    s: str = want("substring", args[0], str)
    start: int = want("substring", args[1], int)
    if len(args) == 3:
        return s[start : start + want("substring", args[2], int)]
    return s[start:]


def register_string_functions() -> None:
    for name in ("split", "replace", "trim", "starts_with", "ends_with", "lowercase", "uppercase"):
        _as_function(name, str)


register_string_functions()
