"""Handlers of the opcodes added for the wider language: `**`, generators,
parameter defaults and checks, spreads, `match`, `?`, typed catch and the
pair/dict destructuring of `for` heads and `let` patterns.

Same signature as `handlers.py`; `handlers.TABLE` merges `EXT_HANDLERS`.
None of these run per instruction of ordinary code: they are emitted only
where a program uses the construct.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vm_demo import operators as ops
from vm_demo.bytecode import Op
from vm_demo.errors import HarnRuntimeError
from vm_demo.frame import Frame
from vm_demo.iterators import SUSPENDED
from vm_demo.matching import catches, match_pattern, shape_problem, value_has_type
from vm_demo.objects import Cell, Result, to_display, type_name
from vm_demo.objects_types import Pair, StructInstance

if TYPE_CHECKING:
    from vm_demo.vm import VMBase

__all__ = (
    "EXT_HANDLERS",
    "UNSET",
    "op_arg_set",
    "op_build_dict_spread",
    "op_build_list_spread",
    "op_check_args",
    "op_check_catch",
    "op_match",
    "op_no_match",
    "op_pow",
    "op_unpack_dict",
    "op_unpack_pair",
    "op_unwrap",
    "op_yield",
)

UNSET = object()  # a defaulted parameter the caller did not pass


def op_pow(vm: VMBase, f: Frame, arg: Any) -> None:
    s = f.stack
    b = s.pop()
    s[-1] = ops.power(s[-1], b)


def op_yield(vm: VMBase, f: Frame, arg: Any) -> Any:
    f.retval = f.stack.pop()
    return SUSPENDED


def op_arg_set(vm: VMBase, f: Frame, arg: tuple[int, int]) -> None:
    slot, target = arg
    v = f.slots[slot]
    if v.__class__ is Cell:
        v = v.value
    if v is not UNSET:
        f.pc = target


def op_check_args(vm: VMBase, f: Frame, arg: tuple[Any, bool]) -> None:
    checks, cells = arg
    for slot, name, types in checks:
        v = f.slots[slot].value if cells else f.slots[slot]
        if types[0].__class__ is tuple:  # a shape: ("shape", fields)
            problem = shape_problem(v, types[0][1])
            if problem:
                raise HarnRuntimeError(f"parameter '{name}': {problem}")
            continue
        if not any(value_has_type(v, t) for t in types):
            raise HarnRuntimeError(
                f"TypeError: parameter '{name}' expected {' | '.join(types)}, "
                f"got {type_name(v)} ({to_display(v)})"
            )


def op_build_list_spread(vm: VMBase, f: Frame, flags: tuple[bool, ...]) -> None:
    s = f.stack
    n = len(flags)
    parts = s[len(s) - n :] if n else []
    if n:
        del s[-n:]
    out: list[Any] = []
    for part, spread in zip(parts, flags, strict=True):
        if not spread:
            out.append(part)
        elif part.__class__ is list or part.__class__ is range:
            out.extend(part)
        elif part is not None:
            raise HarnRuntimeError(f"TypeError: cannot spread {type_name(part)} (only a list)")
    s.append(out)


def op_build_dict_spread(vm: VMBase, f: Frame, flags: tuple[bool, ...]) -> None:
    s = f.stack
    width = sum(1 if spread else 2 for spread in flags)
    parts = s[len(s) - width :] if width else []
    if width:
        del s[-width:]
    out: dict[Any, Any] = {}
    i = 0
    for spread in flags:
        if spread:
            d = parts[i]
            if isinstance(d, StructInstance):
                d = d.fields
            if d.__class__ is not dict:
                if d is not None:
                    raise HarnRuntimeError(f"TypeError: cannot spread {type_name(d)} into a dict")
            else:
                out.update(d)
            i += 1
        else:
            out[parts[i]] = parts[i + 1]
            i += 2
    s.append(out)


def op_match(vm: VMBase, f: Frame, arg: tuple[Any, int]) -> None:
    desc, fail = arg
    bound: list[Any] = []
    if match_pattern(desc, f.stack.pop(), bound):
        f.stack.extend(reversed(bound))
    else:
        f.pc = fail


def op_no_match(vm: VMBase, f: Frame, arg: Any) -> None:
    v = f.stack.pop()
    raise HarnRuntimeError(f"no matching arm in match expression (value: {to_display(v)})")


def op_unwrap(vm: VMBase, f: Frame, target: int) -> None:
    r = f.stack[-1]
    if r.__class__ is not Result:
        raise HarnRuntimeError(f"TypeError: '?' needs a Result, got {type_name(r)}")
    if r.ok:
        f.stack[-1] = r.value
        f.pc = target


def op_check_catch(vm: VMBase, f: Frame, types: tuple[str, ...]) -> None:
    exc = f.exc
    if exc is None or exc.value is not f.stack[-1]:
        return
    if not catches(exc, types):
        f.stack.pop()
        raise exc


def op_unpack_pair(vm: VMBase, f: Frame, count: int) -> None:
    v = f.stack.pop()
    if v.__class__ is Pair:
        items = [v.first, v.second]
    elif v.__class__ is list:
        items = list(v)
    else:
        raise HarnRuntimeError(
            f"cannot destructure {type_name(v)} as a pair (needs a Pair or a list)"
        )
    items = [items[i] if i < len(items) else None for i in range(count)]
    f.stack.extend(reversed(items))


def op_unpack_dict(vm: VMBase, f: Frame, rest_without: tuple[str, ...] | None) -> None:
    v = f.stack[-1]
    if isinstance(v, StructInstance):
        v = v.fields
    if v.__class__ is not dict:
        raise HarnRuntimeError(
            f"dict destructuring requires a dict value, got {type_name(f.stack[-1])}"
        )
    if rest_without is not None:
        f.stack[-1] = {k: x for k, x in v.items() if k not in rest_without}


EXT_HANDLERS: dict[Op, Callable[..., Any]] = {
    Op.POW: op_pow,
    Op.YIELD: op_yield,
    Op.ARG_SET: op_arg_set,
    Op.CHECK_ARGS: op_check_args,
    Op.BUILD_LIST_SPREAD: op_build_list_spread,
    Op.BUILD_DICT_SPREAD: op_build_dict_spread,
    Op.MATCH: op_match,
    Op.NO_MATCH: op_no_match,
    Op.UNWRAP: op_unwrap,
    Op.CHECK_CATCH: op_check_catch,
    Op.UNPACK_PAIR: op_unpack_pair,
    Op.UNPACK_DICT: op_unpack_dict,
}
