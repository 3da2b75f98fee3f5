"""JSON and streaming JSONL: one span per line, written as spans end.

A line is :func:`span_to_dict` plus the exact ``start_ns``/``duration_ns``,
so :func:`read_jsonl` rebuilds spans equal to the originals. The live writer
(:class:`JsonlStreamWriter`) subscribes to the event stream and flushes every
line as its span ends: if the process dies, every span that had ended is
already in the file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any, Final, final

from .. import events as _events
from ..model import Span
from ._encoding import json_string
from ._io import (
    OPEN_ERRORS,
    Target,
    check_filter,
    check_span,
    check_target,
    dumps,
    ended_span_of,
    open_target,
    write_span_array,
)
from ._trace_file import TraceFileError, read_jsonl
from .dicts import _event_to_dict, _link_to_dict, span_to_dict

if TYPE_CHECKING:
    from ..collector import SpanCollector

__all__ = (
    "JsonlStreamWriter",
    "TraceFileError",
    "read_jsonl",
    "span_to_json_line",
    "write_json",
    "write_jsonl",
)

_NS_PER_MS: Final = 1_000_000
_log: Final = logging.getLogger("harn_async_trace.export")


def _span_record(span: Span) -> dict[str, Any]:
    data = span_to_dict(span)
    # ns fields make the round trip exact (ms fields are floors of them).
    data["start_ns"] = span.start_ns
    data["duration_ns"] = span.duration_ns
    if span.lane:  # the recorded task lane (the viewer draws one row set per lane)
        data["lane"] = span.lane
    return data


def span_to_json_line(span: Span) -> str:
    """One span as a compact JSON line (with ``\\n``), as written to JSONL files.

    Example:
        >>> from harn_async_trace import SpanKind
        >>> s = Span(trace_id="t", span_id=1, parent_id=None, kind=SpanKind.STEP, name="a",
        ...          start_ms=0, start_unix_ms=1, duration_ms=2)
        >>> span_to_json_line(s).startswith('{"trace_id":"t","span_id":1')
        True
    """
    check_span(span, "span_to_json_line")
    return _line(span)


def _line(span: Span) -> str:
    # Hand-assembled fixed fields: building the span_to_dict() dict and then
    # encoding it cost twice as much (benchmarks/RESULTS.md, Exporters). The
    # keys, order and values are exactly _span_record()'s (tests check it).
    start = span.start_ns
    duration = span.duration_ns
    parent = span.parent_id
    line = (
        f'{{"trace_id":{json_string(span.trace_id)},"span_id":{span.span_id:d},'
        f'"parent_id":{"null" if parent is None else format(parent, "d")},'
        f'"kind":"{span.kind._value_}","name":{json_string(span.name)},'
        f'"start_ms":{start // _NS_PER_MS},'
        f'"start_unix_ms":{span.start_unix_ns // _NS_PER_MS},'
        f'"duration_ms":{duration // _NS_PER_MS}'
    )
    if span._metadata or span._links or span._events:
        try:
            line += _collections(span)
        except Exception as exc:  # dumps never raises by design; if it did, keep the span
            reason = json_string(f"{type(exc).__name__}: {exc}")
            line += f',"metadata":{{"encoding_error":{reason}}}'
    lane = span.lane
    if lane:
        return f'{line},"start_ns":{start},"duration_ns":{duration},"lane":{lane:d}}}\n'
    return f'{line},"start_ns":{start},"duration_ns":{duration}}}\n'


def _collections(span: Span) -> str:
    text = ""
    if span._metadata:
        text += ',"metadata":' + dumps(span._metadata)
    if span._links:
        text += ',"links":' + dumps([_link_to_dict(link) for link in span._links])
    if span._events:
        text += ',"events":' + dumps([_event_to_dict(event) for event in span._events])
    return text


def write_jsonl(spans: Iterable[Span], target: Target) -> int:
    """Write spans as JSONL, one line each, streaming; returns how many were written.

    Accepts any iterable (a generator is never materialised).

    Example:
        >>> import io
        >>> write_jsonl([], io.StringIO())
        0
    """
    count = 0
    with open_target(target, "write_jsonl") as out:
        write = out.write
        for span in spans:
            item: object = span  # typed callers pass Spans; others get a clear TypeError
            if item.__class__ is not Span:
                check_span(item, "write_jsonl", count)
            write(_line(span))
            count += 1
        out.flush()
    return count


def write_json(spans: Iterable[Span], target: Target) -> int:
    """Write spans as one JSON array of span dicts, streaming; returns the count.

    Example:
        >>> import io
        >>> buf = io.StringIO(); write_json([], buf); buf.getvalue()
        0
        '[]\\n'
    """
    with open_target(target, "write_json") as out:
        count = write_span_array(out.write, spans, _span_record, "write_json")
        out.write("\n")
        out.flush()
    return count


@final
class JsonlStreamWriter:
    """Append each span to a JSONL file the moment it ends (an event subscriber).

    ``collector`` keeps only the spans of that collector (whatever their
    trace ids: ``reset()`` and ``new_trace`` start new ones); ``trace_id``
    keeps one fixed trace; default: every span.
    Each line is flushed to the OS as written, so a crash loses nothing that
    had ended; ``fsync=True`` also survives a machine crash (slow). Spans the
    collector dropped for ``max_spans`` are still written: the file is the
    complete record. Metadata attached to a span *after* it ended is not in
    the file. Any metadata value is written (docs/exporters.md, "Encoding").

    A write that fails (disk full, ...) never reaches the traced program:
    the first ``OSError`` is kept in ``error``, one warning is logged on
    ``harn_async_trace.export``, and from then on nothing more is written
    (a half-written line must stay the last one); ``errors`` counts the
    spans that are not in the file. Thread-safe; use as a context manager,
    or call ``close()``.

    Example:
        >>> import io
        >>> with JsonlStreamWriter(io.StringIO()) as writer:
        ...     writer.count, writer.error
        (0, None)
    """

    __slots__ = (
        "_file", "_fsync", "_lock", "_name", "_owns", "_subscription", "collector", "count",
        "error", "errors", "trace_id",
    )  # fmt: skip

    def __init__(
        self,
        target: Target,
        *,
        collector: SpanCollector | None = None,
        trace_id: str | None = None,
        fsync: bool = False,
    ) -> None:
        check_target(target, "JsonlStreamWriter")
        check_filter("JsonlStreamWriter", collector, trace_id)
        self.collector = collector
        self.trace_id = trace_id
        self.count = 0
        self.errors = 0
        self.error: OSError | None = None
        self._fsync = bool(fsync)
        self._lock = threading.Lock()
        self._owns = isinstance(target, str | os.PathLike)
        self._name = os.fspath(target) if isinstance(target, str | os.PathLike) else repr(target)
        self._file: IO[str] | None = (
            # closed in close()
            open(target, "w", encoding="utf-8", newline="\n", errors=OPEN_ERRORS)
            if isinstance(target, str | os.PathLike)
            else target
        )
        self._subscription: _events.Subscription | None = _events.subscribe(on_end=self._on_event)

    def _on_event(self, event: _events.SpanStartEvent | _events.SpanEndEvent) -> None:
        span = ended_span_of(event, self.trace_id, self.collector)
        if span is not None:
            self.write(span)

    def _failed(self, exc: OSError) -> None:
        # Called with the lock held.
        if self.error is None:
            self.error = exc
            _log.warning("cannot write %s: %s; no more spans go to it", self._name, exc)

    def write(self, span: Span) -> bool:
        """Write one span now (also usable without the event stream); False if not written.

        Not written: the writer is closed, or its file failed (see ``error``).
        """
        check_span(span, "JsonlStreamWriter.write")
        line = _line(span)
        with self._lock:
            out = self._file
            if out is None:
                return False
            if self.error is not None:
                self.errors += 1
                return False
            try:
                out.write(line)
                out.flush()
                if self._fsync:
                    os.fsync(out.fileno())
            except OSError as exc:
                self.errors += 1
                self._failed(exc)
                return False
            self.count += 1
            return True

    def close(self) -> None:
        """Unsubscribe and close the file if this writer opened it (idempotent).

        A failure to flush or close is kept in ``error`` like a failed write.
        """
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()
        with self._lock:
            out, self._file = self._file, None
            if out is None:
                return
            try:
                if self.error is None:
                    out.flush()
            except OSError as exc:
                self._failed(exc)
            finally:
                if self._owns:
                    try:
                        out.close()
                    except OSError as exc:  # the buffer's last flush
                        self._failed(exc)

    def __enter__(self) -> JsonlStreamWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
