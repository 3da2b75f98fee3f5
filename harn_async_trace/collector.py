"""``SpanCollector``: allocates span ids, tracks open spans, stores finished ones.

harn-vm's semantics: ids are sequential from 1, a span's
parent is the innermost open span on the *current task's* chain, detached
spans have no parent but are pushed so their children nest under them.

The chain is per collector and per asyncio task: a ``ContextVar`` holds the
innermost pushed span, and each span remembers the one below it
(``_chain_prev``). asyncio copies the context into every new task, so a task
starts with a snapshot of its creator's chain and its own pushes are never
seen by siblings. A span may be ended from another task: ended spans are
skipped when the chain is read, so no task ever needs to edit another's.
Ending a span never touches the chain at all (not even the ending task's):
the next read or push walks past it, which costs a step per ended span
instead of a ``ContextVar`` set per end. Until then the context keeps the
ended span (and the chain below it) alive -- one chain per context.

The core interface
------------------
Everything above the collector (the module API, ``span()``, markers, every
boundary) opens and ends spans through these methods and nothing else; a
compiled core implements exactly this set:

* ``open(kind, name, links=None, *, detached=False, push=True,
  new_trace=False, metadata=None) -> int`` opens a span. ``detached=True,
  push=False`` opens it for a task that does not exist yet (a boundary): it
  is not put on the caller's chain, and the new task binds it with ``bind``.
* ``bind(span_id)`` is a context manager that makes the span the whole chain
  of the current context and resets the chain when it exits.
* ``end(span_id) -> Span | None`` ends a span and returns its record;
  ``close(span_id, *, instant=False) -> bool`` ends it without building the
  record for the caller (``instant``: zero duration, for marker spans).
* ``set_metadata``, ``attach_metadata_if_absent``, ``record_event``,
  ``current_span_id``, ``innermost_of``, ``span_link``, ``is_open``,
  ``open_details`` edit and read open spans.

A span's trace id is its parent's (or, for a boundary span, the trace of the
span that handed the work off); roots take ``collector.trace_id``, and
``new_trace=True`` starts a fresh one. A span's ``lane`` is the task it ran
in, recorded, not guessed: a span pushed under an open span takes that
span's lane, and a span that starts a task (detached, not pushed) or has
nothing above it starts a lane of its own (its id).

Events: when anyone listens for starts (``events.subscribe(on_start=...)``)
a ``SpanStartEvent`` is built; ends build a ``SpanEndEvent`` only for
end listeners. With nobody listening, neither is built.
"""

from __future__ import annotations

import copy
import itertools
import threading
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Final

from . import events as _events
from ._trace_id import new_trace_id
from .clock import Clock, SystemClock, current_clock
from .kinds import _KIND_BY_VALUE, SpanKind, coerce_kind
from .model import Span, SpanEvent, SpanLink, _ClockBinding, _LiveSpan, _SpanSlots

__all__ = ("SpanCollector",)

_NS_PER_MS: Final = 1_000_000
_LIVE: Final = _LiveSpan


class _ChainBinding:
    """``with collector.bind(span_id):`` -- the span is the whole chain inside."""

    __slots__ = ("_chain", "_node", "_token")

    def __init__(self, chain: ContextVar[_SpanSlots | None], node: _SpanSlots | None) -> None:
        self._chain = chain
        self._node = node
        self._token: Token[_SpanSlots | None] | None = None

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


