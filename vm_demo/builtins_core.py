"""Core builtins: output, types, assertions, Results, sets, JSON, math."""

from __future__ import annotations

import json
import math
from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import HarnSet, Result, sorted_keys, to_display, to_json_value, type_name
from vm_demo.operators import equal
from vm_demo.registry import BUILTINS, arity, builtin, want

__all__: tuple[str, ...] = ()

# -- output ----------------------------------------------------------------------------


@builtin("println")
def _println(vm: Any, args: list[Any]) -> None:
    vm.write(" ".join(to_display(a) for a in args) + "\n")


@builtin("print")
def _print(vm: Any, args: list[Any]) -> None:
    vm.write(" ".join(to_display(a) for a in args))


@builtin("log")
def _log(vm: Any, args: list[Any]) -> None:
    vm.write("[harn] " + " ".join(to_display(a) for a in args) + "\n")


# -- types and conversion ---------------------------------------------------------------


@builtin("type_of")
def _type_of(vm: Any, args: list[Any]) -> str:
    arity("type_of", args, 1)
    return type_name(args[0])


@builtin("len")
def _len(vm: Any, args: list[Any]) -> int:
    arity("len", args, 1)
    v = args[0]
    if isinstance(v, list | str | dict | HarnSet):
        return len(v)
    raise HarnRuntimeError(f"len() expected a list, string, dict or set, got {type_name(v)}")


@builtin("to_string", "str")
def _to_string(vm: Any, args: list[Any]) -> str:
    arity("to_string", args, 1)
    return to_display(args[0])


@builtin("to_int", "int")
def _to_int(vm: Any, args: list[Any]) -> int | None:
    arity("to_int", args, 1)
    v = args[0]
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float):
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip())
        except ValueError:
            return None
    raise HarnRuntimeError(f"to_int() cannot convert {type_name(v)}")


@builtin("to_float", "float")
def _to_float(vm: Any, args: list[Any]) -> float | None:
    arity("to_float", args, 1)
    v = args[0]
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.strip())
        except ValueError:
            return None
    raise HarnRuntimeError(f"to_float() cannot convert {type_name(v)}")


@builtin("to_list")
def _to_list(vm: Any, args: list[Any]) -> list[Any]:
    arity("to_list", args, 1)
    v = args[0]
    if isinstance(v, HarnSet):
        return v.items
    if isinstance(v, list | range):
        return list(v)
    if isinstance(v, str):
        return list(v)
    if isinstance(v, dict):
        return [{"key": k, "value": v[k]} for k in sorted_keys(v)]
    raise HarnRuntimeError(f"to_list() cannot convert {type_name(v)}")


@builtin("range")
def _range(vm: Any, args: list[Any]) -> range:
    arity("range", args, 1, 3)
    for a in args:
        want("range", a, int)
    if len(args) == 3 and args[2] == 0:
        raise HarnRuntimeError("range() step must not be zero")
    return range(*args)


# -- assertions ------------------------------------------------------------------------


@builtin("assert")
def _assert(vm: Any, args: list[Any]) -> None:
    arity("assert", args, 1, 2)
    if not args[0]:
        msg = to_display(args[1]) if len(args) > 1 else "assertion failed"
        raise HarnRuntimeError(msg)


@builtin("assert_eq")
def _assert_eq(vm: Any, args: list[Any]) -> None:
    arity("assert_eq", args, 2, 3)
    if not equal(args[0], args[1]):
        msg = f"assertion failed: {to_display(args[0], True)} != {to_display(args[1], True)}"
        if len(args) > 2:
            msg += f": {to_display(args[2])}"
        raise HarnRuntimeError(msg)


@builtin("assert_ne")
def _assert_ne(vm: Any, args: list[Any]) -> None:
    arity("assert_ne", args, 2, 3)
    if equal(args[0], args[1]):
        raise HarnRuntimeError(f"assertion failed: both are {to_display(args[0], True)}")


@builtin("require")
def _require(vm: Any, args: list[Any]) -> None:
    arity("require", args, 1, 2)
    if not args[0]:
        raise HarnRuntimeError(to_display(args[1]) if len(args) > 1 else "requirement failed")


# -- Result ----------------------------------------------------------------------------


@builtin("Ok")
def _ok(vm: Any, args: list[Any]) -> Result:
    arity("Ok", args, 0, 1)
    return Result(True, args[0] if args else None)


@builtin("Err")
def _err(vm: Any, args: list[Any]) -> Result:
    arity("Err", args, 1)
    return Result(False, args[0])


def _result(name: str, v: Any) -> Result:
    if not isinstance(v, Result):
        raise HarnRuntimeError(f"{name}() expected a Result, got {type_name(v)}")
    return v


