"""Issue 15: the same programs on a real loop and on the virtual loop, stock asyncio and uvloop.

Each program logs what it observes, in order, and returns the virtual time
it should take: the sum of the sleeps (and timeouts) it asks the loop for.
Real work beside the loop (threads, executor jobs, a subprocess, loopback
TCP and TLS, DNS for ``"localhost"``) takes no virtual time. On a real loop
the program must log the same events in the same order; on the virtual one
it must, and its virtual elapsed time must be exactly what it asked for.

Real-loop runs use short sleeps. Where real work races a loop timer the
margin is wide (a 20 ms thread against a 5 s timeout); where two loop
timers race, they are far enough apart that a loaded machine's real loop
still fires them in deadline order.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import uvloop

from harn_async_trace import MockClock
from harn_async_trace.loop import virtual_loop_factory

Log = Callable[[object], None]
Program = Callable[[Log], Awaitable[float]]

DATA = Path(__file__).parent / "data"
PROGRAMS: dict[str, Program] = {}


def program(fn: Program) -> Program:
    PROGRAMS[fn.__name__] = fn
    return fn


def _run(
    make_loop: Callable[[], asyncio.AbstractEventLoop], prog: Program
) -> tuple[list[object], float, float]:
    events: list[object] = []

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        expected = await prog(events.append)
        return expected, loop.time() - start

    with asyncio.Runner(loop_factory=make_loop) as runner:
        expected, elapsed = runner.run(main())
    return events, expected, elapsed


# -- the programs ------------------------------------------------------------------


@program
async def equal_deadlines(log: Log) -> float:
    async def sleeper(i: int) -> None:
        await asyncio.sleep(0.01)
        log(i)

    await asyncio.gather(*(sleeper(i) for i in range(20)))
    return 0.01


@program
async def call_soon_and_call_later_zero(log: Log) -> float:
    loop = asyncio.get_running_loop()
    loop.call_soon(log, "soon-1")
    loop.call_later(0, log, "later-0")
    loop.call_at(loop.time(), log, "at-now")
    loop.call_soon(log, "soon-2")

    def chained() -> None:
        log("timer")
        loop.call_later(0, log, "timer-later-0")
        loop.call_soon(log, "timer-soon")

    loop.call_later(0.01, chained)
    await asyncio.sleep(0.02)
    return 0.02


@program
async def nested_timeouts(log: Log) -> float:
    try:
        # Wide apart: a real loop stalled past both deadlines may fire them in either order.
        async with asyncio.timeout(0.1):
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(1)
            except TimeoutError:
                log("inner")
            await asyncio.sleep(1)
    except TimeoutError:
        log("outer")
    try:
        await asyncio.wait_for(asyncio.sleep(1), 0.005)
    except TimeoutError:
        log("wait_for")
    return 0.105


@program
async def primitives_with_timeouts(log: Log) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    event = asyncio.Event()
    condition = asyncio.Condition()

    async def producer() -> None:
        await asyncio.sleep(0.01)
        await queue.put(1)
        await asyncio.sleep(0.01)
        event.set()
        await asyncio.sleep(0.01)
        async with condition:
            condition.notify_all()

    task = asyncio.create_task(producer())
    for label, waiter, timeout in [
        ("queue-empty", queue.get, 0.005),
        ("queue", queue.get, 1.0),
        ("event", event.wait, 1.0),
    ]:
        try:
            log((label, await asyncio.wait_for(waiter(), timeout)))
        except TimeoutError:
            log((label, "timeout"))
    async with condition:
        try:
            await asyncio.wait_for(condition.wait(), 1.0)
            log("condition")
        except TimeoutError:
            log("condition-timeout")
    await task
    return 0.03


@program
async def task_group_failure(log: Log) -> float:
    async def fails() -> None:
        await asyncio.sleep(0.01)
        log("raise")
        raise ValueError("boom")

    cancelled: list[int] = []

    async def sleeps(i: int) -> None:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            # A real loop cancels in set order (by address), ours in creation
            # order (replays stay identical): the set is what must match.
            cancelled.append(i)
            raise

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(3):
                group.create_task(sleeps(i))
            group.create_task(fails())
    except* ValueError as caught:
        log(("group", len(caught.exceptions)))
    log(("cancelled", sorted(cancelled)))
    return 0.01


def _sleepy_job() -> str:
    time.sleep(0.02)
    return "job"


@program
async def executor_job_that_sleeps(log: Log) -> float:
    async with asyncio.timeout(5):
        log(await asyncio.to_thread(_sleepy_job))
    loop = asyncio.get_running_loop()
    log(await asyncio.wait_for(loop.run_in_executor(None, time.sleep, 0.02), 5))
    return 0.0


def _python_busy_job() -> str:
    # Pure Python: the thread keeps wanting the GIL, which the loop holds when it looks.
    until = time.perf_counter() + 0.05
    while time.perf_counter() < until:
        pass
    return "busy"


@program
async def executor_job_running_python(log: Log) -> float:
    async with asyncio.timeout(5):
        log(await asyncio.to_thread(_python_busy_job))
    return 0.0


@program
async def executor_job_that_waits_on_the_loop(log: Log) -> float:
    loop = asyncio.get_running_loop()

    def job(units: int) -> int:
        for _ in range(units):
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0.01), loop).result(10)
        return units

    log(await loop.run_in_executor(None, job, 2))
    future = loop.run_in_executor(None, job, 4)
    try:
        await asyncio.wait_for(asyncio.shield(future), 0.025)
    except TimeoutError:
        log("timeout")
    log(await future)
    return 0.06


@program
async def thread_posting_back(log: Log) -> float:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[str] = loop.create_future()

    def work() -> None:
        time.sleep(0.02)
        loop.call_soon_threadsafe(result.set_result, "posted")

    thread = threading.Thread(target=work)
    thread.start()
    log(await asyncio.wait_for(result, 5))
    await asyncio.to_thread(thread.join)
    return 0.0


@program
async def subprocess_sleep(log: Log) -> float:
    proc = await asyncio.create_subprocess_exec("sleep", "0.1")
    log(await proc.wait())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(0.1); print('out')",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 5)
    log(out)
    return 0.0


async def _echo(log: Log, host: str, ssl_server: ssl.SSLContext | None = None,
                ssl_client: ssl.SSLContext | None = None) -> float:  # fmt: skip
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.readline():
            writer.write(data)
            await writer.drain()
        writer.close()

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ssl_server)
    port = server.sockets[0].getsockname()[1]
    tick_task = asyncio.create_task(ticker())
    try:
        async with asyncio.timeout(5):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl_client, server_hostname="localhost" if ssl_client else None
            )
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(20):
                writer.write(f"{i}\n".encode())
                log(await reader.readline())
            echo_virtual = loop.time() - start
            writer.close()
            await writer.wait_closed()
    finally:
        tick_task.cancel()
        server.close()
        await server.wait_closed()
    log("echoed")
    return echo_virtual  # the caller checks it is 0 on virtual time


@program
async def tcp_echo_ip(log: Log) -> float:
    elapsed = await _echo(log, "127.0.0.1")
    return 0.0 if elapsed == 0 else -elapsed


@program
async def tcp_echo_localhost(log: Log) -> float:
    elapsed = await _echo(log, "localhost")
    return 0.0 if elapsed == 0 else -elapsed


@program
async def tls_echo(log: Log) -> float:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(DATA / "localhost-cert.pem", DATA / "localhost-key.pem")
    client_ctx = ssl.create_default_context(cafile=DATA / "localhost-cert.pem")
    elapsed = await _echo(log, "127.0.0.1", server_ctx, client_ctx)
    return 0.0 if elapsed == 0 else -elapsed


# -- the comparison ---------------------------------------------------------------------

_REAL = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
_REAL_EVENTS: dict[tuple[str, str], list[object]] = {}


@pytest.mark.parametrize("flavour", ["asyncio", "uvloop"])
@pytest.mark.parametrize("name", list(PROGRAMS))
def test_same_events_as_a_real_loop_and_exact_virtual_time(name: str, flavour: str) -> None:
    prog = PROGRAMS[name]
    key = (name, flavour)
    if key not in _REAL_EVENTS:
        _REAL_EVENTS[key] = _run(_REAL[flavour], prog)[0]
    real_events = _REAL_EVENTS[key]
    virtual = virtual_loop_factory(MockClock(), use_uvloop=flavour == "uvloop")
    for _ in range(3):  # a few times: a race would show as a flake here
        events, expected, elapsed = _run(virtual, prog)
        assert events == real_events
        assert expected >= 0, f"time moved by {-expected} s during loopback I/O"
        assert round(elapsed, 9) == round(expected, 9)
