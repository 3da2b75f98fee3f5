"""The OpenTelemetry machinery behind ``export.otlp``, ``otlp_json`` and ``use_otel`` (internal)."""
