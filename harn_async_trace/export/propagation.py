"""W3C Trace Context: ``traceparent`` inject/extract, so a trace crosses processes.

``traceparent: 00-<32 hex trace id>-<16 hex span id>-<2 hex flags>``. Our trace
id maps to the 32-hex form of its uuid7 and back (``trace_<uuid>``), and the
span id is the span's OTel id (``_otel.mapping.otel_span_id``, the id every OTel
export gives it), so an OTel-instrumented service that receives the header
parents its spans on the very span our export sends. In the receiving process::

    parent = extract_traceparent(request.headers)   # None if absent/malformed
    if parent is not None:
        link = continue_trace(parent)                # same trace id from now on
        root = span_start_detached_with_links("pipeline", "handle", [link])

The root's ``relation=remote_parent`` link becomes its OTel parent on export.
A malformed header is ignored with one logged warning; it never raises.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Final, final

from .._trace_id import fresh_id_base, trace_id_from_hex, trace_id_hex
from ..clock import current_clock
from ..collector import SpanCollector
from ..model import Span, SpanLink
from ._otel.mapping import REMOTE_PARENT, link_context, otel_span_id, span_id_hex

__all__ = (
    "TRACEPARENT",
    "TraceParent",
    "continue_trace",
    "extract_traceparent",
    "format_traceparent",
    "inject_traceparent",
)

TRACEPARENT: Final = "traceparent"
_log: Final = logging.getLogger("harn_async_trace.propagation")
_HEADER: Final = re.compile(
    r"(?P<version>[0-9a-f]{2})-(?P<trace>[0-9a-f]{32})-(?P<span>[0-9a-f]{16})-(?P<flags>[0-9a-f]{2})"
    r"(?P<rest>(-.*)?)"
)
_MAX_HEADER: Final = 512


@final
@dataclass(frozen=True, slots=True)
class TraceParent:
    """A parsed ``traceparent``: the remote span a local trace continues from.

    Example:
        >>> tp = TraceParent("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331", True)
        >>> tp.span_id, tp.header()
        (13235353014750950193, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01')
    """

    trace_id_hex: str
    span_id_hex: str
    sampled: bool = True

    @property
    def trace_id(self) -> str:
        """Our form of the trace id (``trace_<uuid>``); ``trace_id_hex`` maps it back."""
        return trace_id_from_hex(self.trace_id_hex)

    @property
    def span_id(self) -> int:
        """The remote span id as an int (what ``SpanLink.span_id`` holds, as a string)."""
        return int(self.span_id_hex, 16)

    def to_link(self) -> SpanLink:
        """A link to the remote span, ``relation=remote_parent``."""
        return SpanLink(self.trace_id, str(self.span_id), {"relation": REMOTE_PARENT})

    def header(self) -> str:
        """The ``traceparent`` header value (version 00)."""
        return f"00-{self.trace_id_hex}-{self.span_id_hex}-{'01' if self.sampled else '00'}"


def format_traceparent(trace_id: str, span_id: int | str, *, sampled: bool = True) -> str:
    """The ``traceparent`` value for one of our spans (harn span ``span_id`` of ``trace_id``).

    Example:
        >>> format_traceparent("trace_0190a3b4-0000-7000-8000-000000000000", 3)
        '00-0190a3b4000070008000000000000000-53a16c8e4c6741ab-01'
    """
    span_hex = span_id_hex(otel_span_id(trace_id, int(span_id)))
    return f"00-{trace_id_hex(trace_id)}-{span_hex}-{'01' if sampled else '00'}"


def inject_traceparent(
    carrier: MutableMapping[str, str] | None = None,
    *,
    span: Span | SpanLink | None = None,
) -> str | None:
    """The ``traceparent`` of ``span`` (default: the current span); also set in ``carrier``.

    Returns None (and leaves ``carrier`` alone) when there is no span to
    point at, e.g. tracing is disabled.

    Example:
        >>> headers = {}
        >>> inject_traceparent(headers, span=SpanLink("trace_x", "7")) == headers["traceparent"]
        True
    """
    if carrier is not None and not hasattr(carrier, "__setitem__"):
        raise TypeError(
            "inject_traceparent(): carrier must be a mutable mapping (e.g. a headers dict), "
            f"got {type(carrier).__name__}"
        )
    checked: object = span  # typed callers pass a Span/SpanLink; untyped ones get a clear error
    if checked is not None and not isinstance(checked, Span | SpanLink):
        raise TypeError(
            "inject_traceparent(): span must be a Span, a SpanLink or None, "
            f"got {type(checked).__name__}"
        )
    if span is None:
        from ..api import current_span_link  # late: api sits above the exporters

        span = current_span_link()
        if span is None:
            return None
    if isinstance(span, SpanLink):
        ids = link_context(span)
        if ids is None:
            _log.warning("cannot inject traceparent: span id %r is not a valid id", span.span_id)
            return None
        value = f"00-{ids[0]}-{span_id_hex(ids[1])}-01"
    else:
        value = format_traceparent(span.trace_id, span.span_id)
    if carrier is not None:
        carrier[TRACEPARENT] = value
    return value


def _header_from(carrier: Mapping[str, str] | str | None) -> object:
    if carrier is None or isinstance(carrier, str):
        return carrier
    value = carrier.get(TRACEPARENT)
    if value is None:
        # HTTP header names are case-insensitive.
        for key, candidate in carrier.items():
            if isinstance(key, str) and key.lower() == TRACEPARENT:
                return candidate
    return value


def _malformed(value: object, why: str) -> None:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    _log.warning("ignoring malformed traceparent %s: %s", shown, why)


def extract_traceparent(carrier: Mapping[str, str] | str | None) -> TraceParent | None:
    """Parse a ``traceparent`` header (or a headers mapping); None when absent or malformed.

    A malformed value is logged once as a warning and ignored, never raised:
    a bad header from a peer must not fail the request.

    Example:
        >>> extract_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").sampled
        True
        >>> extract_traceparent("garbage") is None
        True
    """
    try:
        value: object = _header_from(carrier)
    except Exception as exc:  # a weird carrier object must not crash the caller either
        _malformed(carrier, f"unreadable carrier ({type(exc).__name__}: {exc})")
        return None
    if value is None:
        return None
    if not isinstance(value, str):
        _malformed(value, "not a string")
        return None
    text = value.strip()
    if len(text) > _MAX_HEADER:
        _malformed(value, "too long")
        return None
    match = _HEADER.fullmatch(text)
    if match is None:
        _malformed(value, "expected 00-<32 hex>-<16 hex>-<2 hex> (lower-case)")
        return None
    version, trace, span, flags = match.group("version", "trace", "span", "flags")
    if version == "ff":
        _malformed(value, "version ff is forbidden")
        return None
    if version == "00" and match.group("rest"):
        _malformed(value, "version 00 has exactly four fields")
        return None
    if trace == "0" * 32:
        _malformed(value, "all-zero trace id")
        return None
    if span == "0" * 16:
        _malformed(value, "all-zero span id")
        return None
    return TraceParent(trace, span, bool(int(flags, 16) & 0x01))


def continue_trace(parent: TraceParent, collector: SpanCollector | None = None) -> SpanLink:
    """Make ``collector`` (default: the current one) continue the remote trace.

    From now on its spans carry the remote trace id; span ids restart from a
    random 62-bit base (derived from the mock clock under one, so replays are
    stable) so they cannot collide with the remote process's ids in the same
    trace. Returns the ``remote_parent`` link to give the local root span.
    Call it before opening spans; ``collector.reset()`` (or
    ``set_tracing_enabled(True)``) starts a fresh trace again.

    Example:
        >>> tp = extract_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
        >>> c = SpanCollector(); link = continue_trace(tp, c)
        >>> c.trace_id == link.trace_id == tp.trace_id
        True
    """
    if not isinstance(parent, TraceParent):
        raise TypeError(
            "continue_trace(): parent must be a TraceParent (from extract_traceparent), "
            f"got {type(parent).__name__}"
        )
    if collector is None:
        from ..context import current_collector  # late: context sits above the exporters

        collector = current_collector()
    collector.adopt_trace(parent.trace_id, fresh_id_base(parent.header(), current_clock()))
    return parent.to_link()

