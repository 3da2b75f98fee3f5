"""Helpers shared by the exporters: output targets, JSON encoding, span times, event filter."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any, Final

from ..events import SpanEndEvent, SpanStartEvent
from ..model import Span

if TYPE_CHECKING:
    from ..collector import SpanCollector

__all__ = (
    "OPEN_ERRORS",
    "Target",
    "dumps",
    "ended_span_of",
    "open_target",
    "start_unix_ns",
)

# Lone surrogates (from badly decoded bytes) can only occur inside JSON strings
# here; "backslashreplace" writes them as \udcXX, a valid JSON escape that
# json.loads turns back into the same string, instead of failing the export.
OPEN_ERRORS: Final = "backslashreplace"

Target = str | os.PathLike[str] | IO[str]
"""Where an exporter writes: a path (created/truncated, UTF-8) or an open text file."""


def _default(value: Any) -> Any:
    # Metadata may hold arbitrary objects; an exporter must not fail on one.
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


_ENCODE: Final = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, default=_default
).encode


def dumps(value: Any) -> str:
    """Compact JSON, UTF-8 as is; unknown objects become ``str(obj)``.

    Example:
        >>> dumps({"a": (1, 2)})
        '{"a":[1,2]}'
    """
    return _ENCODE(value)


@contextmanager
def open_target(target: Target) -> Iterator[IO[str]]:
    """Yield a text file for ``target``; paths are opened (and closed) here.

    Example:
        >>> import io
        >>> with open_target(io.StringIO()) as f:
        ...     _ = f.write("x")
    """
    if isinstance(target, str | os.PathLike):
        with open(target, "w", encoding="utf-8", newline="\n", errors=OPEN_ERRORS) as handle:
            yield handle
    else:
        yield target


def start_unix_ns(span: Span) -> int:
    """The span's start as ns since the Unix epoch, at full precision.

    ``start_unix_ms`` is floored to ms; OTel wants ns, and the span knows its
    wall offset exactly (``start_unix_ms == start_unix_ns // 1_000_000``).

    Example:
        >>> from harn_async_trace import SpanKind
        >>> s = Span(trace_id="t", span_id=1, parent_id=None, kind=SpanKind.STEP, name="a",
        ...          start_ms=0, start_unix_ms=1_000, duration_ms=2)
        >>> start_unix_ns(s)
        1000000000
    """
    return span.start_unix_ns


def ended_span_of(
    event: SpanStartEvent | SpanEndEvent,
    trace_id: str | None,
    collector: SpanCollector | None,
) -> Span | None:
    """The span an end event carries, if it is one the live exporter wants; else None.

    The live exporters (JSONL writer, OTel bridge) listen for ends; other
    events are skipped, and ``trace_id`` / ``collector`` (either may be None)
    restrict the export to one trace or to the spans of one collector.
    """
    if type(event) is not SpanEndEvent:
        return None
    span = event.span
    if trace_id is not None and span.trace_id != trace_id:
        return None
    if collector is not None and event.collector is not collector:
        return None
    return span
