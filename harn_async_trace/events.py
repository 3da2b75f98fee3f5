"""The span event stream: subscribers hear every span start and end.

Data flows one way: the collector emits, subscribers (exporters, tests,
progress displays) listen. A subscriber that raises is isolated: the error
is counted, logged once per subscriber, and tracing carries on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, final

from .kinds import SpanKind
from .model import Span, SpanLink

__all__ = [
    "SpanEndEvent",
    "SpanStartEvent",
    "Subscription",
    "subscribe",
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
        kept = tuple(
            s for s in _subscribers if s is not subscription and s.callback is not subscription
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
