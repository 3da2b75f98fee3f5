"""Live OTLP/HTTP from the CLI: ``use_otel`` on a provider of its own, flushed before exit.

A ``BatchSpanProcessor`` around the SDK's OTLP/HTTP protobuf exporter sends
spans while the program runs. A failing endpoint must not change what the
run prints or its exit status: the exporter is wrapped so that the first
failure stops further sends (a dead endpoint stays dead for a CLI run, and
each retry would cost its timeout at exit) and is reported once, as one
line, by :meth:`LiveOtlp.finish`; the SDK's own log lines about it are held
back while the export runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Final, final
from urllib.parse import urlsplit

__all__ = ("LiveOtlp", "endpoint_from_environment", "traces_url")

_TRACES_PATH: Final = "/v1/traces"
_ENV_TRACES: Final = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
_ENV_BASE: Final = "OTEL_EXPORTER_OTLP_ENDPOINT"
_ENV_TIMEOUTS: Final = ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
# Seconds per export request unless the environment says otherwise (the
# SDK's default is 10 s, retried with backoff, a long wait at exit).
_TIMEOUT_S: Final = 3.0
_QUIET_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.http_transport",
    "opentelemetry.sdk.trace.export",
)


def traces_url(url: str) -> str:
    """The OTLP/HTTP traces URL for ``--otlp-endpoint URL``: ``/v1/traces`` added when no path.

    Example:
        >>> traces_url("http://127.0.0.1:6006"), traces_url("http://h:4318/custom/traces")
        ('http://127.0.0.1:6006/v1/traces', 'http://h:4318/custom/traces')
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"--otlp-endpoint must be an http(s) URL like http://host:4318, got {url!r}"
        )
    if parts.path in ("", "/"):
        return url.rstrip("/") + _TRACES_PATH
    return url


def endpoint_from_environment() -> bool:
    """Whether the standard OTLP endpoint variables ask for a live export.

    Example:
        >>> isinstance(endpoint_from_environment(), bool)
        True
    """
    return bool(os.environ.get(_ENV_TRACES) or os.environ.get(_ENV_BASE))


def _guarded(exporter: Any) -> Any:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Guarded(SpanExporter):
        """The OTLP exporter, stopped (and remembered) at its first failure."""

        def __init__(self) -> None:
            self.error: str | None = None
            self.unsent = 0
            self.sent = 0

        def export(self, spans: Sequence[Any]) -> Any:
            if self.error is None:
                try:
                    result = exporter.export(spans)
                except Exception as exc:  # a broken network stack must not reach the user
                    self.error = f"{type(exc).__name__}: {exc}"
                else:
                    if result is SpanExportResult.SUCCESS:
                        self.sent += len(spans)
                        return result
                    self.error = "the endpoint did not accept the spans"
            self.unsent += len(spans)
            return SpanExportResult.FAILURE

        def shutdown(self) -> None:
            exporter.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    return Guarded()


@final
class LiveOtlp:
    """Spans of this process to an OTLP/HTTP endpoint until :meth:`finish`.

    ``url`` is the ``--otlp-endpoint`` value (None: the ``OTEL_EXPORTER_OTLP_*``
    variables, resolved by the SDK). The resource comes from
    ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``.

    Example:
        >>> live = LiveOtlp("http://127.0.0.1:9")   # nothing listens there
        >>> live.finish()                            # nothing was sent: no warning
    """

    def __init__(self, url: str | None) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from ..otel_native import use_otel
        from ..otlp import default_resource

        self.url = None if url is None else traces_url(url)
        timeout = None if any(os.environ.get(v) for v in _ENV_TIMEOUTS) else _TIMEOUT_S
        # A level, not a filter: child loggers (the exporter's modules) inherit it.
        self._levels = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
        self.exporter = _guarded(OTLPSpanExporter(endpoint=self.url, timeout=timeout))
        self.provider = TracerProvider(resource=default_resource())
        self.provider.add_span_processor(BatchSpanProcessor(self.exporter))
        self._handle: Any = use_otel(self.provider)

    def finish(self) -> str | None:
        """Stop, send what is queued, shut down; the one-line warning if sending failed."""
        handle, self._handle = self._handle, None
        if handle is None:
            return None
        handle.close()
        try:
            self.provider.force_flush()
            self.provider.shutdown()
        finally:
            for name, level in self._levels.items():
                logging.getLogger(name).setLevel(level)
        error = self.exporter.error
        if error is None:
            return None
        where = self.url or os.environ.get(_ENV_TRACES) or os.environ.get(_ENV_BASE)
        return (
            f"warning: could not send the trace to {where} ({error}); "
            f"{self.exporter.unsent} span(s) not sent, other outputs are unaffected"
        )
