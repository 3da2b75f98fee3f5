"""Suspension/resume and drain spans.

A suspended workflow may be resumed much later, in another task or another
process, so the ``resume`` span is a detached root linked to the
``suspension`` span through a small serialisable :class:`SuspensionToken`
(never a parent pointer). A ``drain`` span covers a graceful shutdown, and
each per-item choice made during it is a zero-duration ``drain_decision``
child, pinned under the drain span whatever the caller has open.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, final

from .._scoped import record_outcome
from .._sync_async import SyncAsyncContext
from ..collector import SpanCollector
from ..context import current_collector
from ..kinds import SpanKind
from ..model import SpanLink

__all__ = (
    "DrainHandle",
    "ResumeHandle",
    "SuspensionHandle",
    "SuspensionToken",
    "emit_drain_decision",
    "traced_drain",
    "traced_resume",
    "traced_suspension",
)


@final
@dataclass(frozen=True, slots=True)
class SuspensionToken:
    """What a resume needs to link back to its suspension; plain strings, serialisable.

    Example:
        >>> token = SuspensionToken("trace_1", "4", "wait_for_approval")
        >>> SuspensionToken.from_dict(token.to_dict()) == token
        True
    """

    trace_id: str
    span_id: str
    name: str

    def link(self) -> SpanLink:
        """The link a ``resume`` span carries (``relation=resumes``)."""
        return SpanLink(self.trace_id, self.span_id, {"relation": "resumes"})

    def to_dict(self) -> dict[str, str]:
        """Plain data, e.g. to store with a workflow snapshot."""
        return {"trace_id": self.trace_id, "span_id": self.span_id, "name": self.name}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> SuspensionToken:
        """Rebuild a token stored with :meth:`to_dict`."""
        return cls(str(data["trace_id"]), str(data["span_id"]), str(data["name"]))


class _Scope(SyncAsyncContext):
    """A span as a sync/async context manager; subclasses choose how it opens."""

    __slots__ = ("_collector", "_metadata", "_name", "span_id")

    def __init__(self, name: str, metadata: dict[str, Any]) -> None:
        if not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
        self._name = name
        self._metadata = metadata
        self._collector: SpanCollector | None = None
        self.span_id = 0

    def _open(self, collector: SpanCollector) -> int:
        raise NotImplementedError

    def _enter(self) -> None:
        if self._collector is not None:
            raise RuntimeError(f"{type(self).__name__} is already open; make a new one")
        collector = current_collector()
        if not collector.enabled:
            return
        self._collector = collector
        self.span_id = self._open(collector)
        for key, value in self._metadata.items():
            collector.set_metadata(self.span_id, key, value)

    def set_metadata(self, key: str, value: Any) -> None:
        """Set metadata on the open span (no-op when tracing is disabled)."""
        if self._collector is not None:
            self._collector.set_metadata(self.span_id, key, value)

    def __enter__(self) -> Self:
        self._enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        collector = self._collector
        if collector is None:
            return
        record_outcome(collector, self.span_id, exc)
        collector.end(self.span_id)


@final
class SuspensionHandle(_Scope):
    """``with traced_suspension(...) as handle``: ``handle.token`` links a later resume."""

    __slots__ = ("token",)

    def __init__(self, name: str, metadata: dict[str, Any]) -> None:
        super().__init__(name, metadata)
        self.token: SuspensionToken | None = None

    def _open(self, collector: SpanCollector) -> int:
        span_id = collector.start(SpanKind.SUSPENSION, self._name)
        trace_id = collector.open_details(span_id)[0]
        self.token = SuspensionToken(trace_id, str(span_id), self._name)
        return span_id


def traced_suspension(name: str, **metadata: Any) -> SuspensionHandle:
    """A ``suspension`` span under the current span around the act of suspending.

    ``handle.token`` (None when tracing is disabled) is what
    :func:`traced_resume` links to; it survives a process restart via
    ``to_dict``/``from_dict``.

    Example:
        >>> with traced_suspension("approval", reason="human") as handle:
        ...     snapshot = handle.token
    """
    return SuspensionHandle(name, metadata)


@final
class ResumeHandle(_Scope):
    """``with traced_resume(token) as handle``: the open ``resume`` span."""

    __slots__ = ("_link",)

    def __init__(self, name: str, link: SpanLink | None, metadata: dict[str, Any]) -> None:
        super().__init__(name, metadata)
        self._link = link

    def _open(self, collector: SpanCollector) -> int:
        links = [] if self._link is None else [self._link]
        # Detached but pushed: the resumed work nests under the resume span.
        return collector.start_detached_with_links(SpanKind.RESUME, self._name, links)


def traced_resume(
    token: SuspensionToken | SpanLink | None, *, name: str | None = None, **metadata: Any
) -> ResumeHandle:
    """A detached ``resume`` span linked to the suspension (``relation=resumes``).

    Work inside the block nests under the resume span. ``name`` defaults to
    the suspension's name.

    Example:
        >>> with traced_suspension("approval") as suspended:
        ...     pass
        >>> with traced_resume(suspended.token):
        ...     pass
    """
    if isinstance(token, SuspensionToken):
        link: SpanLink | None = token.link()
        default_name = token.name
    elif isinstance(token, SpanLink):
        link = SpanLink(token.trace_id, token.span_id, {"relation": "resumes"})
        default_name = "resume"
    elif token is None:
        link, default_name = None, "resume"
    else:
        raise TypeError(f"token must be a SuspensionToken, SpanLink or None, got {token!r}")
    return ResumeHandle(default_name if name is None else name, link, metadata)


@final
class DrainHandle(_Scope):
    """``with traced_drain(...) as drain``: ``drain.decide(...)`` records each decision."""

    __slots__ = ()

    def _open(self, collector: SpanCollector) -> int:
        return collector.start(SpanKind.DRAIN, self._name)

    def decide(self, subject: str, decision: str, **metadata: Any) -> int:
        """Record a zero-duration ``drain_decision`` child named ``subject``; returns its id.

        It is a child of the drain span even when called from another task or
        under other open spans (0 when tracing is disabled or the drain ended).
        """
        collector = self._collector
        if collector is None or collector.span_link(self.span_id) is None:
            return 0
        return contextvars.copy_context().run(
            _decision_under, collector, self.span_id, subject, decision, metadata
        )


def _decision_under(
    collector: SpanCollector, parent_id: int, subject: str, decision: str, metadata: dict[str, Any]
) -> int:
    with collector.bind(parent_id):
        return _emit_decision(collector, subject, decision, metadata)


def _emit_decision(
    collector: SpanCollector, subject: str, decision: str, metadata: dict[str, Any]
) -> int:
    span_id = collector.open(
        SpanKind.DRAIN_DECISION, subject, metadata={"decision": decision, **metadata}
    )
    collector.close(span_id, instant=True)
    return span_id


def traced_drain(name: str, **metadata: Any) -> DrainHandle:
    """A ``drain`` span around a graceful shutdown, with ``decide()`` for each item.

    Example:
        >>> with traced_drain("workers", mode="graceful") as drain:
        ...     _ = drain.decide("job-1", "finish")
    """
    return DrainHandle(name, metadata)


def emit_drain_decision(subject: str, decision: str, **metadata: Any) -> int:
    """A zero-duration ``drain_decision`` span under the current span (0 when disabled).

    Example:
        >>> emit_drain_decision("job-7", "cancel", reason="timeout")
        0
    """
    collector = current_collector()
    if not collector.enabled:
        return 0
    return _emit_decision(collector, subject, decision, metadata)
