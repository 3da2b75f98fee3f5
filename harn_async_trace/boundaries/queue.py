"""``TracedQueue``: an ``asyncio.Queue`` whose items carry a link from producer to consumer.

Each ``put``/``put_nowait`` records a zero-duration ``channel_emit`` span
under the producer's span and stores the item together with a link to it
and the time it went in. ``get()`` is the plain ``asyncio.Queue.get``;
``async with queue.receive() as item:`` also opens a ``channel_match`` span
(under the consumer's span) linked to the item's emit (``relation=consumed``)
with ``queue_wait_ms``, the time the item spent in the queue, so the
consumer's handling of the item nests under it.

The hooks are asyncio's own subclassing points, ``_put`` and ``_get`` (as
``PriorityQueue`` uses them): the item is wrapped only once the queue has
accepted it, so a full queue records no emit.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Final, Generic, TypeVar, cast, final

from ..clock import current_clock
from ..collector import SpanCollector
from ..context import current_collector
from ..kinds import SpanKind
from ..model import SpanLink
from ._common import end_with_status, relink

__all__ = ("TracedQueue",)

T = TypeVar("T")
_NS_PER_MS: Final = 1_000_000


class _Envelope:
    """An item in the queue, with its emit's link and when it was put."""

    __slots__ = ("item", "link", "put_ns")

    def __init__(self, item: Any, link: SpanLink | None, put_ns: int) -> None:
        self.item = item
        self.link = link
        self.put_ns = put_ns

    def __repr__(self) -> str:  # the queue's repr lists its items
        return repr(self.item)


class TracedQueue(asyncio.Queue[T]):
    """An ``asyncio.Queue`` whose hand-offs are traced (``channel_emit`` -> ``channel_match``).

    ``name`` names both spans. Everything else is ``asyncio.Queue``:
    ``get()`` returns the plain item, ``task_done``/``join``/``maxsize``
    work as usual.

    Example:
        >>> from harn_async_trace import SpanCollector, use_collector
        >>> async def main() -> str:
        ...     queue: TracedQueue[str] = TracedQueue(name="jobs")
        ...     await queue.put("resize")
        ...     async with queue.receive() as job:
        ...         return job
        >>> collector = SpanCollector()
        >>> with use_collector(collector):
        ...     asyncio.run(main())
        'resize'
        >>> [(s.kind.value, s.links[0].attributes if s.links else {}) for s in collector.spans()]
        [('channel_emit', {}), ('channel_match', {'relation': 'consumed'})]
    """

    def __init__(self, maxsize: int = 0, *, name: str = "queue") -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int):
            raise TypeError(f"maxsize must be an int, got {maxsize!r}")
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
        super().__init__(maxsize)
        self.name = name
        # What the last _get took out besides the item, for receive() to read
        # right away (get() returns straight after _get, with no await between).
        self._taken_link: SpanLink | None = None
        self._taken_ns = 0

    def _put(self, item: T) -> None:
        collector = current_collector()
        link = None
        if collector.enabled:
            emit_id = collector.open(SpanKind.CHANNEL_EMIT, self.name)
            link = collector.span_link(emit_id)
            collector.close(emit_id, instant=True)
        envelope = _Envelope(item, link, current_clock().monotonic_ns())
        super()._put(cast(T, envelope))

    def _get(self) -> T:
        envelope = cast(_Envelope, super()._get())
        self._taken_link = envelope.link
        self._taken_ns = envelope.put_ns
        return cast(T, envelope.item)

    def receive(self) -> AbstractAsyncContextManager[T]:
        """``async with queue.receive() as item:``: ``get()``, traced as a ``channel_match`` span.

        The span opens once the item is taken, under the current span, linked
        to the item's ``channel_emit``; it ends when the block does, with
        ``status`` (an exception or cancellation in the block is recorded).

        Example:
            >>> async def main() -> int:
            ...     queue: TracedQueue[int] = TracedQueue()
            ...     queue.put_nowait(41)
            ...     async with queue.receive() as number:
            ...         return number + 1
            >>> asyncio.run(main())
            42
        """
        return _Receipt(self)


@final
class _Receipt(Generic[T]):
    """One ``async with queue.receive()``: takes an item, spans the block."""

    __slots__ = ("_collector", "_queue", "_span_id")

    def __init__(self, queue: TracedQueue[T]) -> None:
        self._queue = queue
        self._collector: SpanCollector | None = None
        self._span_id = 0

    async def __aenter__(self) -> T:
        queue = self._queue
        item = await queue.get()
        link, put_ns = queue._taken_link, queue._taken_ns
        collector = current_collector()
        if collector.enabled:
            waited_ms = (current_clock().monotonic_ns() - put_ns) // _NS_PER_MS
            self._collector = collector
            self._span_id = collector.open(
                SpanKind.CHANNEL_MATCH,
                queue.name,
                None if link is None else [relink(link, relation="consumed")],
                metadata={"queue_wait_ms": waited_ms},
            )
        return item

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        collector, self._collector = self._collector, None
        if collector is not None:
            end_with_status(collector, self._span_id, exc)