class SpanCollector:
    """Collects the spans of one trace (or of several, with ``new_trace``).

    Bounded: at most ``max_spans`` finished spans are held (open spans do not
    count; :meth:`take_spans` frees room); spans, events, links and metadata
    keys past the limits are dropped and counted, never raised about.

    Example:
        >>> c = SpanCollector()
        >>> outer = c.start(SpanKind.PIPELINE, "main")
        >>> inner = c.start(SpanKind.FN_CALL, "work")
        >>> c.end(inner).parent_id == outer
        True
    """

    def __init__(
        self,
        *,
        max_spans: int = 1_000_000,
        max_events_per_span: int = 128,
        max_links_per_span: int = 128,
        max_metadata_per_span: int = 128,
        enabled: bool = True,
    ) -> None:
        for label, limit in (
            ("max_spans", max_spans),
            ("max_events_per_span", max_events_per_span),
            ("max_links_per_span", max_links_per_span),
            ("max_metadata_per_span", max_metadata_per_span),
        ):
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                raise TypeError(f"{label} must be a non-negative int, got {limit!r}")
        self.max_spans = max_spans
        self.max_events_per_span = max_events_per_span
        self.max_links_per_span = max_links_per_span
        self.max_metadata_per_span = max_metadata_per_span
        self.enabled = enabled
        # One ContextVar per collector keeps chains of different collectors apart.
        self._chain: ContextVar[_SpanSlots | None] = ContextVar(
            f"harn_span_chain_{id(self):x}", default=None
        )
        self._lock = threading.Lock()
        self._open: dict[int, _SpanSlots] = {}
        self._reset_state(1)

    # -- state ---------------------------------------------------------------

    def _reset_state(self, first_id: int) -> None:
        clock = current_clock()
        self.trace_id: str = new_trace_id(clock)
        self._id_counter = itertools.count(first_id)
        self._next_id = self._id_counter.__next__
        self._open = {}
        self._done: list[Span] = []
        self.dropped_spans = 0
        self.dropped_events = 0
        self.dropped_links = 0
        self.dropped_metadata = 0
        self._system_epoch = (clock.monotonic_ns(), clock.wall_ns())
        self._bindings: dict[int, _ClockBinding] = {}
        self._last_clock: Clock | None = None
        self._last_binding: _ClockBinding | None = None

    def reset(self) -> None:
        """Forget every span and start a new trace.

        Ids restart at 1, except when spans are still open: those are
        abandoned (ending or editing them later does nothing) and numbering
        continues past every id handed out, so an abandoned id can never
        name a new span.

        Example:
            >>> c = SpanCollector(); a = c.start("step", "a"); c.reset()
            >>> b = c.start("step", "b"); (c.end(a), b != a, c.spans())
            (None, True, [])
        """
        with self._lock:
            abandoned = list(self._open.values())
            for live in abandoned:
                # Mark it closed so chains skip it; it is not recorded.
                live._duration_ns = 0
                live.__class__ = Span
            # A copy of the counter peeks at the next id without taking it.
            first_id = next(copy.copy(self._id_counter)) if abandoned else 1
            self._reset_state(first_id)

    def adopt_trace(self, trace_id: str, first_span_id: int = 1) -> None:
        """Continue another trace: new roots carry ``trace_id``, ids count from ``first_span_id``.

        Used to continue a trace from another process (see ``continue_trace``);
        spans already recorded keep their ids.

        Example:
            >>> c = SpanCollector(); c.adopt_trace("trace_remote", 1000)
            >>> (c.trace_id, c.start("step", "a"))
            ('trace_remote', 1000)
        """
        if not isinstance(trace_id, str) or not trace_id:
            raise TypeError(f"trace_id must be a non-empty str, got {trace_id!r}")
        if isinstance(first_span_id, bool) or not isinstance(first_span_id, int):
            raise TypeError(f"first_span_id must be an int, got {first_span_id!r}")
        if first_span_id < 1:
            raise ValueError(f"first_span_id must be >= 1 (0 means 'no span'), got {first_span_id}")
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

    # -- the core interface: opening -------------------------------------------

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
        """Open a span and return its id (the one way every layer opens spans).

        ``detached``: no parent (still pushed, so children nest under it).
        ``push=False``: not put on this task's chain; with ``detached`` it is
        the span of work handed to a new task, which makes it its chain with
        :meth:`bind` (and it starts a lane). ``new_trace``: a root with a
        fresh trace id that the spans under it carry. ``metadata`` is set
        before start listeners hear of the span.

        Example:
            >>> c = SpanCollector(); p = c.open("pipeline", "p")
            >>> r = c.open("step", "request", new_trace=True)
            >>> s = c.end(r); (s.parent_id, s.trace_id != c.trace_id)
            (None, True)
        """
        # Keep it flat: every attribute read and call below is paid on each
        # span (see benchmarks/RESULTS.md, "Hot path").
        if type(kind) is not SpanKind:
            # Members hash and compare like their values: one lookup serves both.
            kind = (_KIND_BY_VALUE.get(kind) if type(kind) is str else None) or coerce_kind(kind)
        if type(name) is not str and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
        clock = current_clock()
        binding = (
            self._last_binding if clock is self._last_clock else self._binding_for(clock)
        )
        chain = self._chain
        top = chain.get()
        while top is not None and top.__class__ is not _LIVE:
            top = top._chain_prev
        span = _LIVE()
        span._span_id = span_id = self._next_id()
        if top is None:
            span._parent_id = None
            span._trace_id = new_trace_id(clock) if new_trace else self.trace_id
            span._lane = span_id
        elif detached or new_trace:
            span._parent_id = None
            span._trace_id = new_trace_id(clock) if new_trace else top._trace_id
            # Detached and not pushed: the span of work handed to a new task.
            span._lane = top._lane if push else span_id
        else:
            span._parent_id = top._span_id
            span._trace_id = top._trace_id
            span._lane = top._lane
        span._kind = kind
        span._name = name
        span._binding = binding  # type: ignore[assignment]  # set whenever clock is
        span._metadata = None  # created by the first set_metadata
        if links:
            span._links = links = self._checked_links(links)
            if detached and not push and links and not new_trace:
                # Handed-off work follows the trace of the span that handed it off.
                span._trace_id = links[0].trace_id
        else:
            span._links = None
        span._events = None
        if push:
            span._chain_prev = top
            chain.set(span)
        else:
            span._chain_prev = None
        span._start_ns = clock.monotonic_ns() - binding.base_ns  # type: ignore[union-attr]  # the binding of a live clock has one
        self._open[span_id] = span
        if metadata:
            self._set_many(span, metadata)
        if _events._start_subscribers:
            self._emit_start(span)
        return span_id

    def _set_many(self, span: _SpanSlots, metadata: dict[str, Any]) -> None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {metadata!r}")
        for key in metadata:
            if type(key) is not str:
                raise TypeError(f"metadata key must be a str, got {key!r}")
        limit = self.max_metadata_per_span
        if len(metadata) > limit:
            self.dropped_metadata += len(metadata) - limit
            metadata = dict(list(metadata.items())[:limit])
        span._metadata = dict(metadata)

    def _emit_start(self, span: _SpanSlots) -> None:
        try:
            _events.emit_start(
                _events.SpanStartEvent(
                    span._trace_id, span._span_id, span._parent_id, span._name, span._kind,
                    tuple(span._links or ()), span._start_ns, dict(span._metadata or {}),
                    span._start_ns + span._binding.wall_offset_ns, span._lane, self,
                )
            )
        except BaseException:
            # emit_start() isolates Exceptions; a KeyboardInterrupt/SystemExit
            # from a listener still escapes. The caller never got the id, so
            # nobody could end this span: unregister it and mark it closed,
            # which makes every chain skip it.
            self._open.pop(span._span_id, None)
            span._duration_ns = 0
            span.__class__ = Span
            raise

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

    def bind(self, span_id: int) -> _ChainBinding:
        """Make the open span ``span_id`` the whole chain of this context while in the block.

        A boundary's new task binds its span first thing, so everything it
        opens nests under it. Binding an id that is not open binds an empty
        chain.

        Example:
            >>> c = SpanCollector(); job = c.open("spawn", "job", detached=True, push=False)
            >>> with c.bind(job):
            ...     c.end(c.open("step", "inside")).parent_id == job
            True
            >>> c.current_span_id() is None
            True
        """
        return _ChainBinding(self._chain, self._open.get(span_id))

    def start(self, kind: SpanKind | str, name: str) -> int:
        """Open a span under the current task's innermost open span; returns its id.

        Example:
            >>> SpanCollector().start(SpanKind.STEP, "load")
            1
        """
        return self.open(kind, name)

    def start_with_links(self, kind: SpanKind | str, name: str, links: list[SpanLink]) -> int:
        """Like :meth:`start`, with links to other spans.

        Example:
            >>> c = SpanCollector()
            >>> c.start_with_links("step", "b", [SpanLink("t", "9")])
            1
        """
        return self.open(kind, name, links)

    def start_detached_with_links(
        self, kind: SpanKind | str, name: str, links: list[SpanLink]
    ) -> int:
        """Open a root span (no parent) that is still pushed, so children nest under it.

        Example:
            >>> c = SpanCollector(); _ = c.start("pipeline", "p")
            >>> c.end(c.start_detached_with_links("spawn", "t", [])).parent_id is None
            True
        """
        return self.open(kind, name, links, detached=True)

    # -- open-span edits -----------------------------------------------------

    def set_metadata(self, span_id: int, key: str, value: Any) -> None:
        """Set ``key`` on an open span; unknown or ended ids are ignored.

        Example:
            >>> c = SpanCollector(); s = c.start("step", "a"); c.set_metadata(s, "k", 1)
            >>> c.end(s).metadata
            {'k': 1}
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
        """Set ``key`` unless present, on an open *or completed* span.

        Example:
            >>> c = SpanCollector(); s = c.start("step", "a"); _ = c.end(s)
            >>> c.attach_metadata_if_absent(s, "late", True); c.spans()[0].metadata
            {'late': True}
        """
        if type(key) is not str:
            raise TypeError(f"metadata key must be a str, got {key!r}")
        span: _SpanSlots | None = self._open.get(span_id)
        if span is None:
            span = self._find_done(span_id)
            if span is None:
                return
        metadata = span._metadata
        if metadata is None:
            metadata = span._metadata = {}
        if key in metadata:
            return
        if len(metadata) >= self.max_metadata_per_span:
            self.dropped_metadata += 1
            return
        metadata[key] = value

    def _find_done(self, span_id: int) -> Span | None:
        done = self._done
        # Completed spans are nearly always looked up right after they end.
        for index in range(len(done) - 1, -1, -1):
            if done[index]._span_id == span_id:
                return done[index]
        return None

    def record_event(
        self, span_id: int, name: str, attributes: dict[str, Any] | None = None
    ) -> bool:
        """Record a timestamped event on an open span; False if it is not open.

        Example:
            >>> c = SpanCollector(); s = c.start("step", "a")
            >>> c.record_event(s, "retry", {"attempt": 2})
            True
        """
        span = self._open.get(span_id)
        if span is None:
            return False
        if type(name) is not str:
            raise TypeError(f"event name must be a str, got {name!r}")
        if attributes is not None and not isinstance(attributes, dict):
            raise TypeError(f"event attributes must be a dict, got {attributes!r}")
        events = span._events
        if events is None:
            events = span._events = []
        elif len(events) >= self.max_events_per_span:
            self.dropped_events += 1
            return True
        binding = span._binding
        offset_ns = binding.clock.monotonic_ns() - binding.base_ns - span._start_ns  # type: ignore[union-attr]  # live spans always have a clock
        events.append(
            SpanEvent(
                name,
                (span._start_ns + offset_ns + binding.wall_offset_ns) // _NS_PER_MS,
                offset_ns // _NS_PER_MS,
                dict(attributes) if attributes else {},
            )
        )
        return True

    # -- the core interface: ending --------------------------------------------

    def end(self, span_id: int) -> Span | None:
        """End an open span and return its stored record (None if not open).

        May be called from any task or thread, not only the one that started it.

        Example:
            >>> c = SpanCollector(); s = c.start("step", "a")
            >>> (c.end(s).name, c.end(s))
            ('a', None)
        """
        span = self._open.pop(span_id, None)
        if span is None:
            return None
        binding = span._binding
        span._duration_ns = binding.clock.monotonic_ns() - binding.base_ns - span._start_ns  # type: ignore[union-attr]  # live spans always have a clock
        # end() and close() both inline the same few lines (a call level is
        # ~5% of a span): the class switch makes the live object its own
        # finished record, no copy. The chain is not popped: the ended span
        # stays on top of its task's chain until the next start there walks
        # past it (ended spans are skipped anyway, see the module doc), which
        # saves a ContextVar set per span, the largest single cost of an end.
        span.__class__ = Span
        if len(self._done) < self.max_spans:
            self._done.append(span)  # type: ignore[arg-type]  # the class switch above
            if _events._end_subscribers:
                _events.emit_end(_events.SpanEndEvent(span, False, self))  # type: ignore[arg-type]  # a Span now
        else:
            self._drop(span)  # type: ignore[arg-type]  # a Span now
        return span  # type: ignore[return-value]  # the class switch above

    def close(self, span_id: int, instant: bool = False) -> bool:
        """End an open span without handing back its record; True if it was open.

        The cheap end (``span_close``). ``instant=True`` records a zero
        duration (marker spans).

        Example:
            >>> c = SpanCollector(); s = c.start("step", "a")
            >>> (c.close(s), c.close(s), c.spans()[0].name)
            (True, False, 'a')
        """
        span = self._open.pop(span_id, None)
        if span is None:
            return False
        if instant:
            span._duration_ns = 0
        else:
            binding = span._binding
            span._duration_ns = binding.clock.monotonic_ns() - binding.base_ns - span._start_ns  # type: ignore[union-attr]  # live spans always have a clock
        span.__class__ = Span  # as in end()
        if len(self._done) < self.max_spans:
            self._done.append(span)  # type: ignore[arg-type]  # the class switch above
            if _events._end_subscribers:
                _events.emit_end(_events.SpanEndEvent(span, False, self))  # type: ignore[arg-type]  # a Span now
        else:
            self._drop(span)  # type: ignore[arg-type]  # a Span now
        return True

    def _drop(self, span: Span) -> None:
        # Full: count it; listeners still hear it (the JSONL stream keeps it).
        self.dropped_spans += 1
        if _events._end_subscribers:
            _events.emit_end(_events.SpanEndEvent(span, True, self))

    def end_open_spans(self, **metadata: Any) -> int:
        """End every span still open, newest first; returns how many there were.

        Each gets ``metadata``'s keys first (existing keys are kept), so a
        program that is stopped can close what it left open as, for example,
        ``cancelled=True``; no span that was opened goes missing from exports.

        Example:
            >>> c = SpanCollector(); _ = c.start("pipeline", "p"); _ = c.start("step", "s")
            >>> c.end_open_spans(cancelled=True), [s.name for s in c.spans()]
            (2, ['s', 'p'])
            >>> c.spans()[0].metadata
            {'cancelled': True}
        """
        count = 0
        for span_id in sorted(self._open, reverse=True):
            for key, value in metadata.items():
                self.attach_metadata_if_absent(span_id, key, value)
            if self.close(span_id):
                count += 1
        return count

    # -- reading -------------------------------------------------------------

    def is_open(self, span_id: int) -> bool:
        """Whether ``span_id`` is open in this collector.

        Example:
            >>> c = SpanCollector(); s = c.start("step", "a"); c.is_open(s)
            True
        """
        return span_id in self._open

    def current_span_id(self) -> int | None:
        """Id of the current task's innermost open span, or None.

        Example:
            >>> c = SpanCollector(); s = c.start("step", "a"); c.current_span_id() == s
            True
        """
        top = self._chain.get()
        while top is not None and top.__class__ is not _LIVE:
            top = top._chain_prev
        return None if top is None else top._span_id

    def open_details(self, span_id: int) -> tuple[str, int | None, int]:
        """``(trace_id, parent_id, start_unix_ns)`` of an open span; KeyError if not open.

        Example:
            >>> c = SpanCollector(); s = c.start("step", "a")
            >>> c.open_details(s)[:2] == (c.trace_id, None)
            True
        """
        span = self._open[span_id]
        return span._trace_id, span._parent_id, span._start_ns + span._binding.wall_offset_ns

    def innermost_of(self, span_ids: set[int]) -> int | None:
        """The innermost of ``span_ids`` on the current task's chain (open ones only), or None.

        Example:
            >>> c = SpanCollector(); a = c.start("step", "a"); b = c.start("step", "b")
            >>> c.innermost_of({a, b}) == b
            True
        """
        node = self._chain.get()
        while node is not None:
            if node.__class__ is _LIVE and node._span_id in span_ids:
                return node._span_id
            node = node._chain_prev
        return None

    def span_link(self, span_id: int) -> SpanLink | None:
        """A link to an open span, or None.

        Example:
            >>> c = SpanCollector(); s = c.start("step", "a"); c.span_link(s).span_id
            '1'
        """
        span = self._open.get(span_id)
        return None if span is None else SpanLink(span._trace_id, str(span_id))

    def current_span_link(self) -> SpanLink | None:
        """A link to the current task's innermost open span, or None.

        Example:
            >>> c = SpanCollector(); _ = c.start("step", "a"); c.current_span_link().span_id
            '1'
        """
        span_id = self.current_span_id()
        return None if span_id is None else self.span_link(span_id)

    def open_span_count(self) -> int:
        """How many spans are open right now (a leak check for tests).

        Example:
            >>> SpanCollector().open_span_count()
            0
        """
        return len(self._open)

    def spans(self) -> list[Span]:
        """The finished spans, in completion order, without removing them.

        Example:
            >>> c = SpanCollector(); _ = c.end(c.start("step", "a")); len(c.spans())
            1
        """
        return list(self._done)

    def take_spans(self) -> list[Span]:
        """Remove and return the finished spans (frees room under ``max_spans``).

        Example:
            >>> c = SpanCollector(); _ = c.end(c.start("step", "a"))
            >>> (len(c.take_spans()), c.spans())
            (1, [])
        """
        with self._lock:
            done, self._done = self._done, []
        return done

    def __repr__(self) -> str:
        return (
            f"SpanCollector(trace_id={self.trace_id!r}, open={len(self._open)}, "
            f"finished={len(self._done)}, enabled={self.enabled})"
        )
