"""``span(...)``: a span as a context manager (sync and async) or a decorator.

It records exceptions (``error``, ``error_type``) and cancellation
(``cancelled: True``) and always ends the span, however the block exits.
The implementation is the core's (``harn_async_trace._core``: a compiled
type, or its pure-Python fallback); the handle a block gets is the open
span itself (``SpanHandle``), and with tracing off every block gets the
same shared disabled handle.
"""

from __future__ import annotations

from ._core import SpanHandle, span
from ._core._outcome import is_cancellation, record_outcome

__all__ = ("SpanHandle", "is_cancellation", "record_outcome", "span")
