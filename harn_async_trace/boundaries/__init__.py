"""Async boundaries: spawn, parallel, pool, step, channels, suspension/drain, threads,
and plain asyncio traced (``TracedTaskGroup``, ``instrument_asyncio``, ``TracedQueue``).

Each boundary hands work to another task (or thread) and keeps it causally
connected: the new work runs under a *detached* span linked to where it came
from, so fire-and-forget tasks, fan-out branches and queued jobs keep a
correct tree even when the span that started them ended long before.
One module per boundary; this package re-exports the public names.
"""

from __future__ import annotations

from .channels import ChannelClosedError, ChannelTrigger, TracedChannel
from .instrument import AsyncioInstrumentation, instrument_asyncio, uninstrument_asyncio
from .parallel import traced_parallel
from .pool import PoolClosedError, PoolFullError, TracedPool
from .queue import TracedQueue
from .spawn import traced_spawn, traced_start_soon
from .step import step
from .suspension import (
    DrainHandle,
    ResumeHandle,
    SuspensionHandle,
    SuspensionToken,
    emit_drain_decision,
    traced_drain,
    traced_resume,
    traced_suspension,
)
from .taskgroup import TracedTaskGroup
from .threads import ContextThreadPoolExecutor, carry_context, traced_run_in_executor

__all__ = (
    "AsyncioInstrumentation",
    "ChannelClosedError",
    "ChannelTrigger",
    "ContextThreadPoolExecutor",
    "DrainHandle",
    "PoolClosedError",
    "PoolFullError",
    "ResumeHandle",
    "SuspensionHandle",
    "SuspensionToken",
    "TracedChannel",
    "TracedPool",
    "TracedQueue",
    "TracedTaskGroup",
    "carry_context",
    "emit_drain_decision",
    "instrument_asyncio",
    "step",
    "traced_drain",
    "traced_parallel",
    "traced_resume",
    "traced_run_in_executor",
    "traced_spawn",
    "traced_start_soon",
    "traced_suspension",
    "uninstrument_asyncio",
)
