"""``SeesWorkMixin``: the loop methods that tell a virtual loop's ``WorkWatch`` about real work.

Each override calls the base loop's public method unchanged and reports
what it started: an executor job (and, once it runs, its thread), a child
process, or an operation in flight (a connection being made, its TLS
handshake, a DNS lookup). ``holds.py`` then says whether any of it is
running; the loop holds virtual time still while it is.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from ..clock import MockClock, _bind_thread_clock, _restore_thread_clock
from .holds import Job, WorkWatch

__all__ = ["SeesWorkMixin"]


def _job(
    job: Job, clock: MockClock | None, func: Callable[..., Any], args: tuple[Any, ...]
) -> Any:
    """An executor job: says which thread runs it; spans there read the loop's clock."""
    thread = threading.current_thread()
    job.native_id = thread.native_id
    job.thread = thread
    saved = _bind_thread_clock(clock) if clock is not None else None
    try:
        return func(*args)
    finally:
        job.thread = None  # finished: no longer running, whatever its thread does next
        job.submitted_ns = -(1 << 62)
        if clock is not None:
            _restore_thread_clock(saved)


class SeesWorkMixin:
    """Reports real work to ``self._v_work`` (set up by ``VirtualTimeMixin._v_setup``)."""

    _v_work: WorkWatch
    _v_clock: MockClock | None

    def _v_work_over(self) -> None:
        """Some watched work finished: the loop re-decides (overridden by the loop classes)."""

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> Any:
        """``loop.run_in_executor``, watched: time holds still while the job really runs.

        On virtual time the job also reads this loop's clock in its worker thread.
        """
        base: Any = super()
        if not callable(func) or asyncio.iscoroutinefunction(func):
            return base.run_in_executor(executor, func, *args)  # the base's own error
        job = self._v_work.job_submitted()
        try:
            future = base.run_in_executor(executor, _job, job, self._v_clock, func, args)
        except BaseException:
            self._v_work.job_done(job)
            raise

        def done(_: object) -> None:
            self._v_work.job_done(job)
            self._v_work_over()

        future.add_done_callback(done)
        return future

    async def _v_holding(self, method: str, *args: Any, **kwargs: Any) -> Any:
        release = self._v_work.hold()
        try:
            base: Any = super()
            return await getattr(base, method)(*args, **kwargs)
        finally:
            release()
            self._v_work_over()

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> Any:
        """``loop.getaddrinfo``; time holds still while the lookup is in flight."""
        return await self._v_holding("getaddrinfo", *args, **kwargs)

    async def getnameinfo(self, *args: Any, **kwargs: Any) -> Any:
        """``loop.getnameinfo``; time holds still while the lookup is in flight."""
        return await self._v_holding("getnameinfo", *args, **kwargs)

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        """``loop.create_connection``; time holds still until it is made (TLS included)."""
        return await self._v_holding("create_connection", *args, **kwargs)

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any:
        """``loop.create_unix_connection``; time holds still until it is made."""
        return await self._v_holding("create_unix_connection", *args, **kwargs)

    async def sock_connect(self, *args: Any, **kwargs: Any) -> Any:
        """``loop.sock_connect``; time holds still until it is made."""
        return await self._v_holding("sock_connect", *args, **kwargs)

    async def start_tls(self, *args: Any, **kwargs: Any) -> Any:
        """``loop.start_tls``; time holds still during the handshake."""
        return await self._v_holding("start_tls", *args, **kwargs)

    async def _v_spawn(self, method: str, *args: Any, **kwargs: Any) -> Any:
        transport, protocol = await self._v_holding(method, *args, **kwargs)
        self._v_work.child_started(transport)
        return transport, protocol

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> Any:
        """``loop.subprocess_exec``; time holds still while the child runs."""
        return await self._v_spawn("subprocess_exec", *args, **kwargs)

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> Any:
        """``loop.subprocess_shell``; time holds still while the child runs."""
        return await self._v_spawn("subprocess_shell", *args, **kwargs)
