"""The context bridge: OTel's "current span" answered from the harn chain, only when asked.

OTel reads and sets its context through one object, the runtime context in
``opentelemetry.context`` (``get_current``/``attach``/``detach``). The
overlay installed here wraps it instead of setting OTel's context on every
harn span (the harn hot path pays nothing):

* ``get_current()``: when the innermost open harn span of the current task is
  newer than the OTel context, the answer is that context with the harn
  span's OTel span as current. "Newer" is decided by a mark every attached
  context gets: the harn span that was innermost when it was attached. A
  harn span opened since then (a different innermost span) wins; otherwise
  the attached context does (an OTel span made current inside a harn span).
* ``attach(context)``: when the context's span stands for an open harn span
  (an exported harn span or the harn copy of an OTel span), that harn span
  is bound as the task's chain until the matching ``detach``, so harn spans
  opened inside ``tracer.start_as_current_span(...)`` nest under its copy.

Tokens are the wrapped runtime's own, so uninstalling while contexts are
attached is safe.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol, final

from ...context import _current

if TYPE_CHECKING:
    from ...collector import SpanCollector

__all__ = ("ContextOverlay", "SpanRegistry", "underlying_context")

# The mark an attached context carries: (collector, innermost harn span id or None).
_MARK: Final = "harn_async_trace.chain_mark"


class SpanRegistry(Protocol):
    """What the overlay asks of the live export: the OTel span of a harn span, and back.

    A protocol rather than the live export's class, so this module stays
    below the one that installs it.
    """

    harn_of: dict[int, tuple[SpanCollector, int]]

    def otel_span_of(self, collector: SpanCollector, span_id: int) -> Any:
        """The OTel span standing for the open harn span ``span_id``."""
        ...


def _runtime_module() -> Any:
    import opentelemetry.context as runtime

    return runtime


def underlying_context() -> Any:
    """OTel's current context as OTel itself holds it (without the harn overlay)."""
    runtime = _runtime_module()
    current = runtime._RUNTIME_CONTEXT
    inner = current.inner if isinstance(current, ContextOverlay) else current
    return inner.get_current()


@final
class ContextOverlay:
    """Wraps OTel's runtime context (see module doc); :meth:`install` / :meth:`uninstall`.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from harn_async_trace.export._otel.live import LiveExport
        >>> live = LiveExport(TracerProvider(), capture_content=False)
        >>> overlay = ContextOverlay(live); overlay.install(); overlay.uninstall(); live.close()
    """

    def __init__(self, live: SpanRegistry) -> None:
        from opentelemetry import trace as api
        from opentelemetry.context import Context

        self._api = api
        self._context_type = Context
        self.live = live
        self.inner: Any = None
        # id(token) -> (token, chain binding) for attaches that bound a harn span.
        self._bindings: dict[int, tuple[Any, Any]] = {}

    def install(self) -> None:
        """Put the overlay in front of OTel's runtime context."""
        runtime = _runtime_module()
        self.inner = runtime._RUNTIME_CONTEXT
        runtime._RUNTIME_CONTEXT = self

    def uninstall(self) -> None:
        """Put OTel's runtime context back (if nobody replaced the overlay since)."""
        runtime = _runtime_module()
        if runtime._RUNTIME_CONTEXT is self:
            runtime._RUNTIME_CONTEXT = self.inner

    # -- the runtime-context interface -------------------------------------------

    def get_current(self) -> Any:
        context = self.inner.get_current()
        collector = _current.get()
        if not collector.enabled:
            return context
        span_id = collector.current_span_id()
        if span_id is None:
            return context
        mark = context.get(_MARK)
        if mark is not None and mark[0] is collector and mark[1] == span_id:
            return context
        return self._api.set_span_in_context(
            self.live.otel_span_of(collector, span_id), context
        )

    def attach(self, context: Any) -> Any:
        collector = _current.get()
        binding = None
        current = None
        if collector.enabled:
            current = collector.current_span_id()
            span = self._api.get_current_span(context)
            owner = self.live.harn_of.get(span.get_span_context().span_id)
            if owner is not None and owner[0] is collector and owner[1] != current:
                if collector.is_open(owner[1]):
                    binding = collector.bind(owner[1])
                    binding.__enter__()
                    current = owner[1]
        marked = self._context_type({**context, _MARK: (collector, current)})
        token = self.inner.attach(marked)
        if binding is not None:
            self._bindings[id(token)] = (token, binding)
        return token

    def detach(self, token: Any) -> None:
        entry = self._bindings.pop(id(token), None)
        try:
            self.inner.detach(token)
        finally:
            if entry is not None:
                try:
                    entry[1].__exit__(None, None, None)
                except (ValueError, RuntimeError):
                    pass  # detached in another context than attached (OTel logs that)
