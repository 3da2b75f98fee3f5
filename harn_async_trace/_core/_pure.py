"""The pure-Python core: the collector's core interface and the open-span handle.

The fallback of the compiled core (``_ccore.c``), with the same behaviour
method for method; ``HARN_TRACE_PURE=1`` selects it. See ``__init__.py``
for the shared design (chains, rows, side tables) and the collector's
module docstring for the interface.

Finished spans here are rows flattened into one list, ``_STRIDE`` items per
span, holding only ints, strings, the kind and a shared ``(trace_id,
binding)`` pair: no object per finished span, so the garbage collector has
nothing to traverse for them and a span costs its list slots and three ints.
An open span keeps the first seven items of its row as one tuple (``_row``,
built at open from locals) so that ending it is two list operations.
"""

from __future__ import annotations

import copy
import itertools
import threading
from collections.abc import Iterable
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Final

from .. import events as _events
from .._trace_id import new_trace_id
from ..clock import Clock, SystemClock, current_clock
from ..kinds import _KIND_BY_VALUE, SpanKind, coerce_kind
from ..model import Span, SpanEvent, SpanLink, _ClockBinding

__all__ = ("ChainBinding", "CoreCollector", "SpanHandle")

_NS_PER_MS: Final = 1_000_000
# Row layout: span_id, parent_id, kind, name, start_ns, lane, ctx, duration_ns;
# ctx is the (trace_id, binding) pair, shared by many spans.
_STRIDE: Final = 8
_PARENT: Final = 1
_START: Final = 4
_LANE: Final = 5
_CTX: Final = 6
_SYSTEM: Final = SystemClock()
_NO_BINDING: Final = _ClockBinding(None, 0, 0)
# events._root_parent itself (a one-item list): a root reads its item, no
# module attribute lookup.
_ROOT_PARENT: Final = _events._root_parent


def checked_kind(kind: object) -> SpanKind:
    """``kind`` as a ``SpanKind`` (members, or their string values), else TypeError.

    ``CoreCollector.open`` inlines the same test: it runs on every span.
    """
    if type(kind) is SpanKind:
        return kind
    try:  # members hash and compare like their values: one lookup serves both
        return _KIND_BY_VALUE[kind]  # type: ignore[index]  # unhashables raise TypeError
    except (KeyError, TypeError):
        return coerce_kind(kind)


def checked_name(name: object) -> str:
    """``name`` as an exact ``str`` (a copy for ``str`` subclasses), else TypeError."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
    return str.__str__(name)


def _checked_at_ns(at_ns: object) -> int:
    """``record_event``'s ``at_ns`` as an int in [0, 2**63), else TypeError/ValueError."""
    if isinstance(at_ns, bool) or not isinstance(at_ns, int):
        raise TypeError(f"at_ns must be an int (ns since the Unix epoch) or None, got {at_ns!r}")
    if at_ns < 0:
        raise ValueError(f"at_ns must be >= 0, got {at_ns!r}")
    if at_ns >= 1 << 63:  # the compiled core keeps times as int64
        raise ValueError(f"at_ns must be < 2**63, got {at_ns!r}")
    return int(at_ns)


class SpanHandle:
    """An open span: what ``with span(...) as handle`` gives, with helpers bound to it.

    ``span_id`` is 0 when tracing is disabled, and every helper is then a
    no-op. Once the span ends (or its collector is reset) the helpers do
    nothing either.

    Example:
        >>> from harn_async_trace import SpanCollector, span, use_collector
        >>> with use_collector(SpanCollector()), span("step", "load") as handle:
        ...     handle.set_metadata("rows", 3)
        ...     handle.link().span_id
        '1'
    """

    __slots__ = ("_collector", "_duration_ns", "_events", "_links", "_metadata", "_prev",
                 "_row", "span_id")
    # None once the span has ended: that is how chains skip it.
    _collector: CoreCollector | None
    _duration_ns: int
    _events: list[SpanEvent] | None
    _links: list[SpanLink] | None
    _metadata: dict[str, Any] | None
    # The span below this one on the chain of the task that pushed it.
    _prev: SpanHandle | None
    # span_id, parent_id, kind, name, start_ns, lane, (trace_id, binding)
    _row: tuple[int, int | None, SpanKind, str, int, int, tuple[str, _ClockBinding]]
    span_id: int

    def set_metadata(self, key: str, value: Any) -> None:
        """Set metadata on the span while it is open."""
        collector = self._collector
        if collector is not None:
            collector.set_metadata(self.span_id, key, value)

    def record_event(self, name: str, **attrs: Any) -> bool:
        """Record an event on the span; False when disabled or ended."""
        collector = self._collector
        if collector is None:
            return False
        return collector.record_event(self.span_id, name, attrs or None)

    def link(self) -> SpanLink | None:
        """A link to this span (None when disabled or ended)."""
        if self._collector is None:
            return None
        return SpanLink(self._row[_CTX][0], str(self.span_id))

    def __repr__(self) -> str:
        return f"SpanHandle(span_id={self.span_id})"


