"""JSON and streaming JSONL: one span per line, written as spans end.

A line is :func:`span_to_dict` plus the exact ``start_ns``/``duration_ns``,
so :func:`read_jsonl` rebuilds spans equal to the originals. The live writer
(:class:`JsonlStreamWriter`) subscribes to the event stream and flushes every
line as its span ends: if the process dies, every span that had ended is
already in the file.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from json.encoder import encode_basestring as _string  # C-accelerated, UTF-8 kept as is
from typing import IO, TYPE_CHECKING, Any, Final, final

from .. import events as _events
from ..model import Span
from ._io import OPEN_ERRORS, Target, dumps, ended_span_of, open_target
from .dicts import _event_to_dict, _link_to_dict, span_from_dict, span_to_dict

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


class TraceFileError(ValueError):
    """A saved trace file is missing or malformed; the message names ``file:line``."""


def _span_record(span: Span) -> dict[str, Any]:
    data = span_to_dict(span)
    # ns fields make the round trip exact (ms fields are floors of them).
    data["start_ns"] = span.start_ns
    data["duration_ns"] = span.duration_ns
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
    # Hand-assembled fixed fields: building the span_to_dict() dict and then
    # encoding it cost twice as much (benchmarks/RESULTS.md, Exporters). The
    # keys, order and values are exactly _span_record()'s (tests check it).
    start = span._start_ns
    duration = span._duration_ns
    parent = span._parent_id
    line = (
        f'{{"trace_id":{_string(span._trace_id)},"span_id":{span._span_id:d},'
        f'"parent_id":{"null" if parent is None else format(parent, "d")},'
        f'"kind":"{span._kind._value_}","name":{_string(span._name)},'
        f'"start_ms":{start // _NS_PER_MS},'
        f'"start_unix_ms":{(start + span._binding.wall_offset_ns) // _NS_PER_MS},'
        f'"duration_ms":{duration // _NS_PER_MS}'
    )
    if span._metadata:
        line += ',"metadata":' + dumps(span._metadata)
    if span._links:
        line += ',"links":' + dumps([_link_to_dict(link) for link in span._links])
    if span._events:
        line += ',"events":' + dumps([_event_to_dict(event) for event in span._events])
    return f'{line},"start_ns":{start},"duration_ns":{duration}}}\n'


def write_jsonl(spans: Iterable[Span], target: Target) -> int:
    """Write spans as JSONL, one line each, streaming; returns how many were written.

    Accepts any iterable (a generator is never materialised).

    Example:
        >>> import io
        >>> write_jsonl([], io.StringIO())
        0
    """
    count = 0
    with open_target(target) as out:
        write = out.write
        for span in spans:
            write(span_to_json_line(span))
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
    count = 0
    with open_target(target) as out:
        write = out.write
        write("[")
        for span in spans:
            write(",\n" if count else "\n")
            write(dumps(_span_record(span)))
            count += 1
        write("\n]\n" if count else "]\n")
        out.flush()
    return count


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[Span]:
    """Yield the spans of a JSONL trace file lazily; blank lines are skipped.

    Raises :class:`TraceFileError` naming ``file:line`` for a missing file,
    bad JSON or a bad span record.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"; _ = write_jsonl([], p)
        >>> list(read_jsonl(p))
        []
    """
    name = os.fspath(path)
    try:
        handle = open(name, encoding="utf-8")
    except FileNotFoundError:
        raise TraceFileError(f"{name}: no such file") from None
    except OSError as exc:
        raise TraceFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    with handle:
        for lineno, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{name}:{lineno}"
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise TraceFileError(f"{where}: invalid JSON: {exc.msg}") from None
            if not isinstance(data, dict):
                raise TraceFileError(f"{where}: expected a span object, got {type(data).__name__}")
            try:
                yield span_from_dict(data, where=where)
            except ValueError as exc:
                raise TraceFileError(str(exc)) from None


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
    the file. Thread-safe; use as a context manager, or call ``close()``.

    Example:
        >>> import io
        >>> with JsonlStreamWriter(io.StringIO()) as writer:
        ...     writer.count
        0
    """

    __slots__ = (
        "_file", "_fsync", "_lock", "_owns", "_subscription", "collector", "count", "trace_id"
    )

    def __init__(
        self,
        target: Target,
        *,
        collector: SpanCollector | None = None,
        trace_id: str | None = None,
        fsync: bool = False,
    ) -> None:
        self.collector = collector
        self.trace_id = trace_id
        self.count = 0
        self._fsync = fsync
        self._lock = threading.Lock()
        self._owns = isinstance(target, str | os.PathLike)
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

    def write(self, span: Span) -> None:
        """Write one span now (also usable without the event stream)."""
        line = span_to_json_line(span)
        with self._lock:
            out = self._file
            if out is None:
                return
            out.write(line)
            out.flush()
            if self._fsync:
                os.fsync(out.fileno())
            self.count += 1

    def close(self) -> None:
        """Unsubscribe and close the file if this writer opened it (idempotent)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()
        with self._lock:
            out, self._file = self._file, None
        if out is not None:
            out.flush()
            if self._owns:
                out.close()

    def __enter__(self) -> JsonlStreamWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
