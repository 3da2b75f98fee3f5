"""``span(...)`` in pure Python: a context manager (sync and async) and a decorator.

The fallback of the compiled ``span`` type, with the same behaviour. The
handle a block gets is the open span itself (``SpanHandle``), so
``handle.set_metadata`` needs no lookup; with tracing off it is the shared
disabled handle and nothing is allocated per block.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, final

from ..kinds import SpanKind
from ..model import SpanLink
from ._outcome import decorate, record_outcome
from ._pure import DISABLED, SpanHandle, checked_kind, checked_name

if TYPE_CHECKING:
    from ._pure import CoreCollector

__all__ = ("span", "use_current_var")

P = ParamSpec("P")
R = TypeVar("R")


def _no_collector() -> CoreCollector:
    raise RuntimeError("harn_async_trace.context is not imported yet")


# The current-collector lookup as one C call (``ContextVar.get`` bound):
# set by context.py through use_current_var once that ContextVar exists.
_collector: Callable[[], CoreCollector] = _no_collector


def use_current_var(var: ContextVar[Any]) -> None:
    """Make ``span()`` read the current collector from ``var`` (context.py calls it)."""
    global _collector
    _collector = var.get


@final
class span:  # lower-case: used like a function, `with span(...)`
    """Trace a block or a function as one span.

    ``links`` are recorded on the span; ``detached=True`` opens it with no
    parent (its children still nest under it); ``new_trace=True`` makes it
    the root of a fresh trace id that every span under it carries, in this
    task and in tasks started under it. Other keywords are metadata.

    One ``span`` object may be entered again while it is open, nested or
    from other tasks: each entry is its own span.

    Example:
        >>> with span(SpanKind.STEP, "load", source="disk") as handle:
        ...     handle.set_metadata("rows", 3)

        >>> @span("step", "fetch")
        ... async def fetch() -> int:
        ...     return 1
    """

    __slots__ = (
        "_handle",
        "_more",
        "_plain",
        "detached",
        "kind",
        "links",
        "metadata",
        "name",
        "new_trace",
    )

    def __init__(
        self,
        kind: SpanKind | str,
        name: str,
        *,
        links: list[SpanLink] | None = None,
        detached: bool = False,
        new_trace: bool = False,
        **metadata: Any,
    ) -> None:
        if type(name) is not str:
            name = checked_name(name)
        kind = checked_kind(kind)
        if links is not None:
            if not isinstance(links, list | tuple) or not all(
                isinstance(link, SpanLink) for link in links
            ):
                raise TypeError(f"links must be a list of SpanLink, got {links!r}")
            links = list(links)
        self.kind = kind
        self.name = name
        self.links = links
        self.detached = detached
        self.new_trace = new_trace
        self.metadata = metadata
        self._plain = not (metadata or links or detached or new_trace)
        # The handle of the open `with` block; only when this object is entered
        # again while open, the other open ones (no list per span otherwise).
        self._handle: SpanHandle | None = None
        self._more: list[SpanHandle] | None = None

    def _open(self) -> SpanHandle:
        """Open one span of this scope; its handle (the disabled one when tracing is off)."""
        collector = _collector()
        if not collector.enabled:
            return DISABLED
        if self._plain:  # the common case, without a keyword-argument call
            span_id = collector.open(self.kind, self.name)
        else:
            span_id = collector.open(
                self.kind,
                self.name,
                self.links,
                detached=self.detached,
                new_trace=self.new_trace,
                metadata=self.metadata,
            )
        return collector._open[span_id]

    @staticmethod
    def _close(handle: SpanHandle, exc: BaseException | None) -> None:
        """End the span of ``handle``, recording ``exc`` first (while the span is open)."""
        collector = handle._collector
        if collector is None:  # disabled, ended already, or abandoned by a reset
            return
        if exc is not None:
            record_outcome(collector, handle.span_id, exc)
        collector.close(handle.span_id)

    def __enter__(self) -> SpanHandle:
        handle = self._open()
        if self._handle is None:
            self._handle = handle
        elif self._more is None:
            self._more = [handle]
        else:
            self._more.append(handle)
        return handle

    def _take_entry(self) -> SpanHandle:
        """The handle this task's exit belongs to (see the class docstring)."""
        entries: list[SpanHandle] = [self._handle, *(self._more or ())]  # type: ignore[list-item]  # _handle is set while _more is
        # Several entries are open: the innermost one on this task's chain is
        # the block now exiting (blocks nest within a task).
        chosen = entries[-1]
        by_collector: dict[int, list[SpanHandle]] = {}
        for entry in entries:
            if entry._collector is not None:
                by_collector.setdefault(id(entry._collector), []).append(entry)
        for group in by_collector.values():
            collector = group[0]._collector
            assert collector is not None  # grouped by collector above
            found = collector.innermost_of({e.span_id for e in group})
            if found is not None:
                chosen = next(e for e in group if e.span_id == found)
                break
        entries.remove(chosen)
        self._handle = entries[0]
        self._more = entries[1:] or None
        return chosen

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._more is None:  # one entry open: it is this one
            handle, self._handle = self._handle, None
        else:
            handle = self._take_entry()
        self._close(handle, exc)  # type: ignore[arg-type]  # set by __enter__

    async def __aenter__(self) -> SpanHandle:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``func`` so each call runs inside a fresh span."""
        return decorate(self, func)

