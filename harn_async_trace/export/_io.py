"""Helpers shared by the exporters: output targets, JSON encoding, span times, event filter."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Final

from ..collector import SpanCollector
from ..events import SpanEndEvent, SpanStartEvent
from ..model import Span
from ._encoding import dumps

__all__ = (
    "OPEN_ERRORS",
    "Target",
    "check_filter",
    "check_span",
    "check_spans",
    "check_target",
    "dumps",
    "ended_span_of",
    "open_target",
    "start_unix_ns",
    "write_span_array",
)

# The encoder already writes lone surrogates as text (_encoding); this only
# keeps a write from failing on one that reached the file some other way.
OPEN_ERRORS: Final = "backslashreplace"

Target = str | os.PathLike[str] | IO[str]
"""Where an exporter writes: a path (created/truncated, UTF-8) or an open text file."""


def check_target(target: object, func: str) -> None:
    """Raise ``TypeError`` naming ``func``'s target unless it is a path or a text file.

    Example:
        >>> check_target(5, "write_json")
        Traceback (most recent call last):
        TypeError: write_json(): target must be a path or an open text file, got int
    """
    if isinstance(target, str | os.PathLike):
        return
    if isinstance(target, io.RawIOBase | io.BufferedIOBase):
        raise TypeError(f"{func}(): target is a binary file; open it in text mode ('w')")
    if not callable(getattr(target, "write", None)):
        raise TypeError(
            f"{func}(): target must be a path or an open text file, got {type(target).__name__}"
        )


def check_filter(func: str, collector: object, trace_id: object) -> None:
    """Check the ``collector`` / ``trace_id`` filter of a live exporter (``TypeError``).

    Example:
        >>> check_filter("OtelBridge", 5, None)
        Traceback (most recent call last):
        TypeError: OtelBridge(): collector must be a SpanCollector or None, got int
    """
    if collector is not None and not isinstance(collector, SpanCollector):
        raise TypeError(
            f"{func}(): collector must be a SpanCollector or None, got {type(collector).__name__}"
        )
    if trace_id is not None and not isinstance(trace_id, str):
        raise TypeError(f"{func}(): trace_id must be a str or None, got {type(trace_id).__name__}")


def check_span(span: object, func: str, index: int | None = None) -> None:
    """Raise ``TypeError`` naming ``func``'s argument unless ``span`` is a :class:`Span`.

    Example:
        >>> check_span(5, "write_jsonl", 0)
        Traceback (most recent call last):
        TypeError: write_jsonl(): spans[0] must be a Span, got int
    """
    if span.__class__ is not Span and not isinstance(span, Span):
        where = "span" if index is None else f"spans[{index}]"
        raise TypeError(f"{func}(): {where} must be a Span, got {type(span).__name__}")


def check_spans(spans: object, func: str) -> None:
    """Check a whole sequence of spans up front (see :func:`check_span`).

    Example:
        >>> check_spans("abc", "format_summary")
        Traceback (most recent call last):
        TypeError: format_summary(): spans must be a list of Span, got str
    """
    if not isinstance(spans, Sequence) or isinstance(spans, str | bytes):
        raise TypeError(f"{func}(): spans must be a list of Span, got {type(spans).__name__}")
    for index, span in enumerate(spans):
        if span.__class__ is not Span:
            check_span(span, func, index)


@contextmanager
def open_target(target: Target, func: str = "export") -> Iterator[IO[str]]:
    """Yield a text file for ``target``; paths are opened (and closed) here.

    ``func`` names the exporter in the ``TypeError`` for a bad target.

    Example:
        >>> with open_target(io.StringIO()) as f:
        ...     _ = f.write("x")
    """
    check_target(target, func)
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


def write_span_array(
    write: Callable[[str], object],
    spans: Iterable[Span],
    encode: Callable[[Span], object],
    func: str | None = None,
) -> int:
    """Stream a JSON array of ``encode(span)``, one element a line; returns the count.

    The file exporters write their array this way, never building it whole.
    With ``func``, each item is checked to be a Span as it comes (a
    ``TypeError`` naming ``func`` and the index); pass None for spans
    checked already.

    Example:
        >>> buf = io.StringIO()
        >>> write_span_array(buf.write, [], lambda span: span.name)
        0
        >>> buf.getvalue()
        '[]'
    """
    write("[")
    count = 0
    for span in spans:
        if func is not None:
            item: object = span  # typed callers pass Spans; others get a clear TypeError
            if item.__class__ is not Span:
                check_span(item, func, count)
        write(",\n" if count else "\n")
        write(dumps(encode(span)))
        count += 1
    write("\n]" if count else "]")
    return count
