"""Named synchronisation: `sync_mutex_acquire`, `sync_semaphore_acquire`,
`sync_gate_acquire`, `sync_rwlock_acquire`, `sync_release`, `sync_metrics`
(and the `mutex { }` block, which the parser lowers onto the first two).

Every primitive is a FIFO queue of waiters on the VM's event loop, shared by
all tasks of one run (spawned tasks and parallel branches included). An
acquire that times out returns nil; one cancelled while waiting re-raises
the cancellation. A permit is released once: the second `sync_release` is
false.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.registry import arity, builtin, want

__all__ = ("Permit", "Primitive")

_METRICS = (
    "acquisition_count",
    "timeout_count",
    "cancellation_count",
    "release_count",
    "current_held",
    "current_queue_depth",
    "max_queue_depth",
    "total_wait_ms",
    "total_held_ms",
)


class Permit:
    """What an acquire returns; pass it to `sync_release`."""

    __slots__ = ("acquired_at", "key", "kind", "mode", "prim", "released", "weight")

    def __init__(self, prim: Primitive, weight: int, mode: str, now: float) -> None:
        self.prim = prim
        self.kind = prim.kind
        self.key = prim.key
        self.weight = weight
        self.mode = mode
        self.released = False
        self.acquired_at = now

    def harn_display(self) -> str:
        return f"<permit {self.kind}:{self.key}>"

    def harn_type(self) -> str:
        return "permit"

    def harn_attr(self, name: str) -> Any:
        if name in ("kind", "key", "mode"):
            return getattr(self, name)
        if name == "permits":
            return self.weight
        raise HarnRuntimeError(f"permit has no field '{name}'")


class Primitive:
    """One named mutex / semaphore / gate / rwlock and its FIFO of waiters."""

    def __init__(self, kind: str, key: str, capacity: int) -> None:
        self.kind = kind
        self.key = key
        self.capacity = capacity
        self.used = 0  # weight held (readers count 1 each; a writer holds all)
        self.writer = False
        self.waiters: deque[tuple[int, str, asyncio.Future[None]]] = deque()
        self.stats = dict.fromkeys(_METRICS, 0)

    def fits(self, weight: int, mode: str) -> bool:
        if self.kind == "rwlock":
            return not self.writer and (self.used == 0 if mode == "write" else True)
        return self.used + weight <= self.capacity

    def take(self, weight: int, mode: str) -> None:
        self.used += weight
        if mode == "write":
            self.writer = True
        self.stats["acquisition_count"] += 1
        self.stats["current_held"] = self.used

    def wake(self) -> None:
        """Grant waiters in arrival order while the head of the queue fits."""
        while self.waiters:
            weight, mode, fut = self.waiters[0]
            if fut.done():
                self.waiters.popleft()
                continue
            if not self.fits(weight, mode):
                return
            self.waiters.popleft()
            self.take(weight, mode)
            fut.set_result(None)
        self.stats["current_queue_depth"] = 0

    async def acquire(self, weight: int, mode: str, timeout_ms: float | None) -> Permit | None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        if not self.waiters and self.fits(weight, mode):
            self.take(weight, mode)
            return Permit(self, weight, mode, start)
        fut: asyncio.Future[None] = loop.create_future()
        entry = (weight, mode, fut)
        self.waiters.append(entry)
        depth = len(self.waiters)
        self.stats["current_queue_depth"] = depth
        self.stats["max_queue_depth"] = max(self.stats["max_queue_depth"], depth)
        try:
            if timeout_ms is None:
                await asyncio.shield(fut)
            else:
                await asyncio.wait_for(asyncio.shield(fut), max(timeout_ms, 0) / 1000)
        except TimeoutError:
            if fut.done():  # granted at the last moment: keep it
                return self._granted(weight, mode, start, loop.time())
            fut.cancel()
            self._drop(entry)
            self.stats["timeout_count"] += 1
            return None
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release_weight(weight, mode)
            else:
                fut.cancel()
                self._drop(entry)
            self.stats["cancellation_count"] += 1
            raise
        return self._granted(weight, mode, start, loop.time())

    def _granted(self, weight: int, mode: str, start: float, now: float) -> Permit:
        self.stats["total_wait_ms"] += int((now - start) * 1000)
        return Permit(self, weight, mode, now)

    def _drop(self, entry: tuple[int, str, asyncio.Future[None]]) -> None:
        try:
            self.waiters.remove(entry)
        except ValueError:
            pass
        self.stats["current_queue_depth"] = len(self.waiters)
        self.wake()  # a timed-out head may have been blocking smaller requests

    def release_weight(self, weight: int, mode: str) -> None:
        self.used -= weight
        if mode == "write":
            self.writer = False
        self.stats["release_count"] += 1
        self.stats["current_held"] = self.used
        self.wake()


def _registry(vm: Any) -> dict[tuple[str, str], Primitive]:
    reg: dict[tuple[str, str], Primitive] = vm.state.setdefault("sync", {})
    return reg


def _primitive(vm: Any, kind: str, key: str, capacity: int) -> Primitive:
    reg = _registry(vm)
    prim = reg.get((kind, key))
    if prim is None:
        prim = reg[(kind, key)] = Primitive(kind, key, capacity)
    return prim


def _timeout(name: str, v: Any) -> float | None:
    if v is None:
        return None
    return float(want(name, v, int, float, what="a timeout (ms or a duration)"))


def _key(name: str, args: list[Any]) -> str:
    return want(name, args[0], str) if args and args[0] is not None else "__default__"


@builtin("sync_mutex_acquire", is_async=True)
async def _mutex(vm: Any, args: list[Any]) -> Permit | None:
    arity("sync_mutex_acquire", args, 0, 2)
    key = _key("sync_mutex_acquire", args)
    prim = _primitive(vm, "mutex", key, 1)
    return await prim.acquire(
        1, "", _timeout("sync_mutex_acquire", args[1] if len(args) > 1 else None)
    )


def _positive(name: str, v: Any, what: str) -> int:
    n: int = want(name, v, int, what=what)
    if n < 1:
        raise HarnRuntimeError(f"{name}(): {what} must be at least 1, got {n}")
    return n


@builtin("sync_semaphore_acquire", is_async=True)
async def _semaphore(vm: Any, args: list[Any]) -> Permit | None:
    name = "sync_semaphore_acquire"
    arity(name, args, 2, 4)
    capacity = _positive(name, args[1], "the capacity")
    permits = _positive(name, args[2], "permits") if len(args) > 2 and args[2] is not None else 1
    if permits > capacity:
        raise HarnRuntimeError(
            f"{name}(): {permits} permits can never fit a capacity of {capacity}"
        )
    prim = _primitive(vm, "semaphore", want(name, args[0], str), capacity)
    return await prim.acquire(permits, "", _timeout(name, args[3] if len(args) > 3 else None))


@builtin("sync_gate_acquire", is_async=True)
async def _gate(vm: Any, args: list[Any]) -> Permit | None:
    name = "sync_gate_acquire"
    arity(name, args, 2, 3)
    prim = _primitive(vm, "gate", want(name, args[0], str), _positive(name, args[1], "the limit"))
    return await prim.acquire(1, "", _timeout(name, args[2] if len(args) > 2 else None))


@builtin("sync_rwlock_acquire", is_async=True)
async def _rwlock(vm: Any, args: list[Any]) -> Permit | None:
    name = "sync_rwlock_acquire"
    arity(name, args, 2, 3)
    mode = want(name, args[1], str)
    if mode not in ("read", "write"):
        raise HarnRuntimeError(f'{name}(): mode must be "read" or "write", got {mode!r}')
    prim = _primitive(vm, "rwlock", want(name, args[0], str), 1)
    return await prim.acquire(1, mode, _timeout(name, args[2] if len(args) > 2 else None))


@builtin("sync_release")
def _release(vm: Any, args: list[Any]) -> bool:
    arity("sync_release", args, 1)
    permit = want("sync_release", args[0], Permit, what="a permit (from sync_*_acquire)")
    if permit.released:
        return False
    permit.released = True
    held_ms = int((asyncio.get_running_loop().time() - permit.acquired_at) * 1000)
    permit.prim.stats["total_held_ms"] += held_ms
    permit.prim.release_weight(permit.weight, permit.mode)
    return True


def _metrics(prim: Primitive) -> dict[str, Any]:
    return {"kind": prim.kind, "key": prim.key, **prim.stats}


@builtin("sync_metrics")
def _sync_metrics(vm: Any, args: list[Any]) -> Any:
    arity("sync_metrics", args, 0, 2)
    kind = want("sync_metrics", args[0], str) if args and args[0] is not None else None
    key = want("sync_metrics", args[1], str) if len(args) > 1 and args[1] is not None else None
    reg = _registry(vm)
    if kind is not None and key is not None:
        prim = reg.get((kind, key))
        return None if prim is None else _metrics(prim)
    return [
        _metrics(p)
        for (k, name), p in sorted(reg.items())
        if (kind is None or k == kind) and (key is None or name == key)
    ]
