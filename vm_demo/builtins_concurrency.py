"""Concurrency builtins: spawn/await/cancel, parallel, deadline, channels,
select, atomics, sleep and (virtual) time.

`spawn` and `parallel` go through the library's traced boundaries
(`traced_spawn`, `traced_parallel`) so each task runs under its own detached
`spawn` span linked to where it came from.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harn_async_trace import (
    MockClockError,
    SystemClock,
    active_mock_clock,
    traced_parallel,
    traced_spawn,
)
from harn_async_trace.clock import advance_time, mock_time
from harn_async_trace.loop import loop_clock
from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import Atomic, Channel, ChannelClosed, Closure, Result, TaskHandle, to_display
from vm_demo.registry import arity, builtin, want

__all__ = ("release_mock_time",)

# -- tasks ---------------------------------------------------------------------------------


def _retrieve(task: asyncio.Task[Any]) -> None:
    # A spawned task nobody awaits must not log "exception never retrieved".
    if not task.cancelled():
        task.exception()


@builtin("__spawn")
def _spawn(vm: Any, args: list[Any]) -> TaskHandle:
    closure, label = args
    task = traced_spawn(vm.call(closure, []), name=label)
    task.add_done_callback(_retrieve)
    return TaskHandle(task)


def _handle(name: str, v: Any) -> TaskHandle:
    return want(name, v, TaskHandle, what="a task handle (from spawn)")


@builtin("await", "await_task", is_async=True)
async def _await(vm: Any, args: list[Any]) -> Any:
    arity("await", args, 1)
    task = _handle("await", args[0]).task
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled() and not _current_cancelling():
            raise HarnRuntimeError("awaited task was cancelled") from None
        raise


def _current_cancelling() -> bool:
    t = asyncio.current_task()
    return t is not None and t.cancelling() > 0


@builtin("cancel")
def _cancel(vm: Any, args: list[Any]) -> bool:
    arity("cancel", args, 1)
    return _handle("cancel", args[0]).task.cancel()


@builtin("is_done")
def _is_done(vm: Any, args: list[Any]) -> bool:
    arity("is_done", args, 1)
    return _handle("is_done", args[0]).task.done()


@builtin("__parallel", is_async=True)
async def _parallel(vm: Any, args: list[Any]) -> Any:
    mode, subject, options, closure, label = args
    mode, _, stream = mode.partition(":")
    if mode == "count":
        count = want("parallel", subject, int, what="a task count")
        items: list[Any] = list(range(count))
    else:
        items = list(want(f"parallel {mode}", subject, list, what="a list"))
    limit = None
    if options is not None:
        mc = want("parallel", options, dict).get("max_concurrent")
        if mc is not None and want("max_concurrent", mc, int) > 0:
            limit = mc
    takes_arg = not isinstance(closure, Closure) or bool(closure.code.params)
    if stream:
        return _stream(vm, closure, items, takes_arg, limit, label)
    branches = [vm.call(closure, [x] if takes_arg else []) for x in items]
    settle = mode == "settle"
    results = await traced_parallel(branches, max_concurrent=limit, settle=settle, name=label)
    if not settle:
        return results
    out: list[Result] = []
    for r in results:
        if isinstance(r, HarnRuntimeError):
            # Harn reports a thrown string as its error text, `Thrown: <value>`.
            thrown_text = r.thrown and isinstance(r.value, str)
            out.append(Result(False, f"Thrown: {r.value}" if thrown_text else r.value))
        elif isinstance(r, BaseException):
            out.append(Result(False, str(r)))
        else:
            out.append(Result(True, r))
    ok = sum(1 for r in out if r.ok)
    return {"results": out, "succeeded": ok, "failed": len(out) - ok}


def _stream(
    vm: Any, closure: Any, items: list[Any], takes_arg: bool, limit: int | None, label: str
) -> Channel:
    """`parallel ... as stream`: a channel receiving each result as its branch finishes.

    The fan-out runs in a task of its own (under the current span, so its
    `parallel` span nests as usual); the channel closes when every branch is done.
    """
    out = Channel(label, 0)

    async def branch(x: Any) -> Any:
        r = await vm.call(closure, [x] if takes_arg else [])
        await out.send(r)
        return r

    async def fan_out() -> None:
        try:
            await traced_parallel([branch(x) for x in items], max_concurrent=limit, name=label)
        finally:
            out.close()

    task = asyncio.get_running_loop().create_task(fan_out())
    task.add_done_callback(_retrieve)
    return out


@builtin("__deadline", is_async=True)
async def _deadline(vm: Any, args: list[Any]) -> Any:
    duration, closure = args
    ms = want("deadline", duration, int, float, what="a duration")
    try:
        async with asyncio.timeout(ms / 1000):
            return await vm.call(closure, [])
    except TimeoutError:
        err = HarnRuntimeError(f"deadline exceeded ({to_display(duration)})")
        err.cancelled = True  # spans it unwinds on its way out were cut short, not failed
        raise err from None


# -- time ---------------------------------------------------------------------------------


def _ms(name: str, v: Any) -> float:
    return float(want(name, v, int, float, what="milliseconds or a duration"))


@builtin("sleep", "sleep_ms", is_async=True)
async def _sleep(vm: Any, args: list[Any]) -> None:
    arity("sleep", args, 1)
    await asyncio.sleep(max(0.0, _ms("sleep", args[0])) / 1000)


def _clock() -> Any:
    return active_mock_clock() or SystemClock()


@builtin("now_ms", "timestamp")
def _now_ms(vm: Any, args: list[Any]) -> int:
    return int(_clock().wall_ns() // 1_000_000)


@builtin("monotonic_ms")
def _monotonic_ms(vm: Any, args: list[Any]) -> int:
    return int(_clock().monotonic_ns() // 1_000_000)


@builtin("mock_time")
def _mock_time(vm: Any, args: list[Any]) -> None:
    """Switch to virtual time at wall-clock `ms`; the running loop follows it."""
    arity("mock_time", args, 0, 1)
    start = int(want("mock_time", args[0], int)) if args else 1_700_000_000_000
    if loop_clock() is not None:
        # Already on virtual time (e.g. `harn-trace run --mock-time`): the loop's
        # clock cannot be swapped mid-run, so keep it; time stays virtual.
        vm.state.setdefault("mock_scopes", []).append(None)
        return
    scope = mock_time(start_wall_ms=start)
    try:
        scope.__enter__()
    except MockClockError as e:
        raise HarnRuntimeError(f"mock_time(): {e}") from None
    vm.state.setdefault("mock_scopes", []).append(scope)


@builtin("advance_time")
def _advance_time(vm: Any, args: list[Any]) -> None:
    arity("advance_time", args, 1)
    try:
        advance_time(_ms("advance_time", args[0]) / 1000)
    except MockClockError:
        raise HarnRuntimeError("advance_time() needs mock time: call mock_time(ms) first") from None
    except ValueError as e:
        raise HarnRuntimeError(f"advance_time(): {e}") from None


@builtin("unmock_time")
def _unmock_time(vm: Any, args: list[Any]) -> None:
    scopes = vm.state.get("mock_scopes") or []
    scope = scopes.pop() if scopes else None
    if scope is not None:
        scope.__exit__(None, None, None)


def release_mock_time(vm: Any) -> None:
    """Undo every `mock_time()` the program left active (called when a run ends)."""
    scopes = vm.state.get("mock_scopes") or []
    while scopes:
        scope = scopes.pop()
        if scope is not None:
            scope.__exit__(None, None, None)


# -- channels ------------------------------------------------------------------------------


@builtin("channel")
def _channel(vm: Any, args: list[Any]) -> Channel:
    arity("channel", args, 0, 2)
    name = want("channel", args[0], str) if args else "channel"
    cap = want("channel", args[1], int) if len(args) > 1 else 0
    return Channel(name, cap)


def _chan(name: str, v: Any) -> Channel:
    return want(name, v, Channel, what="a channel")


@builtin("send", is_async=True)
async def _send(vm: Any, args: list[Any]) -> bool:
    arity("send", args, 2)
    try:
        await _chan("send", args[0]).send(args[1])
    except ChannelClosed:
        return False  # Harn: sending on a closed channel is refused, not an error
    return True


@builtin("receive", is_async=True)
async def _receive(vm: Any, args: list[Any]) -> Any:
    arity("receive", args, 1)
    return await _chan("receive", args[0]).receive()


@builtin("try_receive")
def _try_receive(vm: Any, args: list[Any]) -> Any:
    arity("try_receive", args, 1)
    ch = _chan("try_receive", args[0])
    return ch.take() if ch.items else None


@builtin("close_channel", "close")
def _close(vm: Any, args: list[Any]) -> None:
    arity("close_channel", args, 1)
    _chan("close_channel", args[0]).close()


@builtin("__select", is_async=True)
async def _select(vm: Any, args: list[Any]) -> list[Any]:
    """Wait for the first ready channel -> [index, value]; [-1, nil] on timeout."""
    channels = [_chan("select", c) for c in args[0]]
    timeout = args[1]
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + _ms("select", timeout) / 1000
    while True:
        for i, ch in enumerate(channels):
            if ch.ready():
                return [i, ch.take()]
        remaining = None if deadline is None else deadline - loop.time()
        if remaining is not None and remaining <= 0:
            return [-1, None]
        waiters = [ch.changed() for ch in channels]
        await asyncio.wait(waiters, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)


@builtin("channel_select", is_async=True)
async def _channel_select(vm: Any, args: list[Any]) -> dict[str, Any]:
    arity("channel_select", args, 1, 2)
    chans = want("channel_select", args[0], list)
    idx, value = await _select(vm, [chans, args[1] if len(args) > 1 else None])
    return {"index": idx, "value": value, "channel": chans[idx] if idx >= 0 else None}


# -- atomics -------------------------------------------------------------------------------


def _atomic(name: str, v: Any) -> Atomic:
    return want(name, v, Atomic, what="an atomic")


@builtin("atomic_get")
def _atomic_get(vm: Any, args: list[Any]) -> Any:
    arity("atomic_get", args, 1)
    v = args[0]
    # A number is what atomic_add returns; reading it back gives itself.
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v
    return _atomic("atomic_get", v).value


@builtin("atomic")
def _atomic_new(vm: Any, args: list[Any]) -> Atomic:
    arity("atomic", args, 0, 1)
    return Atomic(args[0] if args else 0)


@builtin("atomic_set")
def _atomic_set(vm: Any, args: list[Any]) -> Atomic:
    arity("atomic_set", args, 2)
    a = _atomic("atomic_set", args[0])
    a.value = args[1]
    return a


@builtin("atomic_add")
def _atomic_add(vm: Any, args: list[Any]) -> Any:
    """Add to the atomic and return the new value."""
    # One event loop thread runs all tasks and this handler never awaits,
    # so the read-modify-write cannot interleave with another task.
    arity("atomic_add", args, 2)
    a = _atomic("atomic_add", args[0])
    a.value = a.value + want("atomic_add", args[1], int, float)
    return a.value


@builtin("atomic_cas")
def _atomic_cas(vm: Any, args: list[Any]) -> bool:
    arity("atomic_cas", args, 3)
    a = _atomic("atomic_cas", args[0])
    if a.value == args[1]:
        a.value = args[2]
        return True
    return False


@builtin("select", is_async=True)
async def _select_builtin(vm: Any, args: list[Any]) -> dict[str, Any] | None:
    """`select(ch1, ch2, ...)`: the first value to arrive as {index, value, channel}.

    Nil once every channel is closed and drained.
    """
    chans = [_chan("select", c) for c in args]
    if not chans:
        raise HarnRuntimeError("select() needs at least one channel")
    while True:
        for i, ch in enumerate(chans):
            if ch.items:
                return {"index": i, "value": ch.take(), "channel": ch}
        if all(ch.closed for ch in chans):
            return None
        await asyncio.wait([ch.changed() for ch in chans], return_when=asyncio.FIRST_COMPLETED)
