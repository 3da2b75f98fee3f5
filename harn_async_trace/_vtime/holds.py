"""``WorkWatch``: the real work a virtual loop can see, and whether any of it is running.

The loop may jump to its next deadline only when nothing is ready on it and
none of this work is really running (docs/virtual-time.md, "When time
jumps"). The work a loop can see:

* executor jobs it submitted (``run_in_executor``, so ``asyncio.to_thread``
  and stock asyncio's ``getaddrinfo``), in whichever thread runs them; a job
  still queued counts for a short real grace, then it is taken to wait
  behind work that waits on the loop;
* Python threads (anyio's worker threads, plain threads that will
  ``call_soon_threadsafe``, server threads of a test, the thread that drives
  a loop running in another thread through a blocking portal), except
  threads running a virtual loop of their own and daemon threads that were
  already running when the loop started (a heartbeat or watchdog that
  sleeps forever would otherwise hold time forever);
* child processes started through the loop (subprocess transports, so
  anyio's ``run_process``/``to_process``) until the loop has seen them exit,
  and, while a finished child's pipes are still open, whatever else in our
  process group may still write to them (a grandchild that inherited them);
* operations in flight that the loop drives itself: connections being made
  (with their TLS handshake) and uvloop's DNS lookups in libuv's pool.

A thread or process *runs* while it is on a CPU, sleeping on real time
(``time.sleep``) or waiting for a child process. One blocked on a lock, a
condition, a queue, a pipe, a socket or a poll is waiting for someone
else: the loop (which may then jump: no deadlock) or another party, which
is itself looked at. On Linux the kernel says which
(``/proc/self/task/<tid>/syscall``); elsewhere a thread runs unless its
innermost Python frame is one of threading's, queue's or selectors' waits,
and a child process runs until its exit is seen.

A waiting thread must also stay still: the loop jumps only after two looks,
a moment of real time apart (the GIL let go in between), in which no
watched thread got any CPU time (``/proc/.../schedstat``). A thread that is
about to call back, but happened to be between two blocking calls at the
first look, moves in between.

One case looks like waiting and is not: a thread that wants the GIL (it
runs Python code, or the loop has just woken it) waits on the GIL's futex
while the loop, holding the GIL, looks at it. The GIL's futex addresses are
learnt once per process (a helper thread spins in Python while we read its
state without letting the GIL go) and count as running. And a thread the
loop has just woken may not have been scheduled yet, so when anything was
looked at, :attr:`WorkWatch.looked` is set and the loop lets the GIL go for
a moment of real time before it jumps (``VirtualTimeMixin._v_may_jump``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import queue
import selectors
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import thread as _futures_thread
from typing import Any, Final

__all__ = ["LOOP_THREADS", "Job", "WorkWatch"]

# Idents of threads running a virtual loop right now: each such loop is its
# own world (it holds its own time still for its own work).
LOOP_THREADS: set[int] = set()

# A queued executor job holds time this long (real ns) before it is taken to
# wait behind jobs that wait on the loop (a pool full of those would
# otherwise never let time move).
_QUEUED_GRACE_NS: Final = 1_000_000_000

# Syscalls in which a blocked task waits for a peer (data on a pipe or a
# socket, room to write, a lock, a poll, a signal). A task blocked in any
# other (sleeping on real time, opening a file...) runs on its own, and so
# does one waiting on the disk (state D). One waiting for a child process
# (wait4/waitid: asyncio's child watcher threads, subprocess.run) runs while
# one of its children runs.
_WAITING_SYSCALLS: Final[dict[str, frozenset[int]]] = {
    "x86_64": frozenset({
        0, 1, 7, 17, 19, 20, 23, 34, 43, 44, 45, 46, 47, 65, 70, 128, 130, 202, 220, 232,
        270, 271, 281, 288, 441, 449,
    }),
    "aarch64": frozenset({
        22, 63, 64, 65, 66, 67, 72, 73, 98, 133, 137, 188, 192, 193, 202, 206, 207, 211,
        212, 242, 441, 449,
    }),
}  # fmt: skip
_MACHINE: Final = platform.machine()
_PROC: Final = (
    sys.platform == "linux"
    and _MACHINE in _WAITING_SYSCALLS
    and os.path.isdir("/proc/self/task")
)
_WAITING: Final = _WAITING_SYSCALLS.get(_MACHINE, frozenset())
_FUTEX: Final = {"x86_64": 202, "aarch64": 98}.get(_MACHINE, -1)
_WAIT_CHILD: Final = {"x86_64": frozenset({61, 247}), "aarch64": frozenset({260, 95})}.get(
    _MACHINE, frozenset()
)
# A blocking call resumed after a signal (a timed futex wait, usually): what
# it waits in is told by the kernel function it sleeps in.
_RESTART: Final = {"x86_64": 219, "aarch64": 128}.get(_MACHINE, -1)


_PROC_FLAGS: Final = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _read(path: str, size: int) -> bytes:
    """A ``/proc`` file's first bytes (raises OSError).

    Non-blocking low-level reads: tools that flag blocking calls inside an
    event loop (blockbuster, as anyio's test suite uses) let them through,
    and a /proc read never waits anyway.
    """
    fd = os.open(path, _PROC_FLAGS)
    try:
        return os.read(fd, size)
    finally:
        os.close(fd)


def _proc_runs(task_dir: str, depth: int = 0) -> bool | None:
    """For a ``/proc`` task directory: True running, False waiting, None gone/unreadable."""
    try:
        data = _read(task_dir + "/syscall", 32)
    except OSError:
        return None
    if not data or data.startswith(b"running"):
        return True
    try:
        number = int(data.split(b" ", 1)[0])
    except ValueError:
        return True
    if number in _WAIT_CHILD:
        return _children_run(task_dir, depth)
    if number == _RESTART:
        try:
            return b"nanosleep" in _read(task_dir + "/wchan", 64)
        except OSError:
            return None
    if number not in _WAITING:
        return True
    if number == _FUTEX and _waits_for_the_gil(data):
        return True
    try:
        state = _read(task_dir + "/stat", 512).rpartition(b")")[2][1:2]
    except OSError:
        return None
    return state in (b"R", b"D", b"Z")  # Z: a child whose exit is on its way


def _children_run(task_dir: str, depth: int) -> bool:
    """Whether a child of the task at ``task_dir`` (a thread's or a process's) runs."""
    if depth > 3:
        return True
    name = task_dir.rstrip("/").rsplit("/", 1)[-1]
    path = f"{task_dir}/children" if "/task/" in task_dir else f"{task_dir}/task/{name}/children"
    try:
        pids = _read(path, 4096).split()
    except OSError:
        return True  # cannot tell: a child that may run holds time
    for pid in pids:
        runs = _proc_runs(f"/proc/{int(pid)}", depth + 1)
        if runs is None or runs:
            return True
    return False


# Futex addresses a thread waits on while it waits for the GIL; learnt on first need.
_GIL_FUTEXES: list[frozenset[int]] = []


def _waits_for_the_gil(syscall_line: bytes) -> bool:
    if not _GIL_FUTEXES:
        _GIL_FUTEXES.append(_learn_gil_futexes())
    try:
        address = int(syscall_line.split(b" ", 2)[1], 16)
    except (IndexError, ValueError):
        return False
    # The GIL's condition variable and mutex sit together in one struct.
    # (its switch condition and mutex too: all in one struct of about 180 bytes).
    return any(abs(address - known) < 256 for known in _GIL_FUTEXES[0])


def _learn_gil_futexes() -> frozenset[int]:
    """The futexes of a thread that only ever waits for the GIL, read while we hold it."""
    try:
        libc = ctypes.PyDLL(ctypes.util.find_library("c") or "libc.so.6")  # keeps the GIL
        pread = libc.pread
    except (OSError, AttributeError):
        return frozenset()
    pread.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_long]
    pread.restype = ctypes.c_ssize_t
    stop: list[bool] = []

    def spin() -> None:
        while not stop:
            pass

    helper = threading.Thread(target=spin, name="harn-gil-probe", daemon=True)
    helper.start()
    seen: set[int] = set()
    sightings = 0
    buffer = ctypes.create_string_buffer(128)
    try:
        fd = os.open(f"/proc/self/task/{helper.native_id}/syscall", os.O_RDONLY)
    except OSError:
        fd = -1
    try:
        for _ in range(200):
            if fd < 0 or sightings >= 3:
                break
            size = pread(fd, buffer, 127, 0)
            fields = buffer.raw[: max(size, 0)].split(b" ", 2)
            if len(fields) > 1 and fields[0] == str(_FUTEX).encode():
                seen.add(int(fields[1], 16))
                sightings += 1
            until = time.perf_counter() + 0.0002  # hold the GIL a moment: it waits for it
            while time.perf_counter() < until:
                pass
    finally:
        if fd >= 0:
            os.close(fd)
        stop.append(True)
        helper.join()
    return frozenset(seen)


def _wait_codes() -> frozenset[Any]:
    codes = [
        threading.Condition.wait,
        threading.Thread._wait_for_tstate_lock,  # type: ignore[attr-defined]  # join()
        queue.Queue.get,
        _futures_thread._worker,  # an idle pool worker blocks in its queue's C get()
    ]
    codes += [
        cls.select for cls in vars(selectors).values()
        if isinstance(cls, type) and issubclass(cls, selectors.BaseSelector)
        and "select" in vars(cls)
    ]  # fmt: skip
    return frozenset(getattr(fn, "__code__", None) for fn in codes) - {None}


_WAIT_CODES: Final = _wait_codes()


def _cpu_ns(task_dir: str) -> int:
    """Nanoseconds the task has run on a CPU (-1 when unknown)."""
    try:
        return int(_read(task_dir + "/schedstat", 64).split(b" ", 1)[0])
    except (OSError, ValueError):
        return -1


def _thread_runs(
    thread: threading.Thread, frames: dict[int, Any] | None, cpu: dict[int, int]
) -> bool:
    if _PROC:
        task_dir = f"/proc/self/task/{thread.native_id}"
        runs = _proc_runs(task_dir)
        if not runs:
            cpu[thread.native_id or 0] = _cpu_ns(task_dir)
        return bool(runs)  # gone: not running
    frame = (frames or {}).get(thread.ident or -1)
    return frame is not None and frame.f_code not in _WAIT_CODES


class Job:
    """One executor job of a loop: which thread runs it (once started)."""

    __slots__ = ("native_id", "submitted_ns", "thread")

    def __init__(self) -> None:
        self.submitted_ns = time.monotonic_ns()
        self.thread: threading.Thread | None = None
        self.native_id: int | None = None


class WorkWatch:
    """The work one virtual loop can see in flight (see the module doc)."""

    __slots__ = ("_baseline", "_children", "_cpu", "_cpu_before", "_inflight", "_jobs", "looked")

    def __init__(self) -> None:
        # True when the last running() call found work to look at (all waiting).
        self.looked = False
        # CPU time of each waiting thread at the last look, and at the one before.
        self._cpu: dict[int, int] = {}
        self._cpu_before: dict[int, int] | None = None
        self._baseline: frozenset[int] = frozenset()
        self._jobs: set[Job] = set()
        self._children: list[Any] = []  # subprocess transports
        self._inflight = 0

    def start(self) -> None:
        """The loop starts running: daemon threads alive now are not its work."""
        self._baseline = frozenset(
            t.ident for t in threading.enumerate() if t.ident and t.daemon
        )

    # -- what the loop reports -------------------------------------------------

    def job_submitted(self) -> Job:
        job = Job()
        self._jobs.add(job)
        return job

    def job_done(self, job: Job) -> None:
        self._jobs.discard(job)

    def child_started(self, transport: Any) -> None:
        self._children.append(transport)

    def hold(self) -> Callable[[], None]:
        """Count an operation in flight; call the result once when it is over."""
        self._inflight += 1
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                self._inflight -= 1

        return release

    # -- the question ------------------------------------------------------------

    def running(self, loop_thread: int | None) -> bool:
        """True while some work the loop can see is really running (time must hold still)."""
        self.looked = False
        cpu = self._cpu = {}
        if self._inflight:
            return True
        if self._children and self._children_run():
            return True
        jobs = self._jobs
        if not jobs and threading.active_count() <= 1:
            return False
        threads = threading.enumerate()
        frames = None if _PROC else sys._current_frames()
        seen: set[int] = set()
        now_ns = 0
        for job in jobs:
            thread = job.thread
            if thread is None:
                now_ns = now_ns or time.monotonic_ns()
                if now_ns - job.submitted_ns < _QUEUED_GRACE_NS:
                    return True
                continue
            seen.add(thread.ident or 0)
            if _thread_runs(thread, frames, cpu):
                return True
        baseline = self._baseline
        for thread in threads:
            ident = thread.ident
            if (
                ident is None
                or ident in baseline
                or ident in seen
                or ident == loop_thread
                or ident in LOOP_THREADS
            ):
                continue
            seen.add(ident)
            if _thread_runs(thread, frames, cpu):
                return True
        self.looked = bool(seen) or bool(self._children)
        return False

    def still(self) -> bool:
        """True if no waiting thread ran since the previous look (then the looks agree)."""
        before, self._cpu_before = self._cpu_before, self._cpu
        return before == self._cpu

    def forget_looks(self) -> None:
        """Something happened: the next look starts a new comparison."""
        self._cpu_before = None

    def _children_run(self) -> bool:
        kept = []
        running = draining = False
        for transport in self._children:
            try:
                exited = transport.get_returncode() is not None
                pipes_open = any(
                    pipe is not None and not pipe.is_closing()
                    for pipe in (transport.get_pipe_transport(1), transport.get_pipe_transport(2))
                )
            except Exception:  # a transport in an odd state: no longer ours to wait for
                continue
            if exited:
                if pipes_open:
                    kept.append(transport)
                    draining = True
                continue
            kept.append(transport)
            if running:
                continue
            if not _PROC:
                running = True
                continue
            pid = transport.get_pid()
            # Gone or a zombie (unreadable): its exit is on its way to the loop.
            runs = _proc_runs(f"/proc/{pid}") if pid else None
            running = runs is None or runs
        self._children = kept
        return running or (draining and _group_runs())


def _group_runs() -> bool:
    """True if another process of our process group runs (Linux; elsewhere: assume not)."""
    if not _PROC:
        return False
    group, me = os.getpgrp(), os.getpid()
    try:
        entries = os.listdir("/proc")
    except Exception:  # OSError, or a blocking-call checker refusing the listing
        return False
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            fields = _read(f"/proc/{entry}/stat", 512).rpartition(b")")[2].split()
        except OSError:
            continue
        if len(fields) > 3 and int(fields[2]) == group and fields[0] != b"Z":
            if _proc_runs(f"/proc/{entry}"):
                return True
    return False
