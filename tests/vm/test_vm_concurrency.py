"""Concurrency constructs, each on stock asyncio and on uvloop."""

# One line per VM test is the house style (STYLE.md, byterun notes).
# ruff: noqa: E501

from __future__ import annotations

import pytest
from vm_harness import LOOPS, assert_error, assert_runs

pytestmark = pytest.mark.parametrize("loop", LOOPS)


def test_spawn_await(loop: str) -> None:
    """await(h) returns the spawned block's value."""
    assert_runs('let h = spawn { sleep(2ms)\n"done" }\nprintln(await(h))', "done\n", loop=loop)


def test_spawn_runs_concurrently(loop: str) -> None:
    """A spawned task runs while the spawner sleeps."""
    assert_runs(
        'let h = spawn { println("child") }\nsleep(1ms)\nprintln("parent")\nawait(h)',
        "child\nparent\n",
        loop=loop,
    )


def test_await_propagates_error(loop: str) -> None:
    """An error in the task is re-raised by await and catchable."""
    assert_runs(
        'let h = spawn { throw "bad" }\ntry { await(h) } catch (e) { println("caught ${e}") }',
        "caught bad\n",
        loop=loop,
    )


def test_cancel(loop: str) -> None:
    """cancel(h) stops a task; awaiting it then fails."""
    assert_runs(
        'let h = spawn { sleep(10s)\nprintln("never") }\nprintln(cancel(h))\ntry { await(h) } catch (e) { println(e) }',
        "true\nawaited task was cancelled\n",
        loop=loop,
    )


def test_parallel_count_in_order(loop: str) -> None:
    """parallel N returns results in index order even if they finish reversed."""
    assert_runs(
        "println(parallel 4 { i -> sleep((4 - i) * 1ms)\ni * 10 })", "[0, 10, 20, 30]\n", loop=loop
    )


def test_parallel_call_syntax(loop: str) -> None:
    """parallel(N) { } is the same as parallel N { }."""
    assert_runs("println(parallel(3) { i -> i })", "[0, 1, 2]\n", loop=loop)


def test_parallel_each(loop: str) -> None:
    """parallel each maps concurrently, keeping input order."""
    assert_runs(
        "println(parallel each [3, 1, 2] { x -> sleep(x * 1ms)\nx * x })", "[9, 1, 4]\n", loop=loop
    )


def test_parallel_max_concurrent(loop: str) -> None:
    """with { max_concurrent: 2 } caps in-flight branches."""
    assert_runs(
        "let live = atomic(0)\nlet peak = atomic(0)\nparallel each [1, 2, 3, 4, 5] with { max_concurrent: 2 } { x ->\natomic_add(live, 1)\nif atomic_get(live) > atomic_get(peak) { atomic_set(peak, atomic_get(live)) }\nsleep(1ms)\natomic_add(live, -1) }\nprintln(atomic_get(peak))",
        "2\n",
        loop=loop,
    )


def test_parallel_failure_raises(loop: str) -> None:
    """Without settle, the first failure is raised."""
    assert_runs(
        'try { parallel each [1, 2] { x -> if x == 2 { throw "boom" }\nx } } catch (e) { println(e) }',
        "boom\n",
        loop=loop,
    )


def test_parallel_settle(loop: str) -> None:
    """parallel settle collects Ok/Err results and counts."""
    assert_runs(
        'let s = parallel settle [1, 2, 3] { x -> if x == 2 { throw "boom" }\nx }\nprintln(s.succeeded, s.failed, s.results)',
        "2 1 [Result.Ok(1), Result.Err(Thrown: boom), Result.Ok(3)]\n",
        loop=loop,
    )


def test_deadline_ok(loop: str) -> None:
    """A deadline block that finishes in time returns its value."""
    assert_runs("println(deadline 1s { 42 })", "42\n", loop=loop)


def test_deadline_exceeded(loop: str) -> None:
    """An expired deadline throws a catchable error."""
    assert_runs(
        "try { deadline 5ms { sleep(10s) } } catch (e) { println(e) }",
        "deadline exceeded (5ms)\n",
        loop=loop,
    )


