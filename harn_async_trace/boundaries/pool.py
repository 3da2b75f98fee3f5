"""``TracedPool``: a bounded worker pool whose queued work stays linked to its submitter.

``submit()`` records a short ``pool_submit`` span under the caller; a worker
later runs the job under a detached ``pool_dequeue`` span linked to it
(``relation=submitted_by``) with the time it waited (``queue_dwell_ms``).

Accounting: ``_available`` counts workers not holding a job (started or
not), so a submit is ``accepted`` when a worker is free for it, ``queued``
when it must wait behind ``max_queue`` others at most, else ``rejected``.
Each job runs in its own task created in a copy of the *submitter's*
context, so context variables (and the current collector) follow the job.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar, final

from .._scoped import record_outcome
from ..clock import current_clock
from ..collector import SpanCollector
from ..context import current_collector
from ..kinds import SpanKind
from ..model import SpanLink
from ._common import (
    boundary_task,
    close_span_after_task,
    close_unstarted,
    end_with_status,
    relink,
    run_in_span,
)
from .suspension import traced_drain

__all__ = ("PoolClosedError", "PoolFullError", "TracedPool")

T = TypeVar("T")
_NS_PER_MS: Final = 1_000_000


class PoolFullError(RuntimeError):
    """``TracedPool.submit`` found every worker busy and the queue full.

    ``pool``, ``workers`` and ``max_queue`` say which pool and how big it is
    (a bare message is accepted too, for code that raises it itself).

    Example:
        >>> str(PoolFullError("db", workers=2, max_queue=0)).startswith("pool 'db' is full")
        True
    """

    def __init__(
        self, pool: str = "pool", *, workers: int | None = None, max_queue: int | None = None
    ) -> None:
        if workers is None or max_queue is None:
            message = pool
        else:
            message = (
                f"pool {pool!r} is full: all {workers} workers are busy and "
                f"{max_queue} jobs are already queued (max_queue={max_queue})"
            )
        super().__init__(message)
        self.pool = pool
        self.workers = workers
        self.max_queue = max_queue


class PoolClosedError(RuntimeError):
    """``TracedPool.submit`` was called after ``shutdown()`` began."""


@dataclass(slots=True)
class _Job:
    work: Awaitable[Any] | Callable[[], Awaitable[Any]]
    name: str
    future: asyncio.Future[Any]
    context: contextvars.Context
    collector: SpanCollector | None
    submit_link: SpanLink | None
    submit_ns: int


@final
class TracedPool:
    """``workers`` concurrent workers fed by a queue of at most ``max_queue`` waiting jobs.

    Use it as ``async with`` (drains on exit, cancels on error) or call
    :meth:`shutdown` yourself.

    Example:
        >>> async def main() -> int:
        ...     async with TracedPool(2, 10, name="db") as pool:
        ...         async def query(n: int) -> int:
        ...             return n * 2
        ...         return await pool.submit(query, 21)
        >>> asyncio.run(main())
        42
    """

    def __init__(self, workers: int, max_queue: int, name: str = "pool") -> None:
        for label, value, low in (("workers", workers, 1), ("max_queue", max_queue, 0)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{label} must be an int, got {value!r}")
            if value < low:
                raise ValueError(f"{label} must be >= {low}, got {value}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
        self.workers = workers
        self.max_queue = max_queue
        self.name = name
        self._queue: deque[_Job] = deque()
        self._available = workers
        self._idle: deque[asyncio.Future[None]] = deque()
        self._worker_tasks: list[asyncio.Task[None]] = []
        self._running: dict[asyncio.Task[Any], _Job] = {}
        self._closed = False

    # -- state -----------------------------------------------------------------

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker (accepted jobs not yet picked up count too)."""
        return len(self._queue)

    @property
    def running(self) -> int:
        """Jobs being run by a worker right now."""
        return len(self._running)

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` has begun; ``submit`` then raises."""
        return self._closed

    # -- submitting -------------------------------------------------------------

    def submit(
        self,
        job: Awaitable[T] | Callable[..., Awaitable[T]],
        /,
        *args: Any,
        name: str | None = None,
    ) -> asyncio.Future[T]:
        """Queue ``job`` (a coroutine, or an async callable with ``args``); await the future.

        Raises :class:`PoolFullError` when every worker is busy and
        ``max_queue`` jobs already wait, :class:`PoolClosedError` after
        shutdown began. Either way the ``pool_submit`` span says
        ``outcome=rejected``.

        Example:
            >>> async def main() -> str:
            ...     async with TracedPool(1, 0, name="p") as pool:
            ...         async def hello() -> str:
            ...             return "hi"
            ...         return await pool.submit(hello())
            >>> asyncio.run(main())
            'hi'
        """
        work: Awaitable[Any] | Callable[[], Awaitable[Any]]
        if callable(job):
            work = functools.partial(job, *args) if args else job
        elif args:
            close_unstarted(job)
            raise TypeError("args are only accepted with an async callable, not a coroutine")
        else:
            work = job
        if name is None:
            name = getattr(job, "__qualname__", None) or type(job).__qualname__
        loop = asyncio.get_running_loop()
        active = current_collector()
        collector = active if active.enabled else None
        submit_id = 0
        submit_link: SpanLink | None = None
        if collector is not None:
            submit_id = collector.start(SpanKind.POOL_SUBMIT, name)
            submit_link = collector.span_link(submit_id)
            collector.set_metadata(submit_id, "pool", self.name)
            collector.set_metadata(submit_id, "queue_depth", len(self._queue))
        try:
            error = self._admission_error()
            if error is not None:
                raise error
        except BaseException as exc:
            close_unstarted(work)
            if collector is not None:
                collector.set_metadata(submit_id, "outcome", "rejected")
                record_outcome(collector, submit_id, exc)
                collector.end(submit_id)
            raise
        queued = len(self._queue) >= self._available
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.append(
            _Job(
                work,
                name,
                future,
                contextvars.copy_context(),
                collector,
                submit_link,
                current_clock().monotonic_ns(),
            )
        )
        if collector is not None:
            collector.set_metadata(submit_id, "outcome", "queued" if queued else "accepted")
            collector.end(submit_id)
        self._start_workers(loop)
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        return future

    def _admission_error(self) -> Exception | None:
        if self._closed:
            return PoolClosedError(f"pool {self.name!r} is shut down; submit() is refused")
        if len(self._queue) - self._available >= self.max_queue:
            return PoolFullError(self.name, workers=self.workers, max_queue=self.max_queue)
        return None

    # -- workers ----------------------------------------------------------------

    def _start_workers(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._worker_tasks:
            return
        # Workers open no spans themselves; an empty context keeps them from
        # pinning the first submitter's chain for the pool's whole life.
        for index in range(self.workers):
            task = loop.create_task(
                self._worker(index),
                name=f"{self.name}-worker-{index}",
                context=contextvars.Context(),
            )
            self._worker_tasks.append(task)

    @boundary_task
    async def _worker(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                if self._closed:
                    return
                waiter: asyncio.Future[None] = loop.create_future()
                self._idle.append(waiter)
                try:
                    await waiter
                finally:
                    if not waiter.done():
                        waiter.cancel()
            job = self._queue.popleft()
            self._available -= 1
            try:
                await self._run(job, index, loop)
            finally:
                self._available += 1

    def _dequeue_span(self, job: _Job, index: int | None) -> int:
        collector = job.collector
        if collector is None:
            return 0
        links = None if job.submit_link is None else [
            relink(job.submit_link, relation="submitted_by")
        ]
        span_id = collector.open(
            SpanKind.POOL_DEQUEUE, job.name, links, detached=True, push=False
        )
        collector.set_metadata(span_id, "pool", self.name)
        if index is not None:
            collector.set_metadata(span_id, "worker", index)
        dwell_ns = current_clock().monotonic_ns() - job.submit_ns
        collector.set_metadata(span_id, "queue_dwell_ms", dwell_ns // _NS_PER_MS)
        return span_id

    def _skip(self, job: _Job, index: int | None) -> None:
        """Account for a job that will never run: a closed span and a cancelled future."""
        close_unstarted(job.work)
        span_id = self._dequeue_span(job, index)
        if job.collector is not None:
            job.collector.set_metadata(span_id, "ran", False)
            end_with_status(job.collector, span_id, asyncio.CancelledError())
        job.future.cancel()

    async def _run(self, job: _Job, index: int, loop: asyncio.AbstractEventLoop) -> None:
        if job.future.done():  # cancelled by its submitter while it waited
            self._skip(job, index)
            return
        span_id = self._dequeue_span(job, index)
        task = loop.create_task(
            run_in_span(job.work, job.collector, span_id), name=job.name, context=job.context
        )
        if job.collector is not None:
            task.add_done_callback(close_span_after_task(job.collector, span_id, job.work))
        job.future.add_done_callback(functools.partial(_cancel_with_future, task))
        self._running[task] = job
        try:
            await task
        except BaseException:
            # The job's own failure is the job's business (it goes to the
            # future); only a cancellation of this worker stops the worker.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        finally:
            del self._running[task]
            _transfer(task, job.future)

    # -- shutdown ---------------------------------------------------------------

    async def shutdown(self, *, cancel: bool = False, grace: float | None = None) -> None:
        """Stop accepting jobs, then finish them all (or cancel them all); no job is lost.

        Draining runs every queued job; ``cancel=True`` cancels running jobs and
        settles queued ones as cancelled (their futures are cancelled and each
        still gets a closed ``pool_dequeue`` span with ``ran=False``). With
        ``grace`` (seconds), a drain that has not finished by then cancels what
        is left (like a supervisor's stop timeout; it is not a timeout on the
        caller, so ``shutdown`` itself is never cancelled by it). Recorded as a
        ``drain`` span with one ``drain_decision`` per job, and one more per
        job cut short when the grace period runs out.

        Example:
            >>> async def main() -> None:
            ...     pool = TracedPool(1, 5, name="p")
            ...     await pool.shutdown(grace=30)
            >>> asyncio.run(main())
        """
        if grace is not None and (
            isinstance(grace, bool) or not isinstance(grace, int | float) or grace < 0
        ):
            raise ValueError(f"grace must be a number of seconds >= 0 or None, got {grace!r}")
        if self._closed:  # a second call just waits for the first one's work
            await self._join_workers()
            return
        self._closed = True
        metadata: dict[str, Any] = {"mode": "cancel" if cancel else "finish"}
        if grace is not None:
            metadata["grace_ms"] = round(grace * 1000)
        metadata.update(queued=len(self._queue), running=len(self._running))
        with traced_drain(self.name, **metadata) as drain:
            for job in self._running.values():
                drain.decide(job.name, "cancel" if cancel else "finish", state="running")
            for job in self._queue:
                drain.decide(job.name, "cancel" if cancel else "run", state="queued")
            if cancel:
                self._cancel_all()
            for waiter in self._idle:
                if not waiter.done():
                    waiter.set_result(None)
            if grace is not None and not cancel and self._worker_tasks:
                _, pending = await asyncio.wait(self._worker_tasks, timeout=grace)
                if pending:
                    drain.set_metadata("timed_out", True)
                    for job in self._running.values():
                        drain.decide(job.name, "cancel", state="running", reason="grace")
                    for job in self._queue:
                        drain.decide(job.name, "cancel", state="queued", reason="grace")
                    self._cancel_all()
            await self._join_workers()

    def _cancel_all(self) -> None:
        while self._queue:
            self._skip(self._queue.popleft(), None)
        for task in self._running:
            task.cancel()

    async def _join_workers(self) -> None:
        if self._worker_tasks:
            await asyncio.gather(*self._worker_tasks, return_exceptions=True)

    async def __aenter__(self) -> TracedPool:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown(cancel=exc is not None)

    def __repr__(self) -> str:
        return (
            f"TracedPool(name={self.name!r}, workers={self.workers}, max_queue={self.max_queue},"
            f" running={self.running}, queued={self.queued}, closed={self._closed})"
        )


def _cancel_with_future(task: asyncio.Task[Any], future: asyncio.Future[Any]) -> None:
    if future.cancelled() and not task.done():
        task.cancel()


def _transfer(task: asyncio.Task[Any], future: asyncio.Future[Any]) -> None:
    if future.done():
        return
    if not task.done() or task.cancelled():
        future.cancel()
    elif task.exception() is not None:
        future.set_exception(task.exception())  # type: ignore[arg-type]  # checked just above
    else:
        future.set_result(task.result())
