"""Synchronisation, supervisors and streams under load: many interleaved tasks,
cancellation, exceptions and timeouts, on stock asyncio and on uvloop."""

# ruff: noqa: E501

from __future__ import annotations

import pytest
from vm_harness import LOOPS, assert_runs

pytestmark = pytest.mark.parametrize("loop", LOOPS)


def test_mutex_block_many_tasks(loop: str) -> None:
    """50 interleaving tasks doing a read-sleep-write under `mutex` lose no update."""
    assert_runs(
        "var count = 0\nvar inside = 0\nvar most = 0\nparallel 50 { i ->\n  mutex {\n    inside += 1\n    most = max(most, inside)\n    let seen = count\n    sleep((i % 3) * 1ms)\n    count = seen + 1\n    inside -= 1\n  }\n}\nprintln(count, most)",
        "50 1\n",
        loop=loop,
    )


def test_semaphore_caps_and_is_fifo(loop: str) -> None:
    """A capacity-3 semaphore never has more than 3 holders and admits waiters in arrival order."""
    assert_runs(
        'var holders = 0\nvar peak = 0\nvar order = []\nparallel 12 { i ->\n  sleep(i * 1ms)\n  let p = sync_semaphore_acquire("s", 3)\n  order = order.push(i)\n  holders += 1\n  peak = max(peak, holders)\n  sleep(10ms)\n  holders -= 1\n  sync_release(p)\n}\nprintln(peak, order == range(12).to_list(), sync_metrics("semaphore", "s").max_queue_depth > 0)',
        "3 true true\n",
        loop=loop,
    )


def test_timeouts_return_nil_and_are_counted(loop: str) -> None:
    """Waiters whose timeout passes get nil; the holder's release still admits the others."""
    assert_runs(
        'let held = sync_mutex_acquire("m")\nlet got = parallel 6 { i -> sync_mutex_acquire("m", (i + 1) * 10ms) }\nprintln(got.filter({ p -> p == nil }).count, sync_metrics("mutex", "m").timeout_count)\nsync_release(held)\nprintln(sync_mutex_acquire("m", 1ms) != nil)',
        "6 6\ntrue\n",
        loop=loop,
    )


def test_cancelled_waiter_leaves_the_queue(loop: str) -> None:
    """Cancelling a task parked on a mutex counts a cancellation and keeps the mutex usable."""
    assert_runs(
        'let held = sync_mutex_acquire("c")\nlet waiter = spawn { sync_mutex_acquire("c") }\nsleep(1ms)\ncancel(waiter)\nsleep(1ms)\nlet m = sync_metrics("mutex", "c")\nprintln(m.cancellation_count, m.current_queue_depth)\nsync_release(held)\nprintln(sync_mutex_acquire("c", 1ms) != nil)',
        "1 0\ntrue\n",
        loop=loop,
    )


def test_throw_inside_mutex_releases_it(loop: str) -> None:
    """A throw out of a `mutex` body releases the mutex for the next task."""
    assert_runs(
        'let r = parallel settle [1, 2, 3] { x ->\n  mutex {\n    sleep(1ms)\n    if x == 2 { throw "bad" }\n    x\n  }\n}\nprintln(r.succeeded, r.failed, sync_metrics("mutex", "__default__").current_held)',
        "2 1 0\n",
        loop=loop,
    )


def test_deadline_inside_mutex_releases_it(loop: str) -> None:
    """A deadline expiring while the mutex is held releases it on the way out."""
    assert_runs(
        'try { deadline 5ms { mutex { sleep(1s) } } } catch (e) { println("timed out") }\nprintln(sync_mutex_acquire(nil, 1ms) != nil)',
        "timed out\ntrue\n",
        loop=loop,
    )


def test_rwlock_readers_share_writers_exclude(loop: str) -> None:
    """Readers overlap; a writer waits for them and excludes everyone."""
    assert_runs(
        'var readers = 0\nvar most_readers = 0\nvar writer_saw = -1\nparallel 6 { i ->\n  if i == 5 {\n    sleep(1ms)\n    let w = sync_rwlock_acquire("k", "write")\n    writer_saw = readers\n    sync_release(w)\n  } else {\n    let r = sync_rwlock_acquire("k", "read")\n    readers += 1\n    most_readers = max(most_readers, readers)\n    sleep(5ms)\n    readers -= 1\n    sync_release(r)\n  }\n}\nprintln(most_readers, writer_saw)',
        "5 0\n",
        loop=loop,
    )


def test_supervisor_restarts_then_stop_cancels(loop: str) -> None:
    """A child restarted on each failure runs again; supervisor_stop cancels a long-running one."""
    assert_runs(
        'var runs = atomic(0)\nlet s = supervisor_start({name: "s", children: [\n  {name: "flaky", restart: {mode: "on_failure", max_restarts: 5, backoff_ms: 1}, task: { c -> atomic_add(runs, 1)\n if c.attempt < 3 { throw "boom" } }},\n  {name: "forever", restart: {mode: "always"}, task: { c -> sleep(1h) }}\n]})\nsleep(50ms)\nlet st = supervisor_stop(s, 1s)\nprintln(atomic_get(runs), st.children.map({ c -> c.status }), supervisor_metrics(s).failed)',
        "3 [stopped, stopped] 2\n",
        loop=loop,
    )


def test_parallel_stream_delivers_in_completion_order(loop: str) -> None:
    """`parallel each ... as stream` yields results as branches finish."""
    assert_runs(
        "let xs = [40, 10, 30, 20, 5]\nvar got = []\nfor r in parallel each xs { ms -> sleep(ms)\nms } as stream { got = got.push(r) }\nprintln(got)",
        "[5, 10, 20, 30, 40]\n",
        loop=loop,
    )


def test_mailboxes_between_many_tasks(loop: str) -> None:
    """Twenty senders to one mailbox: every message arrives once."""
    assert_runs(
        'let box = mailbox_open("inbox", 4)\nparallel 20 { i -> spawn { mailbox_send("inbox", i) } }\nvar total = 0\nfor i in range(20) { total += mailbox_receive(box) }\nprintln(total, mailbox_metrics(box).received_count)',
        "190 20\n",
        loop=loop,
    )


def test_cancel_runs_finally_and_defer_not_catch(loop: str) -> None:
    """A cancelled task runs its `finally` and `defer` bodies; no `catch` takes the cancellation."""
    assert_runs(
        'fn work() {\n  defer { println("deferred") }\n  try { sleep(1s) } catch (e) { println("caught?") } finally { println("finally") }\n}\nlet h = spawn { work() }\nsleep(1ms)\ncancel(h)\nsleep(1ms)\nprintln(is_done(h))',
        "finally\ndeferred\ntrue\n",
        loop=loop,
    )


def test_deadline_cancels_through_nested_finally(loop: str) -> None:
    """A deadline unwinds nested fns, running each finally once, innermost first."""
    assert_runs(
        'fn inner() { try { sleep(1s) } finally { println("inner") } }\nfn outer() { try { inner() } finally { println("outer") } }\ntry { deadline 5ms { outer() } } catch (e) { println(e) }',
        "inner\nouter\ndeadline exceeded (5ms)\n",
        loop=loop,
    )
