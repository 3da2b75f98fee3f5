"""Traced channels and triggers: emits fan out to handlers that stay linked to them.

``emit`` records a ``channel_emit`` span around the emit and the trigger
fan-out. A trigger fires once it has collected ``batch_size`` matching emits;
its handler then runs in its own task under a detached ``channel_match`` span
with one link per consumed emit (``relation=consumed``, ``index`` = position
in the batch), so a batch handler points back at every emit that fed it.
Handlers never raise into the emitter: their errors are recorded on their
span and kept in ``TracedChannel.handler_errors``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Callable
from typing import Any, final

from .._scoped import record_outcome
from ..collector import SpanCollector
from ..context import current_collector
from ..kinds import SpanKind
from ..model import SpanLink
from ._common import close_span_after_task, relink, run_in_span
from .suspension import traced_drain

__all__ = ("ChannelClosedError", "ChannelTrigger", "TracedChannel")

Handler = Callable[[Any], Any]


class ChannelClosedError(RuntimeError):
    """``TracedChannel.emit`` was called after ``aclose()`` began."""


@final
class ChannelTrigger:
    """A handler registered with :meth:`TracedChannel.trigger` (internal fields, read-only use)."""

    __slots__ = ("batch_size", "fired", "handler", "match", "name", "pending")

    def __init__(
        self, handler: Handler, name: str, batch_size: int, match: Callable[[Any], bool] | None
    ) -> None:
        self.handler = handler
        self.name = name
        self.batch_size = batch_size
        self.match = match
        # (value, emit span id, collector of that emit) waiting for a full batch.
        self.pending: list[tuple[Any, SpanLink | None, SpanCollector | None]] = []
        self.fired = 0

    def __repr__(self) -> str:
        return f"ChannelTrigger(name={self.name!r}, batch_size={self.batch_size})"


async def _call(handler: Handler, argument: Any) -> Any:
    result = handler(argument)
    if inspect.isawaitable(result):
        result = await result
    return result


@final
class TracedChannel:
    """A named channel whose emits fire trigger handlers in traced, linked tasks.

    Example:
        >>> async def main() -> list[int]:
        ...     seen: list[int] = []
        ...     channel = TracedChannel("orders")
        ...     channel.trigger(seen.append, name="audit")
        ...     await channel.emit(7)
        ...     await channel.aclose()
        ...     return seen
        >>> asyncio.run(main())
        [7]
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
        self.name = name
        self.handler_errors: list[BaseException] = []
        self._triggers: list[ChannelTrigger] = []
        self._running: dict[asyncio.Task[Any], ChannelTrigger] = {}
        self._closed = False

    @property
    def running(self) -> int:
        """Handler runs in flight."""
        return len(self._running)

    def trigger(
        self,
        handler: Handler,
        *,
        name: str | None = None,
        batch_size: int = 1,
        match: Callable[[Any], bool] | None = None,
    ) -> ChannelTrigger:
        """Register ``handler`` (sync or async); it gets one value, or a list when batching.

        ``match`` filters emits; ``batch_size`` > 1 makes the handler run once
        per ``batch_size`` matching emits with the list of their values.

        Example:
            >>> channel = TracedChannel("events")
            >>> channel.trigger(print, name="log", batch_size=2)
            ChannelTrigger(name='log', batch_size=2)
        """
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        if match is not None and not callable(match):
            raise TypeError(f"match must be callable or None, got {match!r}")
        if name is None:
            name = getattr(handler, "__qualname__", None) or type(handler).__qualname__
        trigger = ChannelTrigger(handler, name, batch_size, match)
        self._triggers.append(trigger)
        return trigger

    def remove_trigger(self, trigger: ChannelTrigger) -> None:
        """Stop firing ``trigger`` (its partial batch is dropped)."""
        self._triggers.remove(trigger)

    async def emit(self, value: Any) -> int:
        """Emit ``value``; returns how many handler runs it started.

        Example:
            >>> async def main() -> int:
            ...     channel = TracedChannel("c")
            ...     channel.trigger(lambda v: None, name="noop")
            ...     return await channel.emit("x")
            >>> asyncio.run(main())
            1
        """
        if self._closed:
            raise ChannelClosedError(f"channel {self.name!r} is closed")
        active = current_collector()
        collector = active if active.enabled else None
        emit_id = 0 if collector is None else collector.start(SpanKind.CHANNEL_EMIT, self.name)
        started = matched = 0
        try:
            for trigger in tuple(self._triggers):
                if trigger.match is not None and not trigger.match(value):
                    continue
                matched += 1
                emit_link = None if collector is None else collector.span_link(emit_id)
                trigger.pending.append((value, emit_link, collector))
                if len(trigger.pending) >= trigger.batch_size:
                    self._fire(trigger)
                    started += 1
        except BaseException as exc:
            if collector is not None:
                record_outcome(collector, emit_id, exc)
                collector.end(emit_id)
            raise
        if collector is not None:
            collector.set_metadata(emit_id, "triggers_matched", matched)
            collector.set_metadata(emit_id, "handlers_started", started)
            collector.end(emit_id)
        return started

    def _fire(self, trigger: ChannelTrigger) -> None:
        batch, trigger.pending = trigger.pending, []
        trigger.fired += 1
        active = current_collector()
        collector = active if active.enabled else None
        span_id = 0
        if collector is not None:
            links = [
                relink(emit_link, relation="consumed", index=str(position))
                for position, (_, emit_link, _collector) in enumerate(batch)
                if emit_link is not None
            ]
            span_id = collector.open(
                SpanKind.CHANNEL_MATCH, trigger.name, links, detached=True, push=False
            )
            collector.set_metadata(span_id, "channel", self.name)
            collector.set_metadata(span_id, "batch", len(batch))
        argument = batch[0][0] if trigger.batch_size == 1 else [value for value, _, _ in batch]
        work = functools.partial(_call, trigger.handler, argument)
        task = asyncio.get_running_loop().create_task(
            run_in_span(work, collector, span_id), name=f"{self.name}:{trigger.name}"
        )
        if collector is not None:
            task.add_done_callback(close_span_after_task(collector, span_id, None))
        self._running[task] = trigger
        task.add_done_callback(self._handler_done)

    def _handler_done(self, task: asyncio.Task[Any]) -> None:
        del self._running[task]
        if not task.cancelled() and task.exception() is not None:
            self.handler_errors.append(task.exception())  # type: ignore[arg-type]  # checked

    def flush(self) -> int:
        """Fire every partial batch now; returns how many handler runs started."""
        started = 0
        for trigger in tuple(self._triggers):
            if trigger.pending:
                self._fire(trigger)
                started += 1
        return started

    async def join(self) -> None:
        """Wait until no handler run is in flight (handlers may emit again)."""
        while self._running:
            await asyncio.wait(tuple(self._running))

    async def aclose(self, *, cancel: bool = False) -> None:
        """Refuse new emits, then finish (flushing partial batches) or cancel the handlers.

        Recorded as a ``drain`` span with one ``drain_decision`` per partial
        batch and per running handler.
        """
        self._closed = True
        mode = "cancel" if cancel else "finish"
        pending = sum(len(trigger.pending) for trigger in self._triggers)
        running = len(self._running)
        with traced_drain(self.name, mode=mode, pending=pending, running=running) as drain:
            for task, trigger in self._running.items():
                decision = "cancel" if cancel else "finish"
                drain.decide(task.get_name(), decision, trigger=trigger.name)
            for trigger in self._triggers:
                if trigger.pending:
                    decision = "drop" if cancel else "fire"
                    drain.decide(trigger.name, decision, emits=len(trigger.pending))
            if cancel:
                for trigger in self._triggers:
                    trigger.pending.clear()
                for task in self._running:
                    task.cancel()
            else:
                self.flush()
            await self.join()