def test_channel_send_receive(loop: str) -> None:
    """send/receive pass values in FIFO order."""
    assert_runs(
        'let ch = channel("c", 2)\nsend(ch, 1)\nsend(ch, 2)\nprintln(receive(ch), receive(ch), try_receive(ch))',
        "1 2 nil\n",
        loop=loop,
    )


def test_channel_iteration_until_closed(loop: str) -> None:
    """for x in ch drains the channel and ends when it is closed."""
    assert_runs(
        'let ch = channel("c", 1)\nspawn { for i in range(4) { send(ch, i) }\nclose_channel(ch) }\nvar got = []\nfor m in ch { got = got.push(m) }\nprintln(got)',
        "[0, 1, 2, 3]\n",
        loop=loop,
    )


def test_worker_pool_via_channels(loop: str) -> None:
    """Workers pull jobs from a channel; results come back on another."""
    assert_runs(
        'let jobs = channel("jobs", 10)\nlet results = channel("results", 10)\nfor j in range(6) { send(jobs, j) }\nclose_channel(jobs)\nlet ws = parallel 3 { w -> for j in jobs { send(results, j * j) } }\nclose_channel(results)\nvar total = 0\nfor r in results { total += r }\nprintln(total)',
        "55\n",
        loop=loop,
    )


def test_select_picks_ready_channel(loop: str) -> None:
    """select runs the case of the channel that has a message."""
    assert_runs(
        'let a = channel("a")\nlet b = channel("b")\nsend(b, "hi")\nselect {\n  m from a { println("a ${m}") }\n  m from b { println("b ${m}") }\n}',
        "b hi\n",
        loop=loop,
    )


def test_select_waits_for_sender(loop: str) -> None:
    """select blocks until a spawned task sends."""
    assert_runs(
        'let a = channel("a")\nspawn { sleep(2ms)\nsend(a, 7) }\nlet v = select { m from a { m * 2 } }\nprintln(v)',
        "14\n",
        loop=loop,
    )


def test_select_timeout(loop: str) -> None:
    """The timeout case runs when nothing arrives."""
    assert_runs(
        'let a = channel("a")\nlet v = select {\n  m from a { "msg" }\n  timeout 5ms { "timeout" }\n}\nprintln(v)',
        "timeout\n",
        loop=loop,
    )


def test_atomics(loop: str) -> None:
    """Atomic counters are shared across parallel branches."""
    assert_runs(
        "let c = atomic(0)\nparallel 20 { i -> atomic_add(c, 1) }\nprintln(atomic_get(c), atomic_cas(c, 20, 0), atomic_get(c))",
        "20 true 0\n",
        loop=loop,
    )


def test_sleep_accepts_durations(loop: str) -> None:
    """sleep takes ints (ms) and durations."""
    assert_runs('sleep(1)\nsleep(1ms)\nsleep_ms(1)\nprintln("ok")', "ok\n", loop=loop)


def test_await_needs_a_task(loop: str) -> None:
    """await on a non-task fails clearly."""
    assert_error("await(1)", "await() expected a task handle (from spawn), got int (1)", line=1)


def test_real_time_loops_too(loop: str) -> None:
    """The constructs also work on plain (non-virtual) asyncio and uvloop loops."""
    from vm_harness import run

    src = 'let ch = channel("c")\nlet h = spawn { sleep(2ms)\nsend(ch, 1) }\nlet r = parallel 2 { i -> sleep(1ms)\ni }\nlet m = select { v from ch { v }\ntimeout 1s { -1 } }\nprintln(r, m, await(h))'
    out, _ = run(src, loop=loop, virtual=False)
    assert out == "[0, 1] 1 true\n"


def test_virtual_time_makes_long_sleeps_instant(loop: str) -> None:
    """Under the virtual loop an hour-long sleep is exact and instant."""
    assert_runs(
        "let t = monotonic_ms()\nsleep(1h)\nprintln(monotonic_ms() - t)", "3600000\n", loop=loop
    )
