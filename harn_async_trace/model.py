"""The span model: finished ``Span`` records, links, events and LLM usage.

A ``Span`` is a read-only view built when a finished span is read
(``end()``, ``spans()``, an end event): the collector's core stores finished
spans as plain rows of ints and strings, with metadata, links and events in
side tables (see ``harn_async_trace._core``), so holding many finished
spans costs little memory and nothing at garbage collection. Open spans are
the core's own objects (``SpanHandle``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, final

from .clock import Clock
from .kinds import SpanKind, coerce_kind

__all__ = ("LlmCallUsage", "Span", "SpanEvent", "SpanLink")

_NS_PER_MS: Final = 1_000_000


@final
@dataclass(frozen=True, slots=True)
class SpanLink:
    """A causal reference to a span, possibly in another task or trace.

    Example:
        >>> SpanLink("trace_x", "3", {"relation": "spawned_from"}).span_id
        '3'
    """

    trace_id: str
    span_id: str
    attributes: dict[str, str] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class SpanEvent:
    """A timestamped point inside a span; ``offset_ms`` counts from the span's start.

    Example:
        >>> SpanEvent("retry", time_unix_ms=1_000, offset_ms=5).offset_ms
        5
    """

    name: str
    time_unix_ms: int
    offset_ms: int
    attributes: dict[str, Any] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class LlmCallUsage:
    """Token usage and cost of one LLM call, as span metadata.

    Example:
        >>> LlmCallUsage("gpt-x", "mock", input_tokens=3).metadata_pairs()[:3]
        [('model', 'gpt-x'), ('provider', 'mock'), ('input_tokens', 3)]
    """

    model: str
    provider: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None

    def metadata_pairs(self) -> list[tuple[str, Any]]:
        """Canonical (key, value) pairs in harn-vm's order; ``cost_usd`` omitted when unpriced."""
        pairs: list[tuple[str, Any]] = [
            ("model", self.model),
            ("provider", self.provider),
            ("input_tokens", self.input_tokens),
            ("output_tokens", self.output_tokens),
            ("cache_read_tokens", self.cache_read_tokens),
            ("cache_write_tokens", self.cache_write_tokens),
        ]
        if self.cost_usd is not None:
            pairs.append(("cost_usd", self.cost_usd))
        return pairs


def _no_clock() -> int:
    raise RuntimeError("a span rebuilt from data has no clock")


@final
class _ClockBinding:
    """How a collector turns one clock's raw readings into span times.

    ``start_ns = clock.monotonic_ns() - base_ns`` and
    ``wall_ns = start_ns + wall_offset_ns``. Shared by every span started
    under the same clock, so it costs a span one pointer. ``now`` is the
    clock's ``monotonic_ns``, looked up once.
    """

    __slots__ = ("base_ns", "clock", "now", "wall_offset_ns")

    def __init__(self, clock: Clock | None, base_ns: int, wall_offset_ns: int) -> None:
        self.clock = clock
        self.base_ns = base_ns
        self.wall_offset_ns = wall_offset_ns
        self.now = clock.monotonic_ns if clock is not None else _no_clock


