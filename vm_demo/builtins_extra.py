"""The rest of the documented string, list and math helpers: trimming and
padding, `first(n)`, `partition`, `group_by`, `chunk`, `tally`..., and the
math functions past the basic ones (`pow`, trigonometry, statistics).
"""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

from vm_demo import builtins_methods  # noqa: F401  (loaded first: this module overrides some)
from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import to_display
from vm_demo.operators import compare, equal
from vm_demo.registry import arity, builtin, method, want

__all__ = ("Rng",)

L = (list,)
S = (str,)

# -- strings ---------------------------------------------------------------------------------


@method(S, "trim_start")
def _trim_start(vm: Any, obj: str, args: list[Any]) -> str:
    return obj.lstrip()


@method(S, "trim_end")
def _trim_end(vm: Any, obj: str, args: list[Any]) -> str:
    return obj.rstrip()


@method(S, "char_at")
def _char_at(vm: Any, obj: str, args: list[Any]) -> str | None:
    arity("char_at", args, 1)
    i: int = want("char_at", args[0], int)
    return obj[i] if -len(obj) <= i < len(obj) else None


@method(S, "last_index_of")
def _last_index_of(vm: Any, obj: str, args: list[Any]) -> int:
    arity("last_index_of", args, 1)
    return obj.rfind(want("last_index_of", args[0], str))


@method(S, "to_lower")
def _to_lower(vm: Any, obj: str, args: list[Any]) -> str:
    return obj.lower()


@method(S, "to_upper")
def _to_upper(vm: Any, obj: str, args: list[Any]) -> str:
    return obj.upper()


def _pad(name: str, obj: str, args: list[Any], left: bool) -> str:
    arity(name, args, 1, 2)
    width: int = want(name, args[0], int)
    fill: str = want(name, args[1], str) if len(args) > 1 else " "
    if len(fill) != 1:
        raise HarnRuntimeError(f"{name}() pads with one character, got {fill!r}")
    return obj.rjust(width, fill) if left else obj.ljust(width, fill)


@method(S, "pad_left")
def _pad_left(vm: Any, obj: str, args: list[Any]) -> str:
    return _pad("pad_left", obj, args, True)


@method(S, "pad_right")
def _pad_right(vm: Any, obj: str, args: list[Any]) -> str:
    return _pad("pad_right", obj, args, False)


@builtin("len")
def _len(vm: Any, args: list[Any]) -> int:
    arity("len", args, 1)
    v = args[0]
    try:
        return len(v)
    except TypeError:
        raise HarnRuntimeError(
            f"len() expected a list, string, dict or set, got {to_display(v)}"
        ) from None


# -- lists ---------------------------------------------------------------------------------------


