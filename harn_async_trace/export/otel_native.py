"""``use_otel()``: harn tracing inside OpenTelemetry, both ways.

While the handle is open (needs the ``[otel]`` extra):

1. every harn span goes live to the provider's span processors (``on_start``
   when it starts, ``on_end`` when it ends; ``_otel.live``);
2. inside an open harn span, ``opentelemetry.trace.get_current_span()`` is
   that span, so OTel instrumentations (httpx, openai, ...) make their spans
   its children (``_otel.context``);
3. spans that tracers of the provider start are recorded in the current harn
   collector too, as ``llm_call``/``tool_call``/``fn_call`` by their
   ``gen_ai.operation.name`` (``_otel.ingest``), and never exported twice;
4. a harn root opened while an OTel span is current (and no harn span is
   open) is that span's child, and in the harn trace it carries that span's
   trace id and a ``remote_parent`` link to it (``_otel.live``);
5. message content is dropped from harn spans and exports unless
   ``capture_content=True``.

With tracing off, nothing of this runs: the harn hot path only pays for it
while a handle is open (see benchmarks/RESULTS.md, "use_otel").
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Final, final

from .otlp import _sdk, default_resource

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ("OtelHandle", "use_otel")

_ENDPOINT_VARS: Final = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


@final
class _State:
    __slots__ = ("ingest", "live", "overlay", "provider", "refs")

    def __init__(self, provider: Any, live: Any, overlay: Any, ingest: Any) -> None:
        self.provider = provider
        self.live = live
        self.overlay = overlay
        self.ingest = ingest
        self.refs = 1


_lock: Final = threading.Lock()
_active: _State | None = None
# The recording processor each provider got: reused by a later use_otel on it
# (the SDK cannot remove one, so a new one per call would pile up).
_ingest_of: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


@final
class OtelHandle:
    """What :func:`use_otel` returns: ``close()`` (or leaving ``with``) undoes it.

    ``provider`` is the tracer provider in use. Closing does not shut the
    provider down (call ``provider.force_flush()`` / ``shutdown()`` for that).

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> with use_otel(TracerProvider()) as handle:
        ...     handle.active
        True
        >>> handle.active
        False
    """

    __slots__ = ("_state", "provider")

    def __init__(self, state: _State) -> None:
        self._state: _State | None = state
        self.provider: TracerProvider = state.provider

    @property
    def active(self) -> bool:
        """Whether this handle is still open."""
        return self._state is not None

    def close(self) -> None:
        """Undo this ``use_otel()`` call (idempotent); the last open handle stops the bridge."""
        global _active
        with _lock:
            state, self._state = self._state, None
            if state is None:
                return
            state.refs -= 1
            if state.refs > 0:
                return
            state.live.close()
            state.overlay.uninstall()
            state.ingest.active = False  # the SDK cannot remove a processor
            if _active is state:
                _active = None

    def __enter__(self) -> OtelHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _global_provider() -> Any:
    """OTel's global provider; an SDK one from the environment when it is still the no-op proxy."""
    otel = _sdk()
    api = otel.api
    provider = api.get_tracer_provider()
    if isinstance(provider, otel.sdk.TracerProvider):
        return provider
    if not isinstance(provider, api.ProxyTracerProvider):
        return provider  # someone else's provider: use_otel says whether it can be used
    configured = otel.sdk.TracerProvider(resource=default_resource())
    if any(os.environ.get(name) for name in _ENDPOINT_VARS):
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            pass  # the [otel] extra without the exporter: nothing to send to
        else:
            configured.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    api.set_tracer_provider(configured)
    return api.get_tracer_provider()


def use_otel(
    tracer_provider: TracerProvider | None = None, *, capture_content: bool = False
) -> OtelHandle:
    """Make harn tracing part of OpenTelemetry (see the module doc); returns a handle.

    ``tracer_provider`` defaults to OTel's global one (an SDK provider set up
    from the ``OTEL_*`` environment when none was set). Calling it again
    with the same provider is harmless (the bridge runs once; it stops when
    every handle is closed); with another provider while one is active it
    raises ``RuntimeError``. ``capture_content`` is the first call's.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from harn_async_trace import SpanCollector, use_collector
        >>> from opentelemetry import trace
        >>> c = SpanCollector()
        >>> with use_collector(c), use_otel(TracerProvider()):
        ...     root = c.open("step", "plan")
        ...     inside = trace.get_current_span().get_span_context().span_id
        ...     _ = c.end(root)
        >>> from harn_async_trace.export._otel.mapping import otel_span_id
        >>> inside == otel_span_id(c.trace_id, root)
        True
    """
    global _active
    otel = _sdk()
    provider = tracer_provider if tracer_provider is not None else _global_provider()
    if not isinstance(provider, otel.sdk.TracerProvider):
        raise TypeError(
            "use_otel() needs an OpenTelemetry SDK TracerProvider "
            f"(opentelemetry.sdk.trace.TracerProvider), got {type(provider).__name__}"
        )
    if not isinstance(capture_content, bool):
        raise TypeError(f"capture_content must be a bool, got {capture_content!r}")
    from ._otel.context import ContextOverlay
    from ._otel.ingest import make_ingest_processor
    from ._otel.live import LiveExport

    with _lock:
        state = _active
        if state is not None:
            if state.provider is not provider:
                raise RuntimeError(
                    "use_otel() is already active with another tracer provider; "
                    "close that handle first"
                )
            state.refs += 1
            return OtelHandle(state)
        live = LiveExport(provider, capture_content=capture_content)
        overlay = ContextOverlay(live)
        overlay.install()
        ingest = _ingest_of.get(provider)
        if ingest is None:
            ingest = _ingest_of[provider] = make_ingest_processor(live)
            provider.add_span_processor(ingest)
        else:
            ingest.live = live
            ingest.active = True
        _active = _State(provider, live, overlay, ingest)
        return OtelHandle(_active)
