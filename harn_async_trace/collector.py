"""``SpanCollector``: allocates span ids, tracks open spans, stores finished ones.

harn-vm's semantics: ids are sequential from 1, a span's
parent is the innermost open span on the *current task's* chain, detached
spans have no parent but are pushed so their children nest under them.

The chain is per collector and per asyncio task: a ``ContextVar`` holds the
innermost pushed span, and each span remembers the one below it.
asyncio copies the context into every new task, so a task
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
boundary) opens and ends spans through these methods and nothing else. They
live in the core (``harn_async_trace._core``: compiled, with a pure-Python
fallback; ``SpanCollector`` adds the harn-vm-named wrappers and the cold
methods on top):

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
  ``open_details`` edit and read open spans. ``record_event(span_id, name,
  attributes=None, at_ns=None)`` records at ``at_ns`` (ns since the Unix
  epoch, the clock of ``Span.start_unix_ns``) when given, else now.
  ``rename(span_id, name) -> bool`` renames an open span (False if it is
  not open), for a span opened before its name is known; it is cold, and
  ``open``/``close`` pay nothing for it.
* ``spans``, ``take_spans``, ``finished_count``, ``open_span_count``,
  ``reset`` read and clear the store. Finished spans are kept as plain rows
  (no object each); every read builds fresh ``Span`` records, which share
  the stored metadata dict.

A span's trace id is its parent's (or, for a boundary span, the trace of the
span that handed the work off); roots take ``collector.trace_id``, and
``new_trace=True`` starts a fresh one. A root with no links and no
``new_trace`` asks the root-parent hook (``events._root_parent``, set by
``use_otel``), when there is one, whether it sits inside a foreign trace: it
then takes that trace id and a ``remote_parent`` link instead. A span's ``lane`` is the task it ran
in, recorded, not guessed: a span pushed under an open span takes that
span's lane, and a span that starts a task (detached, not pushed) or has
nothing above it starts a lane of its own (its id).

Events: when anyone listens for starts (``events.subscribe(on_start=...)``)
a ``SpanStartEvent`` is built; ends build a ``SpanEndEvent`` only for
end listeners. With nobody listening, neither is built.
"""

from __future__ import annotations

from typing import Any

from ._core import CoreCollector
from .kinds import SpanKind
from .model import SpanLink

__all__ = ("SpanCollector",)


class SpanCollector(CoreCollector):
    """Collects the spans of one trace (or of several, with ``new_trace``).

    Bounded: at most ``max_spans`` finished spans are held (open spans do not
    count; :meth:`take_spans` frees room); spans, events, links and metadata
    keys past the limits are dropped and counted, never raised about.
    ``enabled`` is what the module API checks before recording.

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
        super().__init__()
        self.max_spans = max_spans
        self.max_events_per_span = max_events_per_span
        self.max_links_per_span = max_links_per_span
        self.max_metadata_per_span = max_metadata_per_span
        self.enabled = enabled

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
        self._restart_ids(trace_id, first_span_id)

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
        for span_id in sorted(self._open_ids(), reverse=True):
            for key, value in metadata.items():
                self.attach_metadata_if_absent(span_id, key, value)
            if self.close(span_id):
                count += 1
        return count

    def current_span_link(self) -> SpanLink | None:
        """A link to the current task's innermost open span, or None.

        Example:
            >>> c = SpanCollector(); _ = c.start("step", "a"); c.current_span_link().span_id
            '1'
        """
        span_id = self.current_span_id()
        return None if span_id is None else self.span_link(span_id)

    def __repr__(self) -> str:
        return (
            f"SpanCollector(trace_id={self.trace_id!r}, open={self.open_span_count()}, "
            f"finished={self.finished_count()}, enabled={self.enabled})"
        )