@method(L, "to_list")
def _to_list(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    return list(obj)


@method(L, "first")
def _first(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    arity("first", args, 0, 1)
    if args:
        return obj[: want("first", args[0], int)]
    return obj[0] if obj else None


@method(L, "last")
def _last(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    arity("last", args, 0, 1)
    if args:
        n: int = want("last", args[0], int)
        return obj[-n:] if n > 0 else []
    return obj[-1] if obj else None


@method(L, "pop")
def _pop(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    return obj[:-1]


@method(L, "compact")
def _compact(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    return [x for x in obj if x is not None]


@method(L, "flatten")
def _flatten(vm: Any, obj: list[Any], args: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in obj:
        out.extend(x if isinstance(x, list) else [x])
    return out


@method(L, "tally")
def _tally(vm: Any, obj: list[Any], args: list[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for x in obj:
        k = to_display(x)
        out[k] = out.get(k, 0) + 1
    return out


def _chunks(name: str, obj: list[Any], size: Any) -> list[list[Any]]:
    n: int = want(name, size, int)
    if n <= 0:
        raise HarnRuntimeError(f"{name}() needs a size of at least 1, got {n}")
    return [obj[i : i + n] for i in range(0, len(obj), n)]


def _windows(name: str, obj: list[Any], size: Any, step: Any = 1) -> list[list[Any]]:
    n: int = want(name, size, int)
    k: int = want(name, step, int)
    if n <= 0 or k <= 0:
        raise HarnRuntimeError(f"{name}() needs a size and step of at least 1")
    return [obj[i : i + n] for i in range(0, len(obj) - n + 1, k)]


@method(L, "chunk")
def _m_chunk(vm: Any, obj: list[Any], args: list[Any]) -> list[list[Any]]:
    arity("chunk", args, 1)
    return _chunks("chunk", obj, args[0])


@method(L, "window", "each_cons")
def _m_window(vm: Any, obj: list[Any], args: list[Any]) -> list[list[Any]]:
    arity("window", args, 1)
    return _windows("window", obj, args[0])


@builtin("chunk")
def _chunk(vm: Any, args: list[Any]) -> list[list[Any]]:
    arity("chunk", args, 2)
    return _chunks("chunk", want("chunk", args[0], list), args[1])


@builtin("window")
def _window(vm: Any, args: list[Any]) -> list[list[Any]]:
    arity("window", args, 2, 3)
    return _windows("window", want("window", args[0], list), args[1], *args[2:])


async def _keys(vm: Any, obj: list[Any], fn: Any) -> list[Any]:
    return [await vm.call(fn, [x]) for x in obj]


@method(L, "find_index", is_async=True)
async def _find_index(vm: Any, obj: list[Any], args: list[Any]) -> int:
    arity("find_index", args, 1)
    for i, x in enumerate(obj):
        if await vm.call(args[0], [x]):
            return i
    return -1


@method(L, "every", is_async=True)
async def _every(vm: Any, obj: list[Any], args: list[Any]) -> bool:
    arity("every", args, 1)
    for x in obj:
        if not await vm.call(args[0], [x]):
            return False
    return True


@method(L, "none", is_async=True)
async def _none(vm: Any, obj: list[Any], args: list[Any]) -> bool:
    arity("none", args, 0, 1)
    if not args:
        return not obj
    for x in obj:
        if await vm.call(args[0], [x]):
            return False
    return True


@method(L, "partition", is_async=True)
async def _partition(vm: Any, obj: list[Any], args: list[Any]) -> list[list[Any]]:
    arity("partition", args, 1)
    keys = await _keys(vm, obj, args[0])
    return [
        [x for x, k in zip(obj, keys, strict=True) if k],
        [x for x, k in zip(obj, keys, strict=True) if not k],
    ]


async def _group(vm: Any, obj: list[Any], fn: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for x in obj:
        out.setdefault(to_display(await vm.call(fn, [x])), []).append(x)
    return out


@method(L, "group_by", is_async=True)
async def _m_group_by(vm: Any, obj: list[Any], args: list[Any]) -> dict[str, list[Any]]:
    arity("group_by", args, 1)
    return await _group(vm, obj, args[0])


@builtin("group_by", is_async=True)
async def _group_by(vm: Any, args: list[Any]) -> dict[str, list[Any]]:
    arity("group_by", args, 2)
    return await _group(vm, want("group_by", args[0], list), args[1])


@builtin("partition", is_async=True)
async def _f_partition(vm: Any, args: list[Any]) -> dict[str, list[Any]]:
    arity("partition", args, 2)
    yes, no = await _partition(vm, want("partition", args[0], list), [args[1]])
    return {"match": yes, "no_match": no}


@builtin("dedup_by", is_async=True)
async def _dedup_by(vm: Any, args: list[Any]) -> list[Any]:
    arity("dedup_by", args, 2)
    items = want("dedup_by", args[0], list)
    seen: list[Any] = []
    out: list[Any] = []
    for x, k in zip(items, await _keys(vm, items, args[1]), strict=True):
        if not any(equal(k, s) for s in seen):
            seen.append(k)
            out.append(x)
    return out


@builtin("flat_map", is_async=True)
async def _f_flat_map(vm: Any, args: list[Any]) -> list[Any]:
    arity("flat_map", args, 2)
    out: list[Any] = []
    for r in await _keys(vm, want("flat_map", args[0], list), args[1]):
        out.extend(r if isinstance(r, list) else [r])
    return out


async def _by(vm: Any, obj: list[Any], fn: Any, op: str) -> Any:
    best: Any = None
    best_key: Any = None
    for x, k in zip(obj, await _keys(vm, obj, fn), strict=True):
        if best_key is None or compare(op, k, best_key):
            best, best_key = x, k
    return best


@method(L, "min_by", is_async=True)
async def _min_by(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    arity("min_by", args, 1)
    return await _by(vm, obj, args[0], "<")


@method(L, "max_by", is_async=True)
async def _max_by(vm: Any, obj: list[Any], args: list[Any]) -> Any:
    arity("max_by", args, 1)
    return await _by(vm, obj, args[0], ">")


# -- math --------------------------------------------------------------------------------------


def _num(name: str, v: Any) -> Any:
    return want(name, v, int, float, what="a number")


def _unary(name: str, fn: Any) -> None:
    def call(vm: Any, args: list[Any]) -> Any:
        arity(name, args, 1)
        try:
            return fn(_num(name, args[0]))
        except (ValueError, OverflowError):
            return float("nan")

    builtin(name)(call)


for _name, _fn in {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "log2": math.log2,
    "log10": math.log10,
    "ln": math.log,
    "exp": math.exp,
    "is_nan": lambda x: isinstance(x, float) and math.isnan(x),
    "is_infinite": lambda x: isinstance(x, float) and math.isinf(x),
    "sign": lambda x: (x > 0) - (x < 0),
}.items():
    _unary(_name, _fn)


@builtin("atan2")
def _atan2(vm: Any, args: list[Any]) -> float:
    arity("atan2", args, 2)
    return math.atan2(_num("atan2", args[0]), _num("atan2", args[1]))


@builtin("pow")
def _pow(vm: Any, args: list[Any]) -> Any:
    from vm_demo.operators import power

    arity("pow", args, 2)
    return power(args[0], args[1])


def _stats(name: str, args: list[Any], lo: int = 1, hi: int = 1) -> list[Any]:
    arity(name, args, lo, hi)
    items = [_num(name, x) for x in want(name, args[0], list)]
    if not items:
        raise HarnRuntimeError(f"{name}() of an empty list")
    return items


@builtin("mean")
def _mean(vm: Any, args: list[Any]) -> float:
    return float(statistics.fmean(_stats("mean", args)))


@builtin("median")
def _median(vm: Any, args: list[Any]) -> float:
    return float(statistics.median(_stats("median", args)))


@builtin("variance")
def _variance(vm: Any, args: list[Any]) -> float:
    items = _stats("variance", args, 1, 2)
    sample = len(args) > 1 and args[1] is True
    return float(statistics.variance(items) if sample else statistics.pvariance(items))


@builtin("stddev")
def _stddev(vm: Any, args: list[Any]) -> float:
    return math.sqrt(_variance(vm, args))


@builtin("percentile")
def _percentile(vm: Any, args: list[Any]) -> float:
    items = sorted(_stats("percentile", args, 2, 2))
    p = float(_num("percentile", args[1]))
    if not 0 <= p <= 100:
        raise HarnRuntimeError(f"percentile() needs p in 0..100, got {to_display(args[1])}")
    h = (len(items) - 1) * p / 100  # linear between the closest ranks
    lo = math.floor(h)
    hi = min(lo + 1, len(items) - 1)
    return float(items[lo] + (h - lo) * (items[hi] - items[lo]))


@builtin("min")
def _min(vm: Any, args: list[Any]) -> Any:
    items = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not items:
        return None
    best = min(_num("min", x) for x in items)
    return float(best) if any(isinstance(x, float) for x in items) else best


@builtin("max")
def _max(vm: Any, args: list[Any]) -> Any:
    items = args[0] if len(args) == 1 and isinstance(args[0], list) else args
    if not items:
        return None
    best = max(_num("max", x) for x in items)
    return float(best) if any(isinstance(x, float) for x in items) else best


# -- random ------------------------------------------------------------------------------------


class Rng:
    """A seeded random generator (`rng_seed(n)`), for reproducible draws."""

    __slots__ = ("gen",)

    def __init__(self, seed: int) -> None:
        self.gen = random.Random(seed)

    def harn_display(self) -> str:
        return "<rng>"

    def harn_type(self) -> str:
        return "rng"


def _rng(vm: Any, args: list[Any]) -> tuple[random.Random, list[Any]]:
    """The generator to draw from: a leading rng argument, else the run's own.

    The run's generator has a fixed seed so a program traced under
    `--mock-time` replays identically.
    """
    if args and isinstance(args[0], Rng):
        return args[0].gen, args[1:]
    gen = vm.state.get("rng")
    if gen is None:
        gen = vm.state["rng"] = random.Random(0)
    return gen, args


@builtin("rng_seed")
def _rng_seed(vm: Any, args: list[Any]) -> Rng:
    arity("rng_seed", args, 1)
    return Rng(want("rng_seed", args[0], int))


@builtin("random")
def _random(vm: Any, args: list[Any]) -> float:
    gen, rest = _rng(vm, args)
    arity("random", rest, 0)
    return gen.random()


@builtin("random_int")
def _random_int(vm: Any, args: list[Any]) -> int:
    gen, rest = _rng(vm, args)
    arity("random_int", rest, 2)
    lo: int = want("random_int", rest[0], int)
    hi: int = want("random_int", rest[1], int)
    if hi < lo:
        raise HarnRuntimeError(f"random_int(): max {hi} is below min {lo}")
    return gen.randint(lo, hi)


@builtin("random_choice")
def _random_choice(vm: Any, args: list[Any]) -> Any:
    gen, rest = _rng(vm, args)
    arity("random_choice", rest, 1)
    items = want("random_choice", rest[0], list)
    return gen.choice(items) if items else None


@builtin("random_shuffle")
def _random_shuffle(vm: Any, args: list[Any]) -> list[Any]:
    gen, rest = _rng(vm, args)
    arity("random_shuffle", rest, 1)
    items = list(want("random_shuffle", rest[0], list))
    gen.shuffle(items)
    return items
