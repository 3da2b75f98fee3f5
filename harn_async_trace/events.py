"""The span event stream: listeners hear span starts and ends.

Data flows one way: the collector emits, listeners (exporters, tests,
progress displays) hear. As in OpenTelemetry's ``SpanProcessor.on_start`` /
``on_end`` and trio's per-hook instrument lists, starts and ends have their
own listener lists: the collector builds a start event only when someone
listens for starts, and the exporters listen for ends only, so a traced
program with only exporters attached never pays for start events.

A listener that raises is isolated: the error is counted, logged once per
subscription, and tracing carries on.

Plain listeners run inline, on the thread that started or ended the span,
so a *slow* one slows the traced program. :func:`subscribe_queued` isolates
slowness too: events go into a bounded queue drained by a background thread,
and when the queue is full new events are dropped and counted, never waited
for.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, final

from .kinds import SpanKind
from .model import Span, SpanLink

__all__ = (
    "QueuedSubscription",
    "SpanEndEvent",
    "SpanStartEvent",
    "Subscription",
    "emit_end",
    "emit_start",
    "subscribe",
    "subscribe_queued",
    "subscriber_error_count",
    "unsubscribe",
    "unsubscribe_all",
)

_log: Final = logging.getLogger("harn_async_trace.events")


@final
@dataclass(frozen=True, slots=True)
class SpanStartEvent:
    """A span was opened (harn-vm's ``emit_span_start``).

    ``metadata`` is what the span was opened with (a copy); ``start_unix_ns``
    is its start on the wall clock; ``lane`` the task it runs in;
    ``collector`` the ``SpanCollector`` that opened it.
    """

    trace_id: str
    span_id: int
    parent_id: int | None
    name: str
    kind: SpanKind
    links: tuple[SpanLink, ...]
    start_ns: int
    metadata: Mapping[str, Any] = field(default_factory=dict)
    start_unix_ns: int = 0
    lane: int = 0
    collector: Any = None  # typed loosely: events sit below the collector


@final
@dataclass(frozen=True, slots=True)
class SpanEndEvent:
    """A span was ended (harn-vm's ``emit_span_end``); ``span`` is the stored record.

    ``dropped`` is True when the collector was full and did not keep it;
    ``collector`` is the ``SpanCollector`` that ended it.
    """

    span: Span
    dropped: bool
    collector: Any = None  # typed loosely: events sit below the collector

    @property
    def span_id(self) -> int:
        """Id of the ended span."""
        return self.span.span_id

    @property
    def duration_ms(self) -> int:
        """Duration of the ended span in ms."""
        return self.span.duration_ms


SpanEventCallback = Callable[[SpanStartEvent | SpanEndEvent], object]
StartCallback = Callable[[SpanStartEvent], object]
EndCallback = Callable[[SpanEndEvent], object]


@final
class Subscription:
    """Handle returned by :func:`subscribe`; also a context manager that unsubscribes.

    ``errors`` counts the calls that raised.
    """

    __slots__ = ("_logged", "callback", "errors", "on_end", "on_start")

    def __init__(
        self,
        callback: object,
        on_start: StartCallback | None,
        on_end: EndCallback | None,
    ) -> None:
        self.callback = callback  # what unsubscribe(callback) matches
        self.on_start = on_start
        self.on_end = on_end
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
# Copy-on-write tuples: emitters iterate them without a lock, and the
# collector's hot path tests each for emptiness only.
_subscribers: tuple[Subscription, ...] = ()
_start_subscribers: tuple[Subscription, ...] = ()
_end_subscribers: tuple[Subscription, ...] = ()

# Given the collector opening a root, None (an ordinary root) or
# (trace id, its ``remote_parent`` link or None) for a root inside a trace
# that is not harn's.
RootParentHook = Callable[[Any], "tuple[str, SpanLink | None] | None"]
# The cores call it only for a span with no open harn span above it, no links
# and no new_trace, and read it only on that branch: with no hook (every
# process without use_otel) a root pays one read, other spans nothing. A
# one-item list, so the compiled core holds the list and reads its item
# (no dict lookup per root).
_root_parent: Final[list[RootParentHook | None]] = [None]


def _set_root_parent(hook: RootParentHook | None) -> RootParentHook | None:
    """Install the root-parent hook (None removes it); returns the one it replaced.

    ``use_otel()``'s live export sets it, so that a harn root opened inside a
    foreign OTel span takes that span's trace id and a ``remote_parent`` link.

    Example:
        >>> from harn_async_trace import SpanCollector
        >>> previous = _set_root_parent(lambda c: ("trace_elsewhere", None))
        >>> c = SpanCollector(); c.end(c.open("step", "root")).trace_id
        'trace_elsewhere'
        >>> _ = _set_root_parent(previous)
    """
    if hook is not None and not callable(hook):
        raise TypeError(f"hook must be callable or None, got {hook!r}")
    previous, _root_parent[0] = _root_parent[0], hook
    return previous


def _publish(subscribers: tuple[Subscription, ...]) -> None:
    global _subscribers, _start_subscribers, _end_subscribers
    _subscribers = subscribers
    _start_subscribers = tuple(s for s in subscribers if s.on_start is not None)
    _end_subscribers = tuple(s for s in subscribers if s.on_end is not None)


def _listeners(
    callback: object, on_start: object, on_end: object
) -> tuple[StartCallback | None, EndCallback | None]:
    if callback is not None:
        if on_start is not None or on_end is not None:
            raise TypeError("pass either callback (both events) or on_start/on_end, not both")
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        return callback, callback  # one callable hears both kinds
    for label, hook in (("on_start", on_start), ("on_end", on_end)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{label} must be callable, got {hook!r}")
    if on_start is None and on_end is None:
        raise TypeError("subscribe() needs a callback, on_start or on_end")
    return on_start, on_end  # type: ignore[return-value]  # checked callable above


def subscribe(
    callback: SpanEventCallback | None = None,
    *,
    on_start: StartCallback | None = None,
    on_end: EndCallback | None = None,
) -> Subscription:
    """Listen to span events of every collector.

    ``subscribe(callback)`` hears starts and ends; ``subscribe(on_end=f)``
    hears only ends (cheaper: no start event is built for it), and
    ``on_start``/``on_end`` together split the two.

    Example:
        >>> ended = []
        >>> with subscribe(on_end=ended.append):
        ...     pass
        >>> seen = []
        >>> subscribe(seen.append).close()
    """
    start_hook, end_hook = _listeners(callback, on_start, on_end)
    subscription = Subscription(callback if callback is not None else (on_start, on_end),
                                start_hook, end_hook)
    with _lock:
        _publish((*_subscribers, subscription))
    return subscription


def unsubscribe(subscription: Subscription | SpanEventCallback) -> bool:
    """Remove a subscription (or every subscription of a callback); True if one was removed.

    Example:
        >>> unsubscribe(print)
        False
    """
    with _lock:
        # ``==``, not ``is``, for callbacks: each ``obj.method`` access makes a new
        # bound-method object, equal (same self and function) but not identical.
        kept = tuple(
            s
            for s in _subscribers
            if s is not subscription and subscription not in (s.callback, s.on_start, s.on_end)
        )
        removed = len(kept) != len(_subscribers)
        _publish(kept)
    return removed


def unsubscribe_all() -> int:
    """Remove every subscription (a clean slate between tests); returns how many there were.

    Example:
        >>> _ = subscribe(print); unsubscribe_all() >= 1
        True
    """
    with _lock:
        count = len(_subscribers)
        _publish(())
    return count


def subscriber_error_count() -> int:
    """How many listener calls have raised (since their subscription), summed.

    Example:
        >>> subscriber_error_count() >= 0
        True
    """
    return sum(s.errors for s in _subscribers)


def _isolate(subscription: Subscription, exc: BaseException) -> None:
    subscription.errors += 1
    if not subscription._logged:
        subscription._logged = True
        _log.warning(
            "span event subscriber %r raised %s: %s (further errors counted, not logged)",
            subscription.callback,
            type(exc).__name__,
            exc,
        )


def emit_start(event: SpanStartEvent) -> None:
    """Deliver a start event to every start listener, isolating their failures.

    Called by collectors (only when ``_start_subscribers`` is non-empty).

    Example:
        >>> emit_start(SpanStartEvent("t", 1, None, "a", SpanKind.STEP, (), 0))
    """
    for subscription in _start_subscribers:
        try:
            subscription.on_start(event)  # type: ignore[misc]  # only listeners with on_start are here
        except Exception as exc:  # a broken subscriber must never break tracing
            _isolate(subscription, exc)


def emit_end(event: SpanEndEvent) -> None:
    """Deliver an end event to every end listener, isolating their failures.

    Called by collectors (only when ``_end_subscribers`` is non-empty).
    """
    for subscription in _end_subscribers:
        try:
            subscription.on_end(event)  # type: ignore[misc]  # only listeners with on_end are here
        except Exception as exc:  # a broken subscriber must never break tracing
            _isolate(subscription, exc)


# -- queued (non-blocking) subscribers -------------------------------------------

_STOP: Final = object()


@final
class QueuedSubscription:
    """A subscriber whose callbacks run on a background thread behind a bounded queue.

    The emitting thread only does a ``put_nowait``: when the queue already
    holds ``maxsize`` events the new one is dropped and counted in
    ``dropped``, so a slow callback can never stall tracing. Callback errors
    (``SystemExit`` included: the thread keeps delivering) are counted in
    ``errors`` and logged once, like :func:`subscribe`. Created by
    :func:`subscribe_queued`; also a context manager that closes (drains,
    then stops) on exit.
    """

    __slots__ = (
        "_closing",
        "_logged",
        "_queue",
        "_subscription",
        "_thread",
        "callback",
        "dropped",
        "errors",
        "undelivered",
    )

    def __init__(
        self,
        callback: object,
        on_start: StartCallback | None,
        on_end: EndCallback | None,
        maxsize: int,
    ) -> None:
        self.callback = callback
        self.dropped = 0
        self.errors = 0
        # Events still queued when close() gave up waiting (see close()).
        self.undelivered = 0
        self._logged = False
        self._closing = False
        self._queue: queue.Queue[Any] = queue.Queue(maxsize)
        self._thread = threading.Thread(
            target=self._drain, name=f"harn-trace-subscriber-{id(self):x}", daemon=True
        )
        self._thread.start()
        offer = self._queue.put_nowait

        def offer_start(event: SpanStartEvent) -> None:
            try:
                offer((on_start, event))
            except queue.Full:
                # Unlocked increment: a lost count under a race is acceptable, a lock is not.
                self.dropped += 1

        def offer_end(event: SpanEndEvent) -> None:
            try:
                offer((on_end, event))
            except queue.Full:
                self.dropped += 1

        self._subscription: Subscription | None = subscribe(
            on_start=None if on_start is None else offer_start,
            on_end=None if on_end is None else offer_end,
        )

    def _drain(self) -> None:
        q = self._queue
        get, done = q.get, q.task_done
        while True:
            item = get()
            try:
                if item is _STOP:
                    return
                hook, event = item
                hook(event)
            except BaseException as exc:  # isolate the subscriber, SystemExit included
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
            # close() could not queue its stop marker (the queue was full):
            # stop once the backlog is delivered.
            if self._closing and q.empty():
                return

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
        """Unsubscribe, let the thread deliver what is queued, stop it; True if it stopped.

        Returns within ``timeout`` seconds even when the callback is stuck and
        the queue is full; then it returns False, ``undelivered`` says how many
        events were still waiting, and the thread stops by itself once it has
        delivered them. Idempotent.

        Example:
            >>> subscribe_queued(lambda e: None).close()
            True
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()
            self._closing = True
            try:
                self._queue.put(_STOP, timeout=timeout)
            except queue.Full:
                pass  # the thread sees _closing after its current event
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        self._thread.join(remaining)
        stopped = not self._thread.is_alive()
        self.undelivered = 0 if stopped else self.pending
        if not stopped:
            _log.warning(
                "queued span event subscriber %r did not finish within %ss: "
                "%d event(s) not delivered yet",
                self.callback,
                timeout,
                self.undelivered,
            )
        return stopped

    def __enter__(self) -> QueuedSubscription:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def subscribe_queued(
    callback: SpanEventCallback | None = None,
    *,
    on_start: StartCallback | None = None,
    on_end: EndCallback | None = None,
    maxsize: int = 65_536,
) -> QueuedSubscription:
    """Like :func:`subscribe`, but the callbacks run on a background thread.

    Use it for slow subscribers (network, disk): the traced program only pays
    for a queue put. At most ``maxsize`` events wait; more are dropped and
    counted in ``.dropped``. Call ``.flush()`` to wait for the backlog and
    ``.close()`` to stop.

    Example:
        >>> seen = []
        >>> with subscribe_queued(on_end=seen.append, maxsize=1024) as sub:
        ...     sub.dropped
        0
    """
    start_hook, end_hook = _listeners(callback, on_start, on_end)
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
        raise ValueError(f"maxsize must be a positive int, got {maxsize!r}")
    return QueuedSubscription(
        callback if callback is not None else (on_start, on_end), start_hook, end_hook, maxsize
    )