_new_handle: Final = SpanHandle.__new__
_new_span: Final = Span.__new__
_slot: Final = Span.__dict__
_set_trace, _set_binding, _set_span_id, _set_parent = (
    _slot["trace_id"].__set__, _slot["_binding"].__set__,
    _slot["span_id"].__set__, _slot["parent_id"].__set__,
)  # fmt: skip
_set_kind, _set_name, _set_start, _set_duration, _set_lane = (
    _slot["kind"].__set__, _slot["name"].__set__, _slot["start_ns"].__set__,
    _slot["duration_ns"].__set__, _slot["lane"].__set__,
)  # fmt: skip
_set_metadata, _set_links, _set_events = (
    _slot["_metadata"].__set__, _slot["_links"].__set__, _slot["_events"].__set__,
)  # fmt: skip

# The handle of every span entered while tracing is off.
DISABLED: Final = _new_handle(SpanHandle)
DISABLED.span_id = 0
DISABLED._collector = None


class ChainBinding:
    """``with collector.bind(span_id):`` -- the span is the whole chain inside."""

    __slots__ = ("_chain", "_node", "_token")

    def __init__(self, chain: ContextVar[SpanHandle | None], node: SpanHandle | None) -> None:
        self._chain = chain
        self._node = node
        self._token: Token[SpanHandle | None] | None = None

    def __enter__(self) -> None:
        self._token = self._chain.set(self._node)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is not None:
            self._chain.reset(token)


def _build(
    span_id: int, parent_id: int | None, kind: SpanKind, name: str, start_ns: int,
    lane: int, ctx: tuple[str, _ClockBinding], duration_ns: int,
    metadata: dict[str, Any] | None, links: list[SpanLink] | None,
    events: list[SpanEvent] | None,
) -> Span:
    span = _new_span(Span)
    # Through the slot descriptors: Span.__setattr__ refuses every assignment.
    _set_trace(span, ctx[0])
    _set_binding(span, ctx[1])
    _set_span_id(span, span_id)
    _set_parent(span, parent_id)
    _set_kind(span, kind)
    _set_name(span, name)
    _set_start(span, start_ns)
    _set_duration(span, duration_ns)
    _set_lane(span, lane)
    # Shared with the side table, so a later attach_metadata_if_absent shows.
    _set_metadata(span, metadata)
    _set_links(span, links)
    _set_events(span, events)
    return span


