"""The tracing core: the collector's core interface, span handles, ``span()``.

Two implementations with one behaviour: a C extension (``_ccore.c``, built
at install) and the pure-Python fallback (``_pure*.py``), as wrapt,
multidict and msgspec do it. ``ACCELERATED`` (``harn_async_trace.accelerated``)
says which one this process uses; ``HARN_TRACE_PURE=1`` forces the
fallback, and so does an install where the extension could not be built.
The whole test suite runs on both (``make test`` and ``make test-pure``).

The design both share (docs/performance.md has it in a page):

* Per-task parent chains: each collector has a ``ContextVar`` holding the
  innermost pushed open span; open spans link to the one below. asyncio
  copies the context into each task, so tasks never see each other's
  pushes. Ending a span never touches a chain: ended spans are skipped when
  a chain is read and dropped by the next push.
* Open spans are ``SpanHandle`` objects (what ``with span() as handle``
  gives), in an id -> handle table.
* Finished spans are plain rows of ints and strings, with metadata, links
  and events in side tables keyed by span id: no object per finished span,
  so holding many costs little memory and nothing at garbage collection.
  ``Span`` records are built when read (``end``, ``spans``, end events).
* Clocks are resolved per span through ``clock.current_clock`` and read
  through their ``monotonic_ns``, so both cores give the same times.
"""

from __future__ import annotations

import asyncio
import os
import time as _time
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any

from . import _pure_api, _pure_scoped

__all__ = (
    "ACCELERATED",
    "DISABLED",
    "CoreCollector",
    "SpanHandle",
    "current_span_id",
    "span",
    "span_attach_metadata",
    "span_close",
    "span_end",
    "span_set_metadata",
    "span_start",
    "use_current_var",
)


def _compiled() -> ModuleType | None:
    if os.environ.get("HARN_TRACE_PURE", "") not in ("", "0"):
        return None
    try:
        from . import _ccore
    except ImportError:  # not built (see setup.py): the pure core serves
        return None
    return _ccore


_ccore = _compiled()
ACCELERATED: bool = _ccore is not None


def _use_current_var_pure(var: ContextVar[Any]) -> None:
    _pure_api._collector = var.get
    _pure_scoped.use_current_var(var)


if TYPE_CHECKING or _ccore is None:
    from ._pure import DISABLED, CoreCollector, SpanHandle
    from ._pure_api import (
        current_span_id,
        span_attach_metadata,
        span_close,
        span_end,
        span_set_metadata,
        span_start,
    )
    from ._pure_scoped import span

    use_current_var = _use_current_var_pure

else:
    from .. import events as _events
    from .._trace_id import new_trace_id as _new_trace_id
    from ..clock import SystemClock as _SystemClock
    from ..clock import current_clock as _current_clock
    from ..kinds import _KIND_BY_VALUE, SpanKind, coerce_kind
    from ..model import Span, SpanEvent, SpanLink, _ClockBinding
    from ._outcome import decorate as _decorate

    _ccore._configure(
        {
            "current_clock": _current_clock,
            "system_clock": _SystemClock(),
            "SystemClock": _SystemClock,
            "events": _events,
            "Span": Span,
            "ClockBinding": _ClockBinding,
            "SpanLink": SpanLink,
            "SpanEvent": SpanEvent,
            "SpanKind": SpanKind,
            "kind_by_value": _KIND_BY_VALUE,
            "coerce_kind": coerce_kind,
            "new_trace_id": _new_trace_id,
            "CancelledError": asyncio.CancelledError,
            "decorate": _decorate,
            "time_monotonic_ns": _time.monotonic_ns,
        }
    )
    CoreCollector = _ccore.CoreCollector
    SpanHandle = _ccore.SpanHandle
    DISABLED = _ccore.DISABLED
    span = _ccore.span
    span_start = _ccore.span_start
    span_set_metadata = _ccore.span_set_metadata
    span_attach_metadata = _ccore.span_attach_metadata
    span_end = _ccore.span_end
    span_close = _ccore.span_close
    current_span_id = _ccore.current_span_id

    def use_current_var(var: ContextVar[Any]) -> None:
        """Make the core read the current collector from ``var`` (context.py calls it).

        The pure modules are told too: their functions and docstring
        examples work on compiled collectors as well.
        """
        _ccore._set_current_var(var)
        _use_current_var_pure(var)
