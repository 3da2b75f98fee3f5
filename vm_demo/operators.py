"""Value semantics of the operators: arithmetic, comparison, indexing, iteration.

The VM inlines the int/int and str/str fast paths; everything else lands
here. Errors are `HarnRuntimeError`s; the VM adds the source location.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import Channel, Duration, HarnSet, Result, sorted_keys, type_name

__all__ = (
    "add", "compare", "contains", "div", "equal", "get_attr", "get_index", "iterate", "make_range",
    "mod", "mul", "negate", "power", "set_index", "slice_of", "sub",
)  # fmt: skip


def _is_num(v: Any) -> bool:
    t = type(v)
    return t is int or t is float or t is Duration


def _type_error(op: str, a: Any, b: Any) -> HarnRuntimeError:
    return HarnRuntimeError(f"TypeError: cannot apply '{op}' to {type_name(a)} and {type_name(b)}")


def add(a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        r = a + b
        return Duration(r) if type(a) is Duration and type(b) is Duration else r
    ta = type(a)
    if ta is range or type(b) is range:  # a lazy range joins a list as its items
        a, b = (list(a) if type(a) is range else a), (list(b) if type(b) is range else b)
        ta = type(a)
    if ta is type(b):
        if ta is str or ta is list:
            return a + b
        if ta is dict:
            return {**a, **b}
    raise _type_error("+", a, b)


def sub(a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        r = a - b
        return Duration(r) if type(a) is Duration and type(b) is Duration else r
    raise _type_error("-", a, b)


def mul(a: Any, b: Any) -> Any:
    if _is_num(a) and _is_num(b):
        return a * b
    # `"ab" * 3` and `3 * "ab"` repeat; a count of zero or less gives "".
    if type(a) is str and type(b) is int:
        return a * max(b, 0)
    if type(a) is int and type(b) is str:
        return b * max(a, 0)
    raise _type_error("*", a, b)


def power(a: Any, b: Any) -> Any:
    """`**`: int for a non-negative int exponent, float otherwise."""
    if not (_is_num(a) and _is_num(b)):
        raise _type_error("**", a, b)
    if type(a) is not float and type(b) is not float and b >= 0:
        if b > 100_000:
            raise HarnRuntimeError("integer exponent too large for '**'")
        return int(a) ** int(b)
    try:
        return float(a) ** float(b)
    except (OverflowError, ZeroDivisionError):
        return float("inf")


def div(a: Any, b: Any) -> Any:
    """Integer division truncates toward zero; division by zero gives nil."""
    if not (_is_num(a) and _is_num(b)):
        raise _type_error("/", a, b)
    if b == 0:
        return None
    if type(a) is not float and type(b) is not float:
        q = abs(int(a)) // abs(int(b))
        return q if (a < 0) == (b < 0) else -q
    return a / b


def mod(a: Any, b: Any) -> Any:
    """Remainder with the sign of the dividend (like Rust and C)."""
    if not (_is_num(a) and _is_num(b)):
        raise _type_error("%", a, b)
    if b == 0:
        return None
    if type(a) is not float and type(b) is not float:
        return int(a) - int(b) * div(int(a), int(b))
    import math

    return math.fmod(a, b)


def equal(a: Any, b: Any) -> bool:
    # bool is an int subclass in Python but not in Harn: 1 != true, [1] != [true].
    ta, tb = type(a), type(b)
    if (ta is bool) is not (tb is bool):
        return False
    if ta is range or tb is range:
        a, b = (list(a) if ta is range else a), (list(b) if tb is range else b)
        ta, tb = type(a), type(b)
    if ta is list and tb is list:
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict and tb is dict:
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return bool(a == b)


def compare(op: str, a: Any, b: Any) -> bool:
    if not ((_is_num(a) and _is_num(b)) or (type(a) is str and type(b) is str)):
        raise _type_error(op, a, b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)


def contains(container: Any, item: Any) -> bool:
    t = type(container)
    if t is list:
        return any(equal(x, item) for x in container)
    if t is range:
        return type(item) is int and item in container
    if t is str:
        if type(item) is not str:
            raise _type_error("in", item, container)
        return item in container
    if t is dict:
        return bool(item in container)
    if t is HarnSet:
        return bool(container.has(item))
    raise HarnRuntimeError(
        f"TypeError: 'in' needs a list, string, dict or set, got {type_name(container)}"
    )


def negate(v: Any) -> Any:
    if _is_num(v):
        return -v
    raise HarnRuntimeError(f"TypeError: cannot negate {type_name(v)}")


def _norm_index(i: Any, n: int) -> int:
    if type(i) is not int:
        raise HarnRuntimeError(f"TypeError: index must be an int, got {type_name(i)}")
    return i + n if i < 0 else i


def get_index(obj: Any, index: Any) -> Any:
    t = type(obj)
    if t is list or t is str or t is range:
        i = _norm_index(index, len(obj))
        if not 0 <= i < len(obj):
            raise HarnRuntimeError(
                f"index {index} out of bounds for {type_name(obj)} of length {len(obj)}"
            )
        return obj[i]
    if t is dict:
        return obj.get(index)
    if obj is None:
        raise HarnRuntimeError(f"cannot index nil with {index!r}")
    raise HarnRuntimeError(f"TypeError: cannot index {type_name(obj)}")


def set_index(obj: Any, index: Any, value: Any) -> None:
    t = type(obj)
    if t is list:
        i = _norm_index(index, len(obj))
        if not 0 <= i < len(obj):
            raise HarnRuntimeError(f"index {index} out of bounds for list of length {len(obj)}")
        obj[i] = value
    elif t is dict:
        obj[index] = value
    else:
        raise HarnRuntimeError(f"TypeError: cannot assign into {type_name(obj)}")


def slice_of(obj: Any, start: Any, end: Any) -> Any:
    if type(obj) not in (list, str, range):
        raise HarnRuntimeError(f"TypeError: cannot slice {type_name(obj)}")
    got = obj[start:end]
    return list(got) if type(got) is range else got


def get_attr(obj: Any, name: str) -> Any:
    """`.field`: dict keys, plus the read-only properties of lists and strings."""
    t = type(obj)
    if t is dict:
        return obj.get(name)
    if t is list or t is str or t is range:
        if name == "count":
            return len(obj)
        if name == "empty":
            return len(obj) == 0
        if t is not str and name == "first":
            return obj[0] if obj else None
        if t is not str and name == "last":
            return obj[-1] if obj else None
    if t is Result and name in ("value", "ok"):
        return obj.value if name == "value" else obj.ok
    if t is HarnSet and name == "count":
        return len(obj)
    if t is Channel and name == "name":
        return obj.name
    hook = getattr(obj, "harn_attr", None)
    if hook is not None:
        return hook(name)
    if obj is None:
        raise HarnRuntimeError(f"cannot read field '{name}' of nil (use ?. for optional access)")
    fields = getattr(obj, "harn_fields", None)  # e.g. a tool's name/description
    if fields is not None and name in fields:
        return getattr(obj, name)
    raise HarnRuntimeError(f"{type_name(obj)} has no field '{name}'")


def iterate(v: Any) -> Iterator[Any]:
    t = type(v)
    if t is list:
        return iter(list(v))
    if t is range:
        return iter(v)
    if t is dict:
        return iter([{"key": k, "value": v[k]} for k in sorted_keys(v)])
    if t is str:
        return iter(list(v))
    if t is HarnSet:
        return iter(v.items)
    raise HarnRuntimeError(f"TypeError: cannot iterate over {type_name(v)}")


def make_range(start: Any, end: Any, inclusive: bool) -> range:
    """`a to b`: a lazy range of ints (it behaves as the list of its items)."""
    if type(start) is not int or type(end) is not int:
        raise HarnRuntimeError("TypeError: range bounds must be ints")
    return range(start, end + 1 if inclusive else end)