class CoreCollector:
    """The core interface of ``SpanCollector`` (pure Python; see the collector's docstring).

    Example:
        >>> c = CoreCollector()
        >>> c.close(c.open("step", "a"))
        True
    """

    __slots__ = (
        "_bindings",
        "_chain",
        "_ctx_cache",
        "_events_table",
        "_generation",
        "_id_counter",
        "_last_binding",
        "_last_clock",
        "_links_table",
        "_lock",
        "_meta_table",
        "_next_id",
        "_open",
        "_root_ctx",
        "_row_limit",
        "_rows",
        "_system_epoch",
        "dropped_events",
        "dropped_links",
        "dropped_metadata",
        "dropped_spans",
        "enabled",
        "max_events_per_span",
        "max_links_per_span",
        "max_metadata_per_span",
        "trace_id",
    )

    def __init__(self) -> None:
        self.enabled = True
        self._row_limit = 1_000_000 * _STRIDE
        self.max_events_per_span = 128
        self.max_links_per_span = 128
        self.max_metadata_per_span = 128
        # One ContextVar per collector keeps chains of different collectors apart.
        self._chain: ContextVar[SpanHandle | None] = ContextVar(
            f"harn_span_chain_{id(self):x}", default=None
        )
        self._lock = threading.Lock()
        self._open: dict[int, SpanHandle] = {}
        # Bumped by every reset: a reset run by a clock or listener in the
        # middle of an open or an end is noticed (as in the compiled core).
        self._generation = 0
        self._reset_state(1)

    @property
    def max_spans(self) -> int:
        """How many finished spans are held at most (newer ones are dropped and counted)."""
        return self._row_limit // _STRIDE

    @max_spans.setter
    def max_spans(self, value: int) -> None:
        self._row_limit = value * _STRIDE

    # -- state ---------------------------------------------------------------

    def _reset_state(self, first_id: int) -> None:
        self._generation += 1
        self.trace_id: str = new_trace_id(current_clock())
        self._id_counter = itertools.count(first_id)
        self._next_id = self._id_counter.__next__
        self._open = {}
        self._rows: list[Any] = []
        self._meta_table: dict[int, dict[str, Any]] = {}
        self._links_table: dict[int, list[SpanLink]] = {}
        self._events_table: dict[int, list[SpanEvent]] = {}
        self.dropped_spans = 0
        self.dropped_events = 0
        self.dropped_links = 0
        self.dropped_metadata = 0
        # The system clock's epoch: span times count from the (last) reset.
        self._system_epoch = (_SYSTEM.monotonic_ns(), _SYSTEM.wall_ns())
        self._bindings: dict[int, _ClockBinding] = {}
        self._ctx_cache: dict[tuple[int, int], tuple[str, _ClockBinding]] = {}
        self._root_ctx: tuple[str, _ClockBinding] = ("", _NO_BINDING)
        # Never matched by a clock (it is None): the first span looks its binding up.
        self._last_clock: Clock | None = None
        self._last_binding: _ClockBinding = _NO_BINDING

    def reset(self) -> None:
        """Forget every span and start a new trace (see ``SpanCollector.reset``).

        Example:
            >>> c = CoreCollector(); a = c.open("step", "a"); c.reset()
            >>> (c.close(a), c.open("step", "b") != a)
            (False, True)
        """
        with self._lock:
            abandoned = list(self._open.values())
            for live in abandoned:
                live._collector = None  # chains skip it; it is never recorded
            # A copy of the counter peeks at the next id without taking it.
            first_id = next(copy.copy(self._id_counter)) if abandoned else 1
            self._reset_state(first_id)

    def _restart_ids(self, trace_id: str, first_span_id: int) -> None:
        with self._lock:
            self.trace_id = trace_id
            self._id_counter = itertools.count(first_span_id)
            self._next_id = self._id_counter.__next__

    def _binding_for(self, clock: Clock) -> _ClockBinding:
        binding = self._bindings.get(id(clock))
        if binding is None or binding.clock is not clock:
            if isinstance(clock, SystemClock):
                mono, wall = self._system_epoch
                binding = _ClockBinding(clock, mono, wall)
            else:
                # Mock (or custom) clocks: their own monotonic time is the span time.
                binding = _ClockBinding(clock, 0, clock.wall_ns() - clock.monotonic_ns())
            self._bindings[id(clock)] = binding
        self._last_clock = clock
        self._last_binding = binding
        return binding

    def _ctx_for(self, trace_id: str, binding: _ClockBinding) -> tuple[str, _ClockBinding]:
        # Interned so that rows share one pair per (trace, clock), not one per span.
        key = (id(trace_id), id(binding))
        ctx = self._ctx_cache.get(key)
        if ctx is None or ctx[0] is not trace_id or ctx[1] is not binding:
            ctx = self._ctx_cache[key] = (trace_id, binding)
        if trace_id is self.trace_id:
            self._root_ctx = ctx
        return ctx

    # -- opening -------------------------------------------------------------

    def open(
        self,
        kind: SpanKind | str,
        name: str,
        links: list[SpanLink] | None = None,
        # Not keyword-only on purpose: CPython fills missing keyword-only
        # arguments by dict lookups, positional defaults by a tuple copy.
        detached: bool = False,
        push: bool = True,
        new_trace: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Open a span and return its id (see ``SpanCollector.open``).

        Example:
            >>> c = CoreCollector(); p = c.open("pipeline", "p"); s = c.open("step", "s")
            >>> c.current_span_id() == s != p
            True
        """
        # Keep it flat: every attribute read and call below is paid on each
        # span (docs/performance.md).
        if type(kind) is not SpanKind:
            try:  # members hash and compare like their values: one lookup serves both
                kind = _KIND_BY_VALUE[kind]
            except (KeyError, TypeError):
                kind = coerce_kind(kind)
        if type(name) is not str:
            name = checked_name(name)
        generation = self._generation
        clock = current_clock()
        binding = self._last_binding if clock is self._last_clock else self._binding_for(clock)
        top = self._chain.get()
        while top is not None and top._collector is None:
            top = top._prev
        if top is None:
            # A root asks the root-parent hook before its id is taken: the
            # hook may restart the ids (as continue_trace does).
            if _ROOT_PARENT[0] is None or links or new_trace:
                trace_id = self.trace_id
            else:  # a root that may sit inside someone else's trace (events._root_parent)
                trace_id, links = self._foreign_root()
            span_id = lane = self._next_id()
            if new_trace:
                trace_id = new_trace_id(clock)
            parent_id = None
            ctx = self._root_ctx
        else:
            span_id = self._next_id()
            up = top._row
            ctx = up[_CTX]
            lane = up[_LANE]
            if detached or new_trace:
                parent_id = None
                trace_id = new_trace_id(clock) if new_trace else ctx[0]
                if not push:  # detached and not pushed: the span of work for a new task
                    lane = span_id
            else:
                parent_id = top.span_id
                trace_id = ctx[0]
        span = _new_handle(SpanHandle)
        span.span_id = span_id
        if links:
            span._links = links = self._checked_links(links)
            if detached and not push and links and not new_trace:
                # Handed-off work follows the trace of the span that handed it off.
                trace_id = links[0].trace_id
        else:
            span._links = None
        span._metadata = self._checked_metadata(metadata) if metadata else None
        span._events = None
        # The pair rows share: the parent's or the roots' usually, else interned.
        if ctx[0] is not trace_id or ctx[1] is not binding:
            ctx = self._ctx_for(trace_id, binding)
        span._row = (span_id, parent_id, kind, name, binding.now() - binding.base_ns, lane, ctx)
        if self._generation != generation:
            raise RuntimeError("the collector was reset while a span was being opened")
        span._collector = self
        if push:
            span._prev = top
            self._chain.set(span)
        else:
            span._prev = None
        self._open[span_id] = span
        if _events._start_subscribers:
            self._emit_start(span)
        return span_id

    def _foreign_root(self) -> tuple[str, list[SpanLink] | None]:
        """The trace id and links of a root, as the root-parent hook says (see events)."""
        hook = _ROOT_PARENT[0]
        found = None if hook is None else hook(self)
        if found is None:
            return self.trace_id, None
        if (
            type(found) is not tuple
            or len(found) != 2
            or type(found[0]) is not str
            or not (found[1] is None or isinstance(found[1], SpanLink))
        ):
            raise TypeError(
                "the root-parent hook must return None or (trace_id: str, link: SpanLink | "
                f"None), got {found!r}"
            )
        return found[0], None if found[1] is None else [found[1]]

    def start(self, kind: SpanKind | str, name: str) -> int:
        """Open a span under the current task's innermost open span; returns its id.

        Example:
            >>> CoreCollector().start(SpanKind.STEP, "load")
            1
        """
        return self.open(kind, name)

    def _checked_metadata(self, metadata: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {metadata!r}")
        for key in metadata:
            if type(key) is not str:
                raise TypeError(f"metadata key must be a str, got {key!r}")
        limit = self.max_metadata_per_span
        if len(metadata) > limit:
            self.dropped_metadata += len(metadata) - limit
            return dict(itertools.islice(metadata.items(), limit))
        return dict(metadata)

    def _checked_links(self, links: list[SpanLink]) -> list[SpanLink]:
        if not isinstance(links, list | tuple):
            raise TypeError(f"links must be a list of SpanLink, got {type(links).__name__}")
        for index, link in enumerate(links):
            if not isinstance(link, SpanLink):
                raise TypeError(f"links[{index}] must be a SpanLink, got {link!r}")
        kept = list(links)
        if len(kept) > self.max_links_per_span:
            self.dropped_links += len(kept) - self.max_links_per_span
            del kept[self.max_links_per_span :]
        return kept

    def _emit_start(self, span: SpanHandle) -> None:
        try:
            span_id, parent_id, kind, name, start_ns, lane, (trace_id, binding) = span._row
            _events.emit_start(
                _events.SpanStartEvent(
                    trace_id, span_id, parent_id, name, kind, tuple(span._links or ()),
                    start_ns, dict(span._metadata or {}), start_ns + binding.wall_offset_ns,
                    lane, self,
                )
            )
        except BaseException:
            # emit_start() isolates Exceptions; a KeyboardInterrupt/SystemExit
            # from a listener still escapes. The caller never got the id, so
            # nobody could end this span: unregister it and mark it ended,
            # which makes every chain skip it.
            self._open.pop(span.span_id, None)
            span._collector = None
            raise

    def bind(self, span_id: int) -> ChainBinding:
        """Make the open span ``span_id`` the whole chain of this context while in the block.

        Example:
            >>> c = CoreCollector(); job = c.open("spawn", "job", detached=True, push=False)
            >>> with c.bind(job):
            ...     c.current_span_id() == job
            True
        """
        return ChainBinding(self._chain, self._open.get(span_id))

    # -- open-span edits -----------------------------------------------------

    def set_metadata(self, span_id: int, key: str, value: Any) -> None:
        """Set ``key`` on an open span; unknown or ended ids are ignored.

        Example:
            >>> c = CoreCollector(); s = c.open("step", "a"); c.set_metadata(s, "k", 1)
        """
        span = self._open.get(span_id)
        if span is None:
            return
        if type(key) is not str:
            raise TypeError(f"metadata key must be a str, got {key!r}")
        metadata = span._metadata
        if metadata is None:
            metadata = span._metadata = {}
        if key not in metadata and len(metadata) >= self.max_metadata_per_span:
            self.dropped_metadata += 1
            return
        metadata[key] = value

    def attach_metadata_if_absent(self, span_id: int, key: str, value: Any) -> None:
        """Set ``key`` unless present, on an open *or finished* span.

        Example:
            >>> c = CoreCollector(); s = c.open("step", "a"); _ = c.close(s)
            >>> c.attach_metadata_if_absent(s, "late", True); c.spans()[0].metadata
            {'late': True}
        """
        if type(key) is not str:
            raise TypeError(f"metadata key must be a str, got {key!r}")
        span = self._open.get(span_id)
        if span is not None:
            metadata = span._metadata
            if metadata is None:
                metadata = span._metadata = {}
        else:
            found = self._meta_table.get(span_id)
            if found is None:
                if not self._is_finished(span_id):
                    return
                found = self._meta_table[span_id] = {}
            metadata = found
        if key in metadata:
            return
        if len(metadata) >= self.max_metadata_per_span:
            self.dropped_metadata += 1
            return
        metadata[key] = value

    def rename(self, span_id: int, name: str, /) -> bool:
        """Give an open span a new name; False (nothing renamed) if it is not open.

        For a span opened before its name is known: ``instrument_asyncio``
        opens a task's span when the task is created, and the loop may name
        the task only afterwards. The finished record and every export carry
        the new name (start listeners were told the old one).

        Example:
            >>> c = CoreCollector(); s = c.open("spawn", "Task-7", detached=True, push=False)
            >>> (c.rename(s, "fetch"), c.end(s).name, c.rename(s, "late"))
            (True, 'fetch', False)
        """
        # The name is checked even when the id is not open: a wrong type is
        # a bug at the call site whatever state the span is in.
        name = checked_name(name)
        if type(span_id) is bool:  # True == 1 as a dict key: never span 1
            return False
        try:
            span = self._open.get(span_id)
        except TypeError:  # unhashable: not an id (the compiled core's lookup agrees)
            return False
        if span is None:
            return False
        row = span._row
        span._row = (row[0], row[1], row[2], name, row[4], row[5], row[6])
        return True

    def _is_finished(self, span_id: int) -> bool:
        rows = self._rows
        # Finished spans are nearly always looked up right after they end.
        for index in range(len(rows) - _STRIDE, -1, -_STRIDE):
            if rows[index] == span_id:
                return True
        return False

    def record_event(
        self,
        span_id: int,
        name: str,
        attributes: dict[str, Any] | None = None,
        at_ns: int | None = None,
    ) -> bool:
        """Record a timestamped event on an open span; False if it is not open.

        ``at_ns`` is the event's time in ns since the Unix epoch (the clock of
        ``Span.start_unix_ns`` and ``open_details``); None means now.

        Example:
            >>> c = CoreCollector(); s = c.open("step", "a")
            >>> c.record_event(s, "retry", {"attempt": 2})
            True
            >>> start_unix_ns = c.open_details(s)[2]
            >>> c.record_event(s, "first_token", at_ns=start_unix_ns + 125_000_000)
            True
            >>> c.end(s).events[1].offset_ms
            125
        """
        span = self._open.get(span_id)
        if span is None:
            return False
        if type(name) is not str:
            raise TypeError(f"event name must be a str, got {name!r}")
        if attributes is not None and not isinstance(attributes, dict):
            raise TypeError(f"event attributes must be a dict, got {attributes!r}")
        if at_ns is not None:
            at_ns = _checked_at_ns(at_ns)
        events = span._events
        if events is None:
            events = span._events = []
        elif len(events) >= self.max_events_per_span:
            self.dropped_events += 1
            return True
        row = span._row
        binding = row[_CTX][1]
        start_ns = row[_START]
        if at_ns is None:
            offset_ns = binding.now() - binding.base_ns - start_ns
        else:  # a given time needs no clock read
            offset_ns = at_ns - binding.wall_offset_ns - start_ns
        events.append(
            SpanEvent(
                name,
                (start_ns + offset_ns + binding.wall_offset_ns) // _NS_PER_MS,
                offset_ns // _NS_PER_MS,
                dict(attributes) if attributes else {},
            )
        )
        return True

    # -- ending --------------------------------------------------------------

    def close(self, span_id: int, instant: bool = False) -> bool:
        """End an open span without building its record; True if it was open.

        Example:
            >>> c = CoreCollector(); s = c.open("step", "a")
            >>> (c.close(s), c.close(s))
            (True, False)
        """
        span = self._open.pop(span_id, None)
        if span is None:
            return False
        # Ended before the clock is read: a clock that raises loses the
        # span instead of leaving it half open.
        span._collector = None
        row = span._row
        if instant:
            duration = span._duration_ns = 0
        else:
            generation = self._generation
            binding = row[_CTX][1]
            duration = span._duration_ns = binding.now() - binding.base_ns - row[_START]
            if self._generation != generation:
                return True  # the clock reset the collector: the span went with it
        # The chain is not popped: the ended span stays on top of its task's
        # chain until the next push there walks past it (see __init__.py).
        rows = self._rows
        if len(rows) < self._row_limit:
            rows += row
            rows.append(duration)
            if span._metadata is not None:
                self._meta_table[span_id] = span._metadata
            if span._links is not None:
                self._links_table[span_id] = span._links
            if span._events is not None:
                self._events_table[span_id] = span._events
            if _events._end_subscribers:
                _events.emit_end(_events.SpanEndEvent(_span_of(span), False, self))
        else:
            # Full: count it; listeners still hear it (the JSONL stream keeps it).
            self.dropped_spans += 1
            if _events._end_subscribers:
                _events.emit_end(_events.SpanEndEvent(_span_of(span), True, self))
        return True

    def end(self, span_id: int) -> Span | None:
        """End an open span and return its record (None if it was not open).

        Example:
            >>> c = CoreCollector(); s = c.open("step", "a")
            >>> (c.end(s).name, c.end(s))
            ('a', None)
        """
        span = self._open.get(span_id)
        if span is None or not self.close(span_id):
            return None
        return _span_of(span)

    def _open_ids(self) -> list[int]:
        return list(self._open)

    # -- reading -------------------------------------------------------------

    def is_open(self, span_id: int) -> bool:
        """Whether ``span_id`` is open in this collector.

        Example:
            >>> c = CoreCollector(); c.is_open(c.open("step", "a"))
            True
        """
        return span_id in self._open

    def current_span_id(self) -> int | None:
        """Id of the current task's innermost open span, or None.

        Example:
            >>> c = CoreCollector(); s = c.open("step", "a"); c.current_span_id() == s
            True
        """
        top = self._chain.get()
        while top is not None and top._collector is None:
            top = top._prev
        return None if top is None else top.span_id

    def _chain_length(self) -> int:
        """How many spans the current context's chain links through (ended ones included)."""
        length, node = 0, self._chain.get()
        while node is not None:
            length, node = length + 1, node._prev
        return length

    def _handle(self, span_id: int) -> SpanHandle:
        """The handle of an open span (KeyError if not open)."""
        return self._open[span_id]

    def open_details(self, span_id: int) -> tuple[str, int | None, int]:
        """``(trace_id, parent_id, start_unix_ns)`` of an open span; KeyError if not open.

        Example:
            >>> c = CoreCollector(); s = c.open("step", "a")
            >>> c.open_details(s)[:2] == (c.trace_id, None)
            True
        """
        row = self._open[span_id]._row
        trace_id, binding = row[_CTX]
        return trace_id, row[_PARENT], row[_START] + binding.wall_offset_ns

    def innermost_of(self, span_ids: Iterable[int]) -> int | None:
        """The innermost of ``span_ids`` on the current task's chain (open ones only), or None.

        Example:
            >>> c = CoreCollector(); a = c.open("step", "a"); b = c.open("step", "b")
            >>> c.innermost_of({a, b}) == b
            True
        """
        wanted = span_ids if isinstance(span_ids, set | frozenset) else set(span_ids)
        node = self._chain.get()
        while node is not None:
            if node._collector is not None and node.span_id in wanted:
                return node.span_id
            node = node._prev
        return None

    def span_link(self, span_id: int) -> SpanLink | None:
        """A link to an open span, or None.

        Example:
            >>> c = CoreCollector(); c.span_link(c.open("step", "a")).span_id
            '1'
        """
        span = self._open.get(span_id)
        return None if span is None else SpanLink(span._row[_CTX][0], str(span_id))

    def open_span_count(self) -> int:
        """How many spans are open right now (a leak check for tests).

        Example:
            >>> CoreCollector().open_span_count()
            0
        """
        return len(self._open)

    def finished_count(self) -> int:
        """How many finished spans are held (what ``spans()`` would return).

        Example:
            >>> c = CoreCollector(); _ = c.close(c.open("step", "a")); c.finished_count()
            1
        """
        return len(self._rows) // _STRIDE

    def spans(self) -> list[Span]:
        """The finished spans, in completion order, without removing them.

        Example:
            >>> c = CoreCollector(); _ = c.close(c.open("step", "a")); len(c.spans())
            1
        """
        return self._build_rows(self._rows, self._meta_table, self._links_table,
                                self._events_table)

    def take_spans(self) -> list[Span]:
        """Remove and return the finished spans (frees room under ``max_spans``).

        Example:
            >>> c = CoreCollector(); _ = c.close(c.open("step", "a"))
            >>> (len(c.take_spans()), c.spans())
            (1, [])
        """
        with self._lock:
            rows, self._rows = self._rows, []
            meta, self._meta_table = self._meta_table, {}
            links, self._links_table = self._links_table, {}
            events, self._events_table = self._events_table, {}
        return self._build_rows(rows, meta, links, events)

    @staticmethod
    def _build_rows(
        rows: list[Any],
        meta: dict[int, dict[str, Any]],
        links: dict[int, list[SpanLink]],
        events: dict[int, list[SpanEvent]],
    ) -> list[Span]:
        get_meta, get_links, get_events = meta.get, links.get, events.get
        it = iter(rows)
        return [
            _build(span_id, parent_id, kind, name, start, lane, ctx, duration,
                   get_meta(span_id), get_links(span_id), get_events(span_id))
            for span_id, parent_id, kind, name, start, lane, ctx, duration in zip(
                it, it, it, it, it, it, it, it, strict=True
            )
        ]


def _span_of(span: SpanHandle) -> Span:
    """The finished record of an ended handle (``end``'s result, end events)."""
    return _build(*span._row, span._duration_ns, span._metadata, span._links, span._events)
