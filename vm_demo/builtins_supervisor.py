"""Supervisor trees: `supervisor_start`, `supervisor_state`, `supervisor_events`,
`supervisor_metrics`, `supervisor_stop`.

Each child runs in its own task through `traced_spawn`, so its work sits
under a detached `spawn` span named `supervisor {name}/{child}` linked to
the `supervisor_start` call. The child's `task` closure is called with
`{supervisor_id, child_name, child_kind, attempt, restart_count}`; when it
returns or throws, the restart policy (`mode` never / on_failure / always,
`max_restarts` within `window_ms`, `backoff_ms` times `factor` per restart
up to `max_backoff_ms`) decides whether it runs again. Every strategy
restarts only the child that ended (one_for_one); the strategy is recorded
in the state.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harn_async_trace import traced_spawn
from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import Duration, to_display
from vm_demo.registry import arity, builtin, want

__all__ = ("Child", "Supervisor")

_STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one", "escalate_to_parent")
_MODES = ("never", "on_failure", "always")


class Child:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.name = want("supervisor child", spec.get("name"), str, what="a child name")
        self.kind = spec.get("kind") or "task"
        self.task = spec.get("task")
        if self.task is None:
            raise HarnRuntimeError(f"supervisor child '{self.name}' needs a `task` closure")
        restart = spec.get("restart") or {}
        self.mode = restart.get("mode", "on_failure")
        if self.mode not in _MODES:
            raise HarnRuntimeError(
                f"restart mode must be one of {', '.join(_MODES)}, got {to_display(self.mode)}"
            )
        self.max_restarts = int(restart.get("max_restarts", 3))
        self.window_ms = float(restart.get("window_ms", 60_000))
        self.backoff_ms = float(restart.get("backoff_ms", 0))
        self.factor = float(restart.get("factor", 1))
        self.max_backoff_ms = float(restart.get("max_backoff_ms", 30_000))
        self.status = "waiting"
        self.attempt = 0
        self.restart_count = 0
        self.restarts_at: list[float] = []
        self.last_error: Any = None
        self.handle: asyncio.Task[Any] | None = None

    def state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.status,
            "attempt": self.attempt,
            "restart_count": self.restart_count,
            "last_error": self.last_error,
        }


class Supervisor:
    """A started supervisor: its children, lifecycle events and counters."""

    def __init__(self, sid: str, name: str, strategy: str, children: list[Child]) -> None:
        self.id = sid
        self.name = name
        self.strategy = strategy
        self.children = children
        self.events: list[dict[str, Any]] = []
        self.counts = {"started": 0, "stopped": 0, "failed": 0, "restarted": 0, "suppressed": 0}
        self.stopped = False

    def harn_display(self) -> str:
        return f"<supervisor {self.name}>"

    def harn_type(self) -> str:
        return "supervisor"

    def harn_attr(self, name: str) -> Any:
        if name in ("id", "name", "strategy"):
            return getattr(self, name)
        raise HarnRuntimeError(f"supervisor has no field '{name}'")

    def event(self, kind: str, child: Child, **extra: Any) -> None:
        self.events.append({"event": kind, "child": child.name, "attempt": child.attempt, **extra})
        if kind in self.counts:
            self.counts[kind] += 1

    def state(self) -> dict[str, Any]:
        running = any(c.status in ("running", "waiting") for c in self.children)
        return {
            "id": self.id,
            "name": self.name,
            "strategy": self.strategy,
            "status": "running" if running and not self.stopped else "stopped",
            "children": [c.state() for c in self.children],
            "metrics": dict(self.counts),
        }

    async def run_child(self, vm: Any, child: Child) -> None:
        loop = asyncio.get_running_loop()
        while True:
            child.attempt += 1
            child.status = "running"
            self.event("started", child)
            ctx = {
                "supervisor_id": self.id,
                "child_name": child.name,
                "child_kind": child.kind,
                "attempt": child.attempt,
                "restart_count": child.restart_count,
            }
            failed = False
            try:
                await vm.call(child.task, [ctx])
            except asyncio.CancelledError:
                child.status = "stopped"
                self.event("stopped", child)
                raise
            except HarnRuntimeError as e:
                failed = True
                child.last_error = e.value
                self.event("failed", child, error=e.message)
            if not failed:
                self.event("stopped", child)
            if child.mode == "never" or (child.mode == "on_failure" and not failed):
                child.status = "failed" if failed else "stopped"
                return
            now = loop.time() * 1000
            child.restarts_at = [t for t in child.restarts_at if now - t < child.window_ms]
            if len(child.restarts_at) >= child.max_restarts:
                child.status = "suppressed"
                self.event("suppressed", child)
                return
            delay = min(
                child.backoff_ms * child.factor ** len(child.restarts_at), child.max_backoff_ms
            )
            child.status = "waiting"
            if delay > 0:
                await asyncio.sleep(delay / 1000)
            child.restarts_at.append(loop.time() * 1000)
            child.restart_count += 1
            self.event("restarted", child)


def _supervisor(vm: Any, name: str, v: Any) -> Supervisor:
    if isinstance(v, Supervisor):
        return v
    if isinstance(v, str):
        found: Supervisor | None = vm.state.get("supervisors", {}).get(v)
        if found is not None:
            return found
    raise HarnRuntimeError(f"{name}() expected a supervisor handle or id, got {to_display(v)}")


def _retrieve(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()


@builtin("supervisor_start")
def _start(vm: Any, args: list[Any]) -> Supervisor:
    arity("supervisor_start", args, 1)
    spec = want("supervisor_start", args[0], dict)
    name = want("supervisor_start", spec.get("name", "supervisor"), str)
    strategy = spec.get("strategy", "one_for_one")
    if strategy not in _STRATEGIES:
        raise HarnRuntimeError(
            f"strategy must be one of {', '.join(_STRATEGIES)}, got {to_display(strategy)}"
        )
    children = [
        Child(want("supervisor_start", c, dict))
        for c in want("supervisor_start", spec.get("children", []), list)
    ]
    registry = vm.state.setdefault("supervisors", {})
    sup = Supervisor(f"{name}#{len(registry) + 1}", name, strategy, children)
    registry[sup.id] = sup
    registry.setdefault(name, sup)
    for child in children:
        child.handle = traced_spawn(
            sup.run_child(vm, child), name=f"supervisor {name}/{child.name}"
        )
        child.handle.add_done_callback(_retrieve)
    return sup


@builtin("supervisor_state")
def _state(vm: Any, args: list[Any]) -> dict[str, Any]:
    arity("supervisor_state", args, 1)
    return _supervisor(vm, "supervisor_state", args[0]).state()


@builtin("supervisor_events")
def _events(vm: Any, args: list[Any]) -> list[dict[str, Any]]:
    arity("supervisor_events", args, 1)
    return [dict(e) for e in _supervisor(vm, "supervisor_events", args[0]).events]


@builtin("supervisor_metrics")
def _metrics(vm: Any, args: list[Any]) -> dict[str, int]:
    arity("supervisor_metrics", args, 1)
    return dict(_supervisor(vm, "supervisor_metrics", args[0]).counts)


@builtin("supervisor_stop", is_async=True)
async def _stop(vm: Any, args: list[Any]) -> dict[str, Any]:
    """Cancel every child, wait up to `timeout` for them to finish, return the final state."""
    arity("supervisor_stop", args, 1, 2)
    sup = _supervisor(vm, "supervisor_stop", args[0])
    timeout = args[1] if len(args) > 1 else Duration(5000)
    ms = float(want("supervisor_stop", timeout, int, float, what="a timeout"))
    sup.stopped = True
    tasks = [c.handle for c in sup.children if c.handle is not None and not c.handle.done()]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=ms / 1000)
    for c in sup.children:
        if c.status in ("running", "waiting"):
            c.status = "stopped"
    return sup.state()
