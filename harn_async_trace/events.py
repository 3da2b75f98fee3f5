"""The span event stream: subscribers hear every span start and end.

Data flows one way: the collector emits, subscribers (exporters, tests,
progress displays) listen. A subscriber that raises is isolated: the error
is counted, logged once per subscriber, and tracing carries on.

Plain subscribers run inline, on the thread that started or ended the span,
so a *slow* one slows the traced program. :func:`subscribe_queued` isolates
slowness too: events go into a bounded queue drained by a background thread,
and when the queue is full new events are dropped and counted, never waited
for.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, final

from .kinds import SpanKind
from .model import Span, SpanLink

__all__ = [
    "QueuedSubscription",
    "SpanEndEvent",
    "SpanStartEvent",
    "Subscription",
    "subscribe",
    "subscribe_queued",
    "subscriber_error_count",
    "unsubscribe",
]

_log: Final = logging.getLogger("harn_async_trace.events")


@final
@dataclass(frozen=True, slots=True)
class SpanStartEvent:
    """A span was opened (seed ``emit_span_start``)."""

    trace_id: str
    span_id: int
    parent_id: int | None
    name: str
    kind: SpanKind
    links: tuple[SpanLink, ...]
    start_ns: int


@final
@dataclass(frozen=True, slots=True)
class SpanEndEvent:
    """A span was ended (seed ``emit_span_end``); ``span`` is the stored record.

    ``dropped`` is True when the collector was full and did not keep it.
    """

    span: Span
    dropped: bool

    @property
    def span_id(self) -> int:
        """Id of the ended span."""
        return self.span.span_id

    @property
    def duration_ms(self) -> int:
        """Duration of the ended span in ms."""
        return self.span.duration_ms


SpanEventCallback = Callable[[SpanStartEvent | SpanEndEvent], object]


@final
class Subscription:
    """Handle returned by :func:`subscribe`; also a context manager that unsubscribes."""

    __slots__ = ("_logged", "callback", "errors")

    def __init__(self, callback: SpanEventCallback) -> None:
        self.callback = callback
        self.errors = 0
        self._logged = False

    def close(self) -> None:
        """Stop receiving events (idempotent)."""
        unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_lock: Final = threading.Lock()
# Copy-on-write tuple: emitters iterate it without a lock, and the collector's
# hot path tests it for emptiness only.
_subscribers: tuple[Subscription, ...] = ()


def subscribe(callback: SpanEventCallback) -> Subscription:
    """Call ``callback(event)`` for every span start and end, in any collector.

    Example:
        >>> seen = []
        >>> sub = subscribe(seen.append)
        >>> sub.close()
    """
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    global _subscribers
    subscription = Subscription(callback)
    with _lock:
        _subscribers = (*_subscribers, subscription)
    return subscription


def unsubscribe(subscription: Subscription | SpanEventCallback) -> bool:
    """Remove a subscription (or every subscription of a callback); True if one was removed.

    Example:
        >>> unsubscribe(print)
        False
    """
    global _subscribers
    with _lock:
        # ``==``, not ``is``, for callbacks: each ``obj.method`` access makes a new
        # bound-method object, equal (same self and function) but not identical.
        kept = tuple(
            s for s in _subscribers if s is not subscription and s.callback != subscription
        )
        removed = len(kept) != len(_subscribers)
        _subscribers = kept
    return removed


def subscriber_error_count() -> int:
    """How many subscriber calls have raised (since their subscription), summed.

    Example:
        >>> subscriber_error_count() >= 0
        True
    """
    return sum(s.errors for s in _subscribers)


def has_subscribers() -> bool:
    """Cheap check used on the hot path before building an event."""
    return bool(_subscribers)


def emit(event: SpanStartEvent | SpanEndEvent) -> None:
    """Deliver ``event`` to every subscriber, isolating their failures."""
    for subscription in _subscribers:
        try:
            subscription.callback(event)
        except Exception as exc:  # a broken subscriber must never break tracing
            subscription.errors += 1
            if not subscription._logged:
                subscription._logged = True
                _log.warning(
                    "span event subscriber %r raised %s: %s (further errors counted, not logged)",
                    subscription.callback,
                    type(exc).__name__,
                    exc,
                )


# -- queued (non-blocking) subscribers -------------------------------------------

_STOP: Final = object()


@final
class QueuedSubscription:
    """A subscriber whose callback runs on a background thread behind a bounded queue.

    The emitting thread only does a ``put_nowait``: when the queue already
    holds ``maxsize`` events the new one is dropped and counted in
    ``dropped``, so a slow callback can never stall tracing. Callback errors
    are counted in ``errors`` and logged once, like :func:`subscribe`.
    Created by :func:`subscribe_queued`; also a context manager that closes
    (drains, then stops) on exit.
    """

    __slots__ = ("_logged", "_queue", "_subscription", "_thread", "callback", "dropped", "errors")

    def __init__(self, callback: SpanEventCallback, maxsize: int) -> None:
        self.callback = callback
        self.dropped = 0
        self.errors = 0
        self._logged = False
        self._queue: queue.Queue[object] = queue.Queue(maxsize)
        self._thread = threading.Thread(
            target=self._drain, name=f"harn-trace-subscriber-{id(self):x}", daemon=True
        )
        self._thread.start()
        self._subscription: Subscription | None = subscribe(self._offer)

    def _offer(self, event: SpanStartEvent | SpanEndEvent) -> None:
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            # Unlocked increment: a lost count under a race is acceptable, a lock is not.
            self.dropped += 1

    def _drain(self) -> None:
        get, done = self._queue.get, self._queue.task_done
        while True:
            event = get()
            try:
                if event is _STOP:
                    return
                self.callback(event)  # type: ignore[arg-type]  # only events and _STOP are queued
            except Exception as exc:  # isolate the subscriber, as emit() does
                self.errors += 1
                if not self._logged:
                    self._logged = True
                    _log.warning(
                        "queued span event subscriber %r raised %s: %s "
                        "(further errors counted, not logged)",
                        self.callback,
                        type(exc).__name__,
                        exc,
                    )
            finally:
                done()

    @property
    def pending(self) -> int:
        """Events queued and not yet handed to the callback."""
        return self._queue.unfinished_tasks

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued event was handled; False if ``timeout`` ran out.

        Example:
            >>> with subscribe_queued(lambda e: None) as sub:
            ...     sub.flush(timeout=1.0)
            True
        """
        q = self._queue
        with q.all_tasks_done:
            return q.all_tasks_done.wait_for(lambda: q.unfinished_tasks == 0, timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Unsubscribe, let the thread handle what is queued, stop it; True if it stopped.

        Idempotent. Example:
            >>> subscribe_queued(lambda e: None).close()
            True
        """
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()
            # Blocking put: the stop marker must not be dropped on a full queue.
            self._queue.put(_STOP)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def __enter__(self) -> QueuedSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def subscribe_queued(callback: SpanEventCallback, *, maxsize: int = 65_536) -> QueuedSubscription:
    """Like :func:`subscribe`, but ``callback`` runs on a background thread.

    Use it for slow subscribers (network, disk): the traced program only pays
    for a queue put. At most ``maxsize`` events wait; more are dropped and
    counted in ``.dropped``. Call ``.flush()`` to wait for the backlog and
    ``.close()`` to stop.

    Example:
        >>> seen = []
        >>> with subscribe_queued(seen.append, maxsize=1024) as sub:
        ...     sub.dropped
        0
    """
    if not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
        raise ValueError(f"maxsize must be a positive int, got {maxsize!r}")
    return QueuedSubscription(callback, maxsize)
