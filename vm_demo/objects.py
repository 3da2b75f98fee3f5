"""Runtime values of the VM (the byterun `pyobj.py` of this project).

Harn values map onto Python ones where that is cheap: int, float, str,
bool, nil=None, list, dict. Everything else is a small class here:
closures and their cells, builtins, durations, Results, sets, atomics,
task handles and channels. `to_display` is the one place that decides how
a value prints (`println`, interpolation, error messages).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vm_demo.bytecode import Code

__all__ = (
    "Atomic", "Builtin", "Cell", "Channel", "ChannelClosed", "Closure", "Duration", "HarnSet",
    "Result", "TaskHandle", "freeze", "freeze_content", "sorted_keys", "to_display",
    "to_json_value", "type_name",
)  # fmt: skip


class Cell:
    """A captured variable shared between a frame and its closures."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Closure:
    """A Harn function value: code + captured cells + defining module globals."""

    __slots__ = ("cells", "code", "globals", "name")

    def __init__(self, code: Code, cells: tuple[Cell, ...], globals_: dict[str, Any]) -> None:
        self.code = code
        self.cells = cells
        self.globals = globals_
        self.name = code.name


class Builtin:
    """A function implemented in Python: `fn(vm, args)`; async ones are awaited."""

    __slots__ = ("fn", "is_async", "name")

    def __init__(self, name: str, fn: Callable[..., Any], is_async: bool) -> None:
        self.name = name
        self.fn = fn
        self.is_async = is_async


class Duration(int):
    """A duration literal (`25ms`, `5s`) — an int number of milliseconds."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Duration({int(self)})"


class Result:
    """`Ok(value)` / `Err(error)`."""

    __slots__ = ("ok", "value")

    def __init__(self, ok: bool, value: Any) -> None:
        self.ok = ok
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and other.ok == self.ok and other.value == self.value

    def __hash__(self) -> int:
        return hash((self.ok, repr(self.value)))


def freeze(v: Any) -> Any:
    """A hashable key for `v` as a set member; `true` stays apart from `1`.

    Lists and dicts are members by identity, as in Harn, where
    `len(set([[1], [1]]))` is 2: each list literal is its own member.
    Struct, enum and pair values hash by content (`freeze_content`).
    """
    t = type(v)
    if t is bool:
        return ("bool", v)
    if t is list or t is dict:
        return ("id", id(v))
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))
    return v


def freeze_content(v: Any) -> Any:
    """A hashable key for `v` by content (lists and dicts included), for value equality."""
    t = type(v)
    if t is bool:
        return ("bool", v)
    if t is list:
        return ("list", tuple(freeze_content(x) for x in v))
    if t is dict:
        return ("dict", tuple((freeze_content(k), freeze_content(v[k])) for k in sorted_keys(v)))
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))
    return v


class HarnSet:
    """An insertion-ordered set of values (`set(1, 2, 3)`), keyed by `freeze`."""

    __slots__ = ("by_key",)

    def __init__(self, items: Any = ()) -> None:
        self.by_key: dict[Any, Any] = {}
        for x in items:
            self.by_key.setdefault(freeze(x), x)

    @property
    def items(self) -> list[Any]:
        """The members in insertion order."""
        return list(self.by_key.values())

    def has(self, v: Any) -> bool:
        return freeze(v) in self.by_key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HarnSet) and set(other.by_key) == set(self.by_key)

    def __hash__(self) -> int:
        return hash(frozenset(self.by_key))

    def __len__(self) -> int:
        return len(self.by_key)


class Atomic:
    """A shared integer cell: atomic ops mutate it and return the handle."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class TaskHandle:
    """What `spawn { }` returns; `await(h)` / `cancel(h)` act on it."""

    __slots__ = ("task",)

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task


class ChannelClosed(Exception):
    """Raised by `send` on a closed channel."""