@builtin("is_ok")
def _is_ok(vm: Any, args: list[Any]) -> bool:
    arity("is_ok", args, 1)
    return _result("is_ok", args[0]).ok


@builtin("is_err")
def _is_err(vm: Any, args: list[Any]) -> bool:
    arity("is_err", args, 1)
    return not _result("is_err", args[0]).ok


@builtin("unwrap")
def _unwrap(vm: Any, args: list[Any]) -> Any:
    arity("unwrap", args, 1)
    if not isinstance(args[0], Result):
        return args[0]  # non-Result values pass through
    r = args[0]
    if not r.ok:
        raise HarnRuntimeError(r.value, f"unwrap() on Err: {to_display(r.value)}")
    return r.value


@builtin("unwrap_err")
def _unwrap_err(vm: Any, args: list[Any]) -> Any:
    arity("unwrap_err", args, 1)
    r = _result("unwrap_err", args[0])
    if r.ok:
        raise HarnRuntimeError(f"unwrap_err() on Ok: {to_display(r.value)}")
    return r.value


@builtin("unwrap_or")
def _unwrap_or(vm: Any, args: list[Any]) -> Any:
    arity("unwrap_or", args, 2)
    r = args[0]
    if not isinstance(r, Result):
        return r  # non-Result values pass through
    return r.value if r.ok else args[1]


# -- strings and JSON -------------------------------------------------------------------


@builtin("json_stringify")
def _json_stringify(vm: Any, args: list[Any]) -> str:
    arity("json_stringify", args, 1)
    return json.dumps(to_json_value(args[0]), separators=(",", ":"), ensure_ascii=False)


@builtin("json_parse")
def _json_parse(vm: Any, args: list[Any]) -> Any:
    arity("json_parse", args, 1)
    try:
        return json.loads(want("json_parse", args[0], str))
    except json.JSONDecodeError as e:
        raise HarnRuntimeError(f"invalid JSON: {e}") from None


@builtin("join")
def _join(vm: Any, args: list[Any]) -> str:
    arity("join", args, 2)
    items = want("join", args[0], list)
    sep: str = want("join", args[1], str)
    return sep.join(to_display(x) for x in items)


@builtin("format")
def _format(vm: Any, args: list[Any]) -> str:
    if not args:
        raise HarnRuntimeError("format() expects a template")
    template = want("format", args[0], str)
    if len(args) == 2 and isinstance(args[1], dict):
        out = template
        for k, v in args[1].items():
            out = out.replace("{" + str(k) + "}", to_display(v))
        return str(out)
    parts = template.split("{}")
    if len(parts) - 1 != len(args) - 1:
        raise HarnRuntimeError(
            f"format(): template has {len(parts) - 1} placeholders, got {len(args) - 1} values"
        )
    out_parts = [parts[0]]
    for v, p in zip(args[1:], parts[1:], strict=True):
        out_parts += [to_display(v), p]
    return "".join(out_parts)


# -- math --------------------------------------------------------------------------------


def _num(name: str, v: Any) -> Any:
    return want(name, v, int, float, what="a number")


@builtin("abs")
def _abs(vm: Any, args: list[Any]) -> Any:
    arity("abs", args, 1)
    return abs(_num("abs", args[0]))


@builtin("min")
def _min(vm: Any, args: list[Any]) -> Any:
    items = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not items:
        return None
    return min(_num("min", x) for x in items)


@builtin("max")
def _max(vm: Any, args: list[Any]) -> Any:
    items = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not items:
        return None
    return max(_num("max", x) for x in items)


@builtin("floor")
def _floor(vm: Any, args: list[Any]) -> int:
    arity("floor", args, 1)
    x: float = _num("floor", args[0])
    return math.floor(x)


@builtin("ceil")
def _ceil(vm: Any, args: list[Any]) -> int:
    arity("ceil", args, 1)
    x: float = _num("ceil", args[0])
    return math.ceil(x)


@builtin("round")
def _round(vm: Any, args: list[Any]) -> Any:
    arity("round", args, 1, 2)
    v = _num("round", args[0])
    if len(args) == 2:
        return round(float(v), want("round", args[1], int))
    return math.floor(v + 0.5) if v >= 0 else -math.floor(-v + 0.5)


@builtin("sqrt")
def _sqrt(vm: Any, args: list[Any]) -> float:
    arity("sqrt", args, 1)
    v = _num("sqrt", args[0])
    if v < 0:
        raise HarnRuntimeError("sqrt() of a negative number")
    return math.sqrt(v)


BUILTINS["pi"] = math.pi
BUILTINS["e"] = math.e
