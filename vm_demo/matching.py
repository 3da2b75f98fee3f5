"""Runtime checks behind `match` patterns, typed `catch`, and parameter annotations.

Structural patterns come from `compiler_ext.pattern_desc` as tuples:
`("any",)`, `("bind", name)`, `("eq", value)`, `("variant", qualifier,
name, subpatterns | None)`, `("list", subpatterns, rest)`, `("dict",
[(key, subpattern)])`. `match_pattern` appends what a pattern binds to
`out` in `bound_names` order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import Builtin, Closure, Duration, HarnSet, Result, type_name
from vm_demo.objects_types import EnumValue, StructInstance
from vm_demo.operators import equal

__all__ = ("catches", "match_pattern", "shape_problem", "value_has_type")


def match_pattern(desc: tuple[Any, ...], v: Any, out: list[Any]) -> bool:
    kind = desc[0]
    if kind == "any":
        return True
    if kind == "bind":
        out.append(v)
        return True
    if kind == "eq":
        return equal(v, desc[1])
    if kind == "variant":
        return _match_variant(desc, v, out)
    if kind == "list":
        subs, rest = desc[1], desc[2]
        if v.__class__ is not list or len(v) < len(subs) or (rest is None and len(v) != len(subs)):
            return False
        if not all(match_pattern(s, x, out) for s, x in zip(subs, v, strict=False)):
            return False
        if rest is not None:
            out.append(list(v[len(subs) :]))
        return True
    if kind == "dict":
        fields = v.fields if isinstance(v, StructInstance) else v
        if fields.__class__ is not dict:
            return False
        return all(k in fields and match_pattern(s, fields[k], out) for k, s in desc[1])
    raise HarnRuntimeError(f"internal: unknown pattern {kind!r}")


def _match_variant(desc: tuple[Any, ...], v: Any, out: list[Any]) -> bool:
    _, qualifier, name, subs = desc
    if v.__class__ is Result:
        if qualifier != "Result" or name != ("Ok" if v.ok else "Err"):
            return False
        fields = [v.value]
    elif isinstance(v, EnumValue):
        if v.enum_name != qualifier or v.variant != name:
            return False
        fields = v.fields
    else:
        return False
    if subs is None:
        return True
    if len(subs) != len(fields):
        return False
    return all(match_pattern(s, x, out) for s, x in zip(subs, fields, strict=True))


_PRIMITIVE: dict[str, Callable[[Any], bool]] = {
    "int": lambda v: type(v) in (int, float, Duration),
    "float": lambda v: type(v) in (int, float, Duration),
    "string": lambda v: type(v) is str,
    "bool": lambda v: type(v) is bool,
    "list": lambda v: type(v) is list,
    "dict": lambda v: type(v) is dict,
    "set": lambda v: type(v) is HarnSet,
    "nil": lambda v: v is None,
    "closure": lambda v: type(v) in (Closure, Builtin) or hasattr(v, "harn_call"),
    "any": lambda v: True,
}


def value_has_type(v: Any, name: str) -> bool:
    """Does `v` belong to the type named `name` (a primitive, struct or enum name)?"""
    check = _PRIMITIVE.get(name)
    if check is not None:
        return bool(check(v))
    if isinstance(v, StructInstance):
        return v.sdef.name == name
    if isinstance(v, EnumValue):
        return v.enum_name == name
    if v.__class__ is Result:
        return name == "Result"
    return type_name(v) == name


def catches(err: HarnRuntimeError, types: tuple[str, ...]) -> bool:
    """Does `catch (e: T | U)` handle `err`? Internal errors (not `throw`n) are strings."""
    return any(value_has_type(err.value, t) for t in types)


def shape_problem(v: Any, fields: tuple[tuple[str, bool, Any], ...]) -> str:
    """Why `v` does not fit a shape annotation ("" if it does); extra fields are fine."""
    data = v.fields if isinstance(v, StructInstance) else v
    if data.__class__ is not dict:
        return f"expected a dict, got {type_name(v)}"
    for field, optional, types in fields:
        if field not in data or (data[field] is None and not optional):
            if optional:
                continue
            want = " | ".join(t for t in types or () if isinstance(t, str)) or "any"
            return f"missing field '{field}' ({want})"
        if not types:
            continue
        value = data[field]
        if types[0].__class__ is tuple:
            inner = shape_problem(value, types[0][1])
            if inner:
                return f"field '{field}': {inner}"
        elif not any(value_has_type(value, t) for t in types):
            return f"field '{field}' expected {' | '.join(types)}, got {type_name(value)}"
    return ""
