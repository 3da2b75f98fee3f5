"""Scoped shared state (`shared_cell`, `shared_map`) and actor mailboxes.

All tasks of one run share these handles (they live in the VM's state, keyed
by scope and key), so they are how parallel branches coordinate besides
channels and atomics. Every write bumps a version; a CAS given a snapshot
fails if the version moved since, which catches stale reads.
"""

from __future__ import annotations

from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import Channel
from vm_demo.operators import equal
from vm_demo.registry import arity, builtin, want

__all__ = ("Mailbox", "Shared")

_MISSING = object()


class Shared:
    """A shared cell (one value) or map (values by key), with a version and counters."""

    def __init__(self, kind: str, scope: str, key: str, initial: Any) -> None:
        self.kind = kind
        self.scope = scope
        self.key = key
        self.value: Any = initial
        self.version = 0
        self.stats = dict.fromkeys(
            (
                "read_count",
                "write_count",
                "cas_success_count",
                "cas_failure_count",
                "stale_read_count",
            ),
            0,
        )

    def harn_display(self) -> str:
        return f"<shared_{self.kind} {self.scope}:{self.key}>"

    def harn_type(self) -> str:
        return f"shared_{self.kind}"

    def wrote(self) -> None:
        """Count a plain write: the value has a new version."""
        self.version += 1
        self.stats["write_count"] += 1

    def cas(self, current: Any, expected: Any, write: Any) -> bool:
        if isinstance(expected, dict) and "version" in expected and "value" in expected:
            ok = expected["version"] == self.version and equal(current, expected["value"])
            if not ok and expected["version"] != self.version:
                self.stats["stale_read_count"] += 1
        else:
            ok = equal(current, expected)
        if ok:
            write()
            self.version += 1
            self.stats["cas_success_count"] += 1
        else:
            self.stats["cas_failure_count"] += 1
        return ok


def _open(vm: Any, kind: str, args: list[Any], default: Any) -> Shared:
    name = f"shared_{kind}"
    arity(name, args, 1, 2)
    opts = args[0] if isinstance(args[0], dict) else {"key": want(name, args[0], str)}
    scope = want(name, opts.get("scope", "process"), str)
    key = want(name, opts.get("key"), str, what="a key")
    initial = args[1] if len(args) > 1 else opts.get("initial", default)
    reg: dict[tuple[str, str, str], Shared] = vm.state.setdefault("shared", {})
    found = reg.get((kind, scope, key))
    if found is None:
        found = reg[(kind, scope, key)] = Shared(kind, scope, key, initial)
    return found


def _handle(name: str, v: Any, kind: str) -> Shared:
    if not isinstance(v, Shared) or v.kind != kind:
        raise HarnRuntimeError(f"{name}() expected a shared {kind} (from shared_{kind})")
    return v


@builtin("shared_cell")
def _cell(vm: Any, args: list[Any]) -> Shared:
    return _open(vm, "cell", args, None)


@builtin("shared_get")
def _get(vm: Any, args: list[Any]) -> Any:
    arity("shared_get", args, 1)
    c = _handle("shared_get", args[0], "cell")
    c.stats["read_count"] += 1
    return c.value


@builtin("shared_snapshot")
def _snapshot(vm: Any, args: list[Any]) -> dict[str, Any]:
    arity("shared_snapshot", args, 1)
    c = _handle("shared_snapshot", args[0], "cell")
    c.stats["read_count"] += 1
    return {"value": c.value, "version": c.version}


@builtin("shared_set")
def _set(vm: Any, args: list[Any]) -> Any:
    arity("shared_set", args, 2)
    c = _handle("shared_set", args[0], "cell")
    old, c.value = c.value, args[1]
    c.wrote()
    return old


@builtin("shared_cas")
def _cas(vm: Any, args: list[Any]) -> bool:
    arity("shared_cas", args, 3)
    c = _handle("shared_cas", args[0], "cell")

    def write() -> None:
        c.value = args[2]

    return c.cas(c.value, args[1], write)


@builtin("shared_map")
def _map(vm: Any, args: list[Any]) -> Shared:
    m = _open(vm, "map", args, None)
    if m.value is None:
        m.value = {}
    return m


@builtin("shared_map_get")
def _map_get(vm: Any, args: list[Any]) -> Any:
    arity("shared_map_get", args, 2, 3)
    m = _handle("shared_map_get", args[0], "map")
    m.stats["read_count"] += 1
    return m.value.get(args[1], args[2] if len(args) > 2 else None)


@builtin("shared_map_set")
def _map_set(vm: Any, args: list[Any]) -> Any:
    arity("shared_map_set", args, 3)
    m = _handle("shared_map_set", args[0], "map")
    old = m.value.get(args[1])
    m.value[args[1]] = args[2]
    m.wrote()
    return old


@builtin("shared_map_delete")
def _map_delete(vm: Any, args: list[Any]) -> Any:
    arity("shared_map_delete", args, 2)
    m = _handle("shared_map_delete", args[0], "map")
    m.wrote()
    return m.value.pop(args[1], None)