@final
class Span:
    """A completed span: a read-only, slotted record.

    ``start_ms``/``duration_ms`` are the ns fields floored to ms. Only
    ``SpanCollector.attach_metadata_if_absent`` adds keys to ``metadata``.
    ``lane`` is the task the span ran in (0 when unknown, e.g. read from an
    old file); it is layout information and not part of equality.

    Example:
        >>> s = Span(trace_id="trace_1", span_id=1, parent_id=None, kind=SpanKind.STEP,
        ...          name="load", start_ms=0, start_unix_ms=1_000, duration_ms=5)
        >>> (s.name, s.duration_ms, s.start_unix_ms)
        ('load', 5, 1000)
    """

    __slots__ = (
        "_binding",
        "_events",
        "_links",
        "_metadata",
        "duration_ns",
        "kind",
        "lane",
        "name",
        "parent_id",
        "span_id",
        "start_ns",
        "trace_id",
    )
    # The fields are slots read straight by exporters (one attribute load
    # each), made read-only by __setattr__; the cores fill them through the
    # slot descriptors. Metadata, links and events sit behind properties
    # because most spans have none (None, not an empty container, per span).
    _binding: _ClockBinding
    _events: list[SpanEvent] | None
    _links: list[SpanLink] | None
    # None when the span has no metadata: most spans never get a key.
    _metadata: dict[str, Any] | None
    trace_id: str
    span_id: int
    parent_id: int | None
    kind: SpanKind
    name: str
    start_ns: int
    duration_ns: int
    lane: int

    def __init__(
        self,
        *,
        trace_id: str,
        span_id: int,
        parent_id: int | None,
        kind: SpanKind | str,
        name: str,
        start_ms: int,
        start_unix_ms: int,
        duration_ms: int,
        metadata: dict[str, Any] | None = None,
        links: list[SpanLink] | None = None,
        events: list[SpanEvent] | None = None,
        start_ns: int | None = None,
        duration_ns: int | None = None,
        lane: int = 0,
    ) -> None:
        start = start_ms * _NS_PER_MS if start_ns is None else start_ns
        _set_slots(
            self,
            trace_id=trace_id,
            span_id=span_id,
            parent_id=parent_id,
            kind=coerce_kind(kind),
            name=name,
            start_ns=start,
            duration_ns=duration_ms * _NS_PER_MS if duration_ns is None else duration_ns,
            binding=_ClockBinding(None, 0, start_unix_ms * _NS_PER_MS - start),
            metadata=metadata,
            links=links or None,
            events=events or None,
            lane=lane,
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Span is read-only (cannot set {name!r})")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Span is read-only (cannot delete {name!r})")

    @property
    def clock(self) -> Clock | None:
        """The clock the span read its times from (None for spans rebuilt from data)."""
        return self._binding.clock

    @property
    def metadata(self) -> dict[str, Any]:
        """Metadata keys (created empty on first read when the span has none)."""
        metadata = self._metadata
        if metadata is None:
            # Materialised once so the dict read stays the span's dict.
            metadata = {}
            _SET_METADATA(self, metadata)
        return metadata

    @property
    def start_ms(self) -> int:
        """Start as a ms offset from the collector's epoch (mock monotonic time under a mock)."""
        return self.start_ns // _NS_PER_MS

    @property
    def duration_ms(self) -> int:
        """Duration in whole ms."""
        return self.duration_ns // _NS_PER_MS

    @property
    def start_unix_ms(self) -> int:
        """Start as ms since the Unix epoch (mock wall time under a mock)."""
        return (self.start_ns + self._binding.wall_offset_ns) // _NS_PER_MS

    @property
    def start_unix_ns(self) -> int:
        """Start as ns since the Unix epoch (exact; ``start_unix_ms`` is this floored)."""
        return self.start_ns + self._binding.wall_offset_ns

    @property
    def end_ns(self) -> int:
        """``start_ns + duration_ns``."""
        return self.start_ns + self.duration_ns

    @property
    def links(self) -> list[SpanLink]:
        """Links to other spans (a new empty list when there are none)."""
        return self._links if self._links is not None else []

    @property
    def events(self) -> list[SpanEvent]:
        """Events recorded while the span was open (a new empty list when none)."""
        return self._events if self._events is not None else []

    def _key(self) -> tuple[Any, ...]:
        return (
            self.trace_id,
            self.span_id,
            self.parent_id,
            self.kind,
            self.name,
            self.start_ns,
            self.start_unix_ms,
            self.duration_ns,
            self._metadata or {},
            self.links,
            self.events,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Span):
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # equal by value, holds a dict

    def __repr__(self) -> str:
        return (
            f"Span(trace_id={self.trace_id!r}, span_id={self.span_id}, "
            f"parent_id={self.parent_id}, kind={self.kind.value!r}, name={self.name!r}, "
            f"start_ms={self.start_ms}, start_unix_ms={self.start_unix_ms}, "
            f"duration_ms={self.duration_ms}, metadata={self._metadata or {}!r}, "
            f"links={self.links!r}, events={self.events!r})"
        )


_PRIVATE_SLOTS: Final = frozenset({"binding", "events", "links", "metadata"})


def _set_slots(target: Span, **values: Any) -> None:
    for key, value in values.items():
        object.__setattr__(target, "_" + key if key in _PRIVATE_SLOTS else key, value)


# Slot setters that bypass Span.__setattr__ (the cores build records with them).
_SET_METADATA: Final = Span.__dict__["_metadata"].__set__

