"""``span(...)``: a span as a context manager (sync and async) or a decorator.

It records exceptions (``error``, ``error_type``) and cancellation
(``cancelled: True``) and always ends the span, however the block exits.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar, cast, final

from ._sync_async import SyncAsyncContext
from .collector import SpanCollector
from .context import _current
from .kinds import _KIND_BY_VALUE, SpanKind, coerce_kind
from .model import SpanLink

__all__ = ("SpanHandle", "span")

P = ParamSpec("P")
R = TypeVar("R")


def is_cancellation(exc: BaseException) -> bool:
    """asyncio's CancelledError, or trio/anyio's ``Cancelled`` (not importing trio)."""
    return isinstance(exc, asyncio.CancelledError) or type(exc).__name__ == "Cancelled"


def record_outcome(collector: SpanCollector, span_id: int, exc: BaseException | None) -> None:
    """Write how a block ended onto its open span (nothing for a clean exit)."""
    if exc is None or isinstance(exc, GeneratorExit):
        return
    if is_cancellation(exc):
        collector.set_metadata(span_id, "cancelled", True)
    else:
        collector.set_metadata(span_id, "error", str(exc))
        collector.set_metadata(span_id, "error_type", type(exc).__name__)


@final
class SpanHandle:
    """What ``with span(...) as handle`` gives: the id plus helpers bound to it.

    ``span_id`` is 0 when tracing is disabled, and every helper is then a no-op.
    """

    __slots__ = ("_collector", "span_id")

    def __init__(self, collector: SpanCollector | None, span_id: int) -> None:
        self._collector = collector
        self.span_id = span_id

    def set_metadata(self, key: str, value: Any) -> None:
        """Set metadata on the span while it is open."""
        if self._collector is not None:
            self._collector.set_metadata(self.span_id, key, value)

    def record_event(self, name: str, **attrs: Any) -> bool:
        """Record an event on the span; False when disabled or ended."""
        if self._collector is None:
            return False
        return self._collector.record_event(self.span_id, name, attrs or None)

    def link(self) -> SpanLink | None:
        """A link to this span (None when disabled or ended)."""
        if self._collector is None:
            return None
        return self._collector.span_link(self.span_id)

    def __repr__(self) -> str:
        return f"SpanHandle(span_id={self.span_id})"


_DISABLED: Final = SpanHandle(None, 0)
# Hot path: the current-collector lookup as one C call (see api.py), and
# handles made without the Python-level __init__ call (half their cost).
_collector: Final = _current.get
_new_handle: Final = SpanHandle.__new__


@final
class span(SyncAsyncContext):  # lower-case: used like a function, `with span(...)`
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
        if type(name) is not str and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {type(name).__name__}: {name!r}")
        if type(kind) is not SpanKind:
            # As in SpanCollector.open: a dict lookup, not a call, for values.
            kind = (_KIND_BY_VALUE.get(kind) if type(kind) is str else None) or coerce_kind(kind)
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
        collector = _collector()
        if not collector.enabled:
            return _DISABLED
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
        handle = _new_handle(SpanHandle)
        handle._collector = collector
        handle.span_id = span_id
        return handle

    @staticmethod
    def _close(handle: SpanHandle, exc: BaseException | None) -> None:
        collector = handle._collector
        if collector is None:
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
        if not self._more:
            handle, self._handle = self._handle, None
            return handle  # type: ignore[return-value]  # set by __enter__
        entries: list[SpanHandle] = [self._handle, *self._more]  # type: ignore[list-item]  # _handle is set while _more is
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

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """Decorate ``func`` so each call runs inside a fresh span."""
        if inspect.iscoroutinefunction(func):
            async_func = cast(Callable[P, Awaitable[Any]], func)

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                handle = self._open()
                try:
                    result = await async_func(*args, **kwargs)
                except BaseException as exc:
                    self._close(handle, exc)
                    raise
                self._close(handle, None)
                return result

            return cast(Callable[P, R], async_wrapper)

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            handle = self._open()
            try:
                result = func(*args, **kwargs)
            except BaseException as exc:
                self._close(handle, exc)
                raise
            self._close(handle, None)
            return result

        return wrapper