class Channel:
    """A bounded FIFO channel usable from `send`/`receive`/`select`.

    Receivers and `select` wait on one shared "changed" future per channel,
    so a select over several channels needs no helper tasks.
    """

    __slots__ = ("_changed", "capacity", "closed", "items", "name")

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.items: deque[Any] = deque()
        self.closed = False
        self._changed: asyncio.Future[None] | None = None

    def changed(self) -> asyncio.Future[None]:
        """A future resolved the next time an item is sent or taken, or on close."""
        if self._changed is None or self._changed.done():
            self._changed = asyncio.get_running_loop().create_future()
        return self._changed

    def _notify(self) -> None:
        fut = self._changed
        if fut is not None and not fut.done():
            fut.set_result(None)
        self._changed = None

    def ready(self) -> bool:
        return bool(self.items) or self.closed

    def take(self) -> Any:
        """Pop the next item (nil when closed and drained); call only if ready()."""
        if self.items:
            item = self.items.popleft()
            self._notify()
            return item
        return None

    async def send(self, value: Any) -> None:
        while self.capacity > 0 and len(self.items) >= self.capacity and not self.closed:
            await self.changed()
        if self.closed:
            raise ChannelClosed(f"send on closed channel '{self.name}'")
        self.items.append(value)
        self._notify()

    async def receive(self) -> Any:
        while not self.ready():
            await self.changed()
        return self.take()

    def close(self) -> None:
        self.closed = True
        self._notify()


def type_name(v: Any) -> str:
    """The Harn `type_of` name of a value."""
    if v is None:
        return "nil"
    t = type(v)
    if t is bool:
        return "bool"
    if t is Duration:
        return "duration"
    if t is int:
        return "int"
    if t is float:
        return "float"
    if t is str:
        return "string"
    if t is list or t is range:
        return "list"
    if t is dict:
        return "dict"
    if t is Closure or t is Builtin:
        return "closure"
    if t is Result:
        return "result"
    if t is HarnSet:
        return "set"
    if t is Atomic:
        return "atomic"
    if t is TaskHandle:
        return "taskHandle"
    if t is Channel:
        return "channel"
    hook = getattr(v, "harn_type", None)
    if hook is not None:
        return str(hook())
    return t.__name__.lower()


def _fmt_float(v: float) -> str:
    if v != v or v in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "inf", "-inf": "-inf"}[repr(v)]
    return repr(v)


def _fmt_duration(ms: int) -> str:
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def to_display(v: Any, nested: bool = False) -> str:
    """How `println` shows a value; strings print bare, inside collections too (`[a, b]`).

    `nested` is kept for callers that format a value inside a message.
    """
    if v is None:
        return "nil"
    t = type(v)
    if t is str:
        return str(v)
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    if t is float:
        return _fmt_float(v)
    if t is list or t is range:
        return "[" + ", ".join(to_display(x, True) for x in v) + "]"
    if t is dict:
        return "{" + ", ".join(f"{k}: {to_display(v[k], True)}" for k in sorted_keys(v)) + "}"
    if t is Duration:
        return _fmt_duration(int(v))
    if t is Result:
        return f"Result.{'Ok' if v.ok else 'Err'}({to_display(v.value, True)})"
    if t is HarnSet:
        return "set(" + ", ".join(to_display(x, True) for x in v.items) + ")"
    if t is Closure or t is Builtin:
        return f"<fn {v.name}>"
    if t is Atomic:
        return f"atomic({to_display(v.value, True)})"
    if t is TaskHandle:
        return "<task>"
    if t is Channel:
        return f"<channel {v.name}>"
    hook = getattr(v, "harn_display", None)
    if hook is not None:
        return str(hook())
    return str(v)


def sorted_keys(d: dict[Any, Any]) -> list[Any]:
    """Dict keys in Harn's iteration order (sorted; mixed types by text)."""
    try:
        return sorted(d)
    except TypeError:
        return sorted(d, key=str)


def to_json_value(v: Any) -> Any:
    """Convert a Harn value to plain JSON data (for json_stringify)."""
    if isinstance(v, list | range):
        return [to_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): to_json_value(v[k]) for k in sorted_keys(v)}
    if isinstance(v, HarnSet):
        return [to_json_value(x) for x in v.items]
    if isinstance(v, Result):
        return {"ok" if v.ok else "err": to_json_value(v.value)}
    if v is None or isinstance(v, bool | int | float | str):
        return int(v) if isinstance(v, Duration) else v
    fields = getattr(v, "fields", None)
    if isinstance(fields, dict):  # a struct instance serialises as its fields
        return {str(k): to_json_value(x) for k, x in fields.items()}
    if isinstance(v, Closure | Builtin | TaskHandle | Channel):
        return None
    return to_display(v)