@builtin("shared_map_entries")
def _map_entries(vm: Any, args: list[Any]) -> dict[Any, Any]:
    arity("shared_map_entries", args, 1)
    m = _handle("shared_map_entries", args[0], "map")
    m.stats["read_count"] += 1
    return dict(m.value)


@builtin("shared_map_snapshot")
def _map_snapshot(vm: Any, args: list[Any]) -> dict[str, Any]:
    arity("shared_map_snapshot", args, 2)
    m = _handle("shared_map_snapshot", args[0], "map")
    m.stats["read_count"] += 1
    return {"value": m.value.get(args[1]), "version": m.version}


@builtin("shared_map_cas")
def _map_cas(vm: Any, args: list[Any]) -> bool:
    arity("shared_map_cas", args, 4)
    m = _handle("shared_map_cas", args[0], "map")

    def write() -> None:
        m.value[args[1]] = args[3]

    return m.cas(m.value.get(args[1]), args[2], write)


@builtin("shared_metrics")
def _metrics(vm: Any, args: list[Any]) -> dict[str, int]:
    arity("shared_metrics", args, 1)
    h = args[0]
    if not isinstance(h, Shared):
        raise HarnRuntimeError("shared_metrics() expected a shared cell or map")
    return {**h.stats, "version": h.version}


# -- mailboxes -----------------------------------------------------------------------------------


class Mailbox:
    """A named inbox: a channel plus send/receive counters."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.channel = Channel(name, capacity)
        self.stats = dict.fromkeys(("sent_count", "received_count", "failed_send_count"), 0)

    def harn_display(self) -> str:
        return f"<mailbox {self.name}>"

    def harn_type(self) -> str:
        return "mailbox"

    def harn_attr(self, name: str) -> Any:
        if name == "name":
            return self.name
        raise HarnRuntimeError(f"mailbox has no field '{name}'")


def _boxes(vm: Any) -> dict[str, Mailbox]:
    boxes: dict[str, Mailbox] = vm.state.setdefault("mailboxes", {})
    return boxes


def _lookup(vm: Any, target: Any) -> Mailbox | None:
    if isinstance(target, Mailbox):
        return target
    if isinstance(target, str):
        return _boxes(vm).get(target)
    raise HarnRuntimeError("expected a mailbox or a mailbox name")


def _box(vm: Any, name: str, target: Any) -> Mailbox:
    box = _lookup(vm, target)
    if box is None:
        raise HarnRuntimeError(f"{name}(): no mailbox named {target!r}")
    return box


@builtin("mailbox_open")
def _mailbox_open(vm: Any, args: list[Any]) -> Mailbox:
    arity("mailbox_open", args, 1, 2)
    opts = args[0] if isinstance(args[0], dict) else {"name": args[0]}
    name = want("mailbox_open", opts.get("name"), str, what="a mailbox name")
    capacity = args[1] if len(args) > 1 else opts.get("capacity", 0)
    boxes = _boxes(vm)
    if name not in boxes or boxes[name].channel.closed:
        boxes[name] = Mailbox(name, want("mailbox_open", capacity, int))
    return boxes[name]


@builtin("mailbox_lookup")
def _mailbox_lookup(vm: Any, args: list[Any]) -> Mailbox | None:
    arity("mailbox_lookup", args, 1)
    return _lookup(vm, args[0])


@builtin("mailbox_send", is_async=True)
async def _mailbox_send(vm: Any, args: list[Any]) -> bool:
    arity("mailbox_send", args, 2)
    box = _lookup(vm, args[0])
    if box is None or box.channel.closed:
        if box is not None:
            box.stats["failed_send_count"] += 1
        return False
    await box.channel.send(args[1])
    box.stats["sent_count"] += 1
    return True


@builtin("mailbox_receive", is_async=True)
async def _mailbox_receive(vm: Any, args: list[Any]) -> Any:
    arity("mailbox_receive", args, 1)
    box = _box(vm, "mailbox_receive", args[0])
    was_ready = bool(box.channel.items)
    value = await box.channel.receive()
    if was_ready or value is not None:
        box.stats["received_count"] += 1
    return value


@builtin("mailbox_try_receive")
def _mailbox_try_receive(vm: Any, args: list[Any]) -> Any:
    arity("mailbox_try_receive", args, 1)
    box = _box(vm, "mailbox_try_receive", args[0])
    if not box.channel.items:
        return None
    box.stats["received_count"] += 1
    return box.channel.take()


@builtin("mailbox_close")
def _mailbox_close(vm: Any, args: list[Any]) -> None:
    arity("mailbox_close", args, 1)
    _box(vm, "mailbox_close", args[0]).channel.close()


@builtin("mailbox_metrics")
def _mailbox_metrics(vm: Any, args: list[Any]) -> dict[str, Any]:
    arity("mailbox_metrics", args, 1)
    box = _box(vm, "mailbox_metrics", args[0])
    ch = box.channel
    return {"depth": len(ch.items), "capacity": ch.capacity, "closed": ch.closed, **box.stats}
