"""The reliability fuzz's interpreter: runs a program and records the ground truth.

:class:`Interpreter` runs a program of ``reliability_programs`` (a
:data:`Body` of :class:`Node` dataclasses) with the library's public API
(``span`` with and without ``new_trace``, ``traced_spawn``, plain
``asyncio.create_task`` under ``instrument_asyncio``, ``traced_parallel``,
``TracedTaskGroup``, ``TracedPool``, ``TracedChannel``, ``TracedQueue``,
``asyncio.timeout``, ``Task.cancel``, ``raise``) and, for
every span it makes the library open, writes down what it *expects* from its
own knowledge of the program: the parent, the links and how the span ended.
``reliability_invariants.check`` then compares the finished trace against
that ground truth, so a wrong parent is caught even when the trace is
self-consistent.

Every span the interpreter names is unique per *execution* (``u3.1`` is the
first run of node 3's span): a handler that fires twice gets two names.
Every program runs with ``instrument_asyncio()`` on, so the library's own
boundaries are checked not to be wrapped a second time by its task factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from reliability_programs import (
    Body,
    Channel,
    Group,
    Node,
    Parallel,
    Pool,
    ProgramError,
    Queue,
    Raise,
    Sleep,
    Span,
    Spawn,
    Timeout,
    Try,
)

from harn_async_trace import (
    MockClock,
    PoolFullError,
    SpanCollector,
    SpanKind,
    TracedChannel,
    TracedPool,
    TracedQueue,
    TracedTaskGroup,
    install_override,
    instrument_asyncio,
    span,
    traced_parallel,
    traced_spawn,
    use_collector,
)
from harn_async_trace.loop import virtual_loop_factory

# -- ground truth ----------------------------------------------------------------

Key: TypeAlias = tuple[str, str]  # (kind value, span name)


@dataclass
class Expect:
    """What the interpreter knows about one span it made the library open."""

    key: Key
    parent: Key | None
    links: tuple[Key, ...] = ()
    required: bool = True  # False: the library may legitimately not open it
    outcome: str | None = None  # "ok" | "error" | "cancelled" once known
    awaited: bool = True  # its children must end within it
    resolve_parent: Callable[[], Key | None] | None = None
    new_trace: bool = False  # the root of a fresh trace id


@dataclass
class Truth:
    """Every expectation of one run, plus counters for the report."""

    spans: dict[Key, Expect] = field(default_factory=dict)
    channel_emits: dict[str, list[str]] = field(default_factory=dict)

    def add(self, expect: Expect) -> Expect:
        if expect.key in self.spans:
            raise AssertionError(f"interpreter named two spans {expect.key}")
        self.spans[expect.key] = expect
        return expect


def _outcome(exc: BaseException | None) -> str:
    if exc is None:
        return "ok"
    return "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"


@contextlib.contextmanager
def _observed(expect: Expect) -> Iterator[None]:
    """Write down on ``expect`` how the block ended, as the program saw it."""
    try:
        yield
    except BaseException as exc:
        expect.outcome = _outcome(exc)
        raise
    expect.outcome = "ok"


class Interpreter:
    """Runs a :data:`Body` with the library's API, recording a :class:`Truth`."""

    def __init__(self) -> None:
        self.truth = Truth()
        self._ids = itertools.count(1)

    def _name(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    async def main(self, program: Body) -> None:
        """The whole program under a ``pipeline main`` root span; every error is swallowed."""
        expect = self.truth.add(Expect(("pipeline", "main"), None))
        try:
            with span(SpanKind.PIPELINE, "main"):
                await self.run(program, expect.key)
        except (ProgramError, PoolFullError) as exc:
            expect.outcome = _outcome(exc)
        else:
            expect.outcome = "ok"

    async def run(self, body: Body, parent: Key | None) -> None:
        """Run each node of ``body``; ``parent`` is the span the library must parent to."""
        for node in body:
            await self._node(node, parent)

    async def _node(self, node: Node, parent: Key | None) -> None:
        if isinstance(node, Sleep):
            await asyncio.sleep(node.ms / 1000)
        elif isinstance(node, Raise):
            raise ProgramError("boom")
        elif isinstance(node, Span):
            name = self._name("u")
            # A new_trace span is a root of its own: no parent, a fresh trace id.
            expect = self.truth.add(
                Expect(("step", name), None if node.new_trace else parent, new_trace=node.new_trace)
            )
            with _observed(expect), span(SpanKind.STEP, name, new_trace=node.new_trace):
                await self.run(node.body, expect.key)
        elif isinstance(node, Try):
            try:
                await self.run(node.body, parent)
            except ProgramError:
                pass
        elif isinstance(node, Timeout):
            try:
                async with asyncio.timeout(node.ms / 1000):
                    await self.run(node.body, parent)
            except TimeoutError:
                pass
        elif isinstance(node, Spawn):
            await self._spawn(node, parent)
        elif isinstance(node, Parallel):
            await self._parallel(node, parent)
        elif isinstance(node, Group):
            await self._group(node, parent)
        elif isinstance(node, Pool):
            await self._pool(node, parent)
        elif isinstance(node, Queue):
            await self._queue(node, parent)
        else:
            await self._channel(node, parent)

    async def _spawn(self, node: Spawn, parent: Key | None) -> None:
        name = self._name("sp" if node.via == "traced_spawn" else "tk")
        links = () if parent is None else (parent,)
        expect = self.truth.add(Expect(("spawn", name), None, links))

        async def body() -> None:
            await self.run(node.body, expect.key)

        if node.via == "traced_spawn":
            task = traced_spawn(body(), name=name)
        else:
            task = asyncio.create_task(body(), name=name)
        task.add_done_callback(lambda t: _set_outcome(expect, t))
        if node.mode == "forget":
            return  # left running: the runner cancels it at the end if still alive
        if node.mode == "cancel":
            await asyncio.sleep(node.ms / 1000)
            task.cancel()
        await asyncio.wait([task])
        if not task.cancelled() and isinstance(task.exception(), ProgramError):
            raise ProgramError("awaited spawn failed")

    async def _parallel(self, node: Parallel, parent: Key | None) -> None:
        name = self._name("par")
        expect = self.truth.add(Expect(("parallel", name), parent))
        branches: list[Callable[[], Any]] = []
        for index, branch in enumerate(node.branches):
            key = ("spawn", f"{name}[{index}]")
            self.truth.add(Expect(key, None, (expect.key,), required=False))
            branches.append(_bind(self, branch, key))
        with _observed(expect):
            await traced_parallel(branches, max_concurrent=node.cap, settle=node.settle, name=name)

    async def _group(self, node: Group, parent: Key | None) -> None:
        name = self._name("tg")
        expect = self.truth.add(Expect(("parallel", name), parent))
        try:
            with _observed(expect):
                async with TracedTaskGroup(name=name) as group:
                    for index, child in enumerate(node.children):
                        key = ("spawn", f"{name}[{index}]")
                        child_expect = self.truth.add(Expect(key, None, (expect.key,)))
                        task = group.create_task(_bind(self, child, key)())
                        task.add_done_callback(functools.partial(_set_outcome, child_expect))
                    await self.run(node.body, expect.key)
        except BaseExceptionGroup as group_error:
            # The program's own errors come out as one ProgramError (so Try
            # catches them); anything else is a bug and goes on as it is.
            _, rest = group_error.split((ProgramError, PoolFullError))
            if rest is not None:
                raise
            raise ProgramError("task group failed") from None

    async def _queue(self, node: Queue, parent: Key | None) -> None:
        name = self._name("q")
        consumer_key = ("spawn", self._name("qc"))
        consumer = self.truth.add(Expect(consumer_key, None, () if parent is None else (parent,)))
        emits = self.truth.channel_emits.setdefault(name, [])
        queue: TracedQueue[str] = TracedQueue(node.maxsize, name=name)

        async def consume() -> None:
            for _ in range(node.items):
                try:
                    async with queue.receive() as item:
                        key = ("channel_match", f"{name}@{item}")
                        links = (("channel_emit", f"{name}/{item}"),)
                        expect = self.truth.add(Expect(key, consumer_key, links))
                        with _observed(expect):
                            await self.run(node.handler, key)
                except ProgramError:
                    pass

        task = asyncio.create_task(consume(), name=consumer_key[1])
        task.add_done_callback(functools.partial(_set_outcome, consumer))
        for _ in range(node.items):
            emit_name = self._name("e")
            await queue.put(emit_name)
            # Recorded once the put went through: a put cancelled while the
            # queue was full emits nothing.
            emits.append(emit_name)
            self.truth.add(Expect(("channel_emit", f"{name}/{emit_name}"), parent))
        await asyncio.wait([task])

    async def _pool(self, node: Pool, parent: Key | None) -> None:
        name = self._name("pool")
        # The drain span of the shutdown, and its decisions, hang under `parent`.
        self.truth.add(Expect(("drain", name), parent, required=False))
        futures = []
        async with TracedPool(node.workers, node.max_queue, name=name) as pool:
            for job in node.jobs:
                job_name = self._name("job")
                submit = self.truth.add(Expect(("pool_submit", job_name), parent))
                dequeue = ("pool_dequeue", job_name)
                self.truth.add(Expect(dequeue, None, (submit.key,), required=False))
                try:
                    futures.append(pool.submit(_bind(self, job, dequeue), name=job_name))
                except PoolFullError:
                    submit.outcome = "error"
                    del self.truth.spans[dequeue]
                else:
                    submit.outcome = "ok"
            try:
                if futures:
                    await asyncio.wait(futures)
            finally:
                for future in futures:
                    future.add_done_callback(_retrieve)

    async def _channel(self, node: Channel, parent: Key | None) -> None:
        name = self._name("ch")
        trigger = self._name("trg")
        self.truth.add(Expect(("drain", name), parent, required=False))
        emits = self.truth.channel_emits.setdefault(name, [])
        channel = TracedChannel(name)

        async def handler(value: str | list[str]) -> None:
            values = value if isinstance(value, list) else [value]
            key = ("channel_match", f"{trigger}@{values[0]}")
            links = tuple(("channel_emit", f"{name}/{v}") for v in values)
            expect = self.truth.add(Expect(key, None, links))
            with _observed(expect):
                await self.run(node.handler, key)

        channel.trigger(handler, name=trigger, batch_size=node.batch)
        try:
            for _ in range(node.emits):
                emit_name = self._name("e")
                # Emit spans are all named after the channel; the checker tells
                # them apart by order (one task emits them one after another).
                emits.append(emit_name)
                self.truth.add(Expect(("channel_emit", f"{name}/{emit_name}"), parent))
                await channel.emit(emit_name)
        finally:
            await channel.aclose()


def _bind(interp: Interpreter, body: Body, key: Key) -> Callable[[], Any]:
    """A zero-argument branch/job factory that runs ``body`` under the span ``key``."""
    expect = interp.truth.spans[key]

    async def run() -> None:
        expect.required = True  # the body ran, so its span must exist
        with _observed(expect):
            await interp.run(body, key)

    return run


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a job's failure as seen: a failed job is the job's business."""
    if not future.cancelled():
        future.exception()


def _set_outcome(expect: Expect, task: asyncio.Task[None]) -> None:
    if task.cancelled():
        expect.outcome = "cancelled"
    else:
        expect.outcome = _outcome(task.exception())


# -- running ---------------------------------------------------------------------


@dataclass
class Run:
    """One finished run: the collector (with its spans) and the interpreter's truth."""

    collector: SpanCollector
    truth: Truth


def run_program(program: Body, *, use_uvloop: bool, start_wall_ms: int = 1_700_000_000_000) -> Run:
    """Run ``program`` on a fresh MockClock and virtual loop; return spans and truth."""
    clock = MockClock(start_wall_ms=start_wall_ms)
    interp = Interpreter()
    with install_override(clock):
        collector = SpanCollector()
        factory = virtual_loop_factory(clock, use_uvloop=use_uvloop)

        async def bound() -> None:
            with use_collector(collector):
                await interp.main(program)

        with instrument_asyncio(), asyncio.Runner(loop_factory=factory) as runner:
            runner.run(bound())
    return Run(collector, interp.truth)
