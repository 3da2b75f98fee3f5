"""``instrument_asyncio()``: plain ``asyncio`` task creation, traced, process wide.

While it is on, every task created under an open span of the current
collector -- ``asyncio.create_task``, ``loop.create_task``,
``asyncio.ensure_future``, ``asyncio.gather``, ``TaskGroup.create_task``,
eager tasks -- runs under a detached ``spawn`` span linked to that span
(``relation=spawned_from``), opened when the task is created; see
``_task_factory.py`` for the factory and how a name the loop gives the task
later reaches the span.

How loops get the factory. asyncio has no process-wide task hook, only a
factory per loop, and loops are made in several ways, so the factory is put
on:

* the loop running in the calling thread, if any (so calling it inside a
  loop you built by hand covers that loop);
* every loop made afterwards by ``asyncio.new_event_loop()`` (and so
  ``asyncio.run`` and ``asyncio.Runner()``), through a wrapper of that
  function;
* every loop made by the ``loop_factory`` of an ``asyncio.Runner`` created
  afterwards (``uvloop.run``, ``harn_async_trace.run``, the virtual-time
  loops, pytest-asyncio), through a wrapper of ``Runner.__init__``.

A factory already set on a loop is kept and called with the (wrapped)
coroutine, so eager task factories and others compose. An event-loop policy
was the other candidate; it misses every ``loop_factory`` and interleaves
with ``mock_time``'s own policy, so the two functions are wrapped instead.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import Any, Final, final

from ._task_factory import STATE, TaskFactory, new_task_factory

__all__ = ("AsyncioInstrumentation", "instrument_asyncio", "uninstrument_asyncio")

_lock: Final = threading.Lock()
# Loop -> (our factory on it, the one it had), so turning off can put that back.
_installed: Final[
    weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[TaskFactory, Any]]
] = weakref.WeakKeyDictionary()


class _Session:
    """The process-wide on/off state: open handles and how to undo the patches."""

    def __init__(self) -> None:
        self.users = 0
        self.generation = 0
        self.undo: list[Callable[[], None]] = []


_session: Final = _Session()


def _install(loop: asyncio.AbstractEventLoop) -> None:
    """Put the factory on ``loop`` (once; a factory already there is kept beneath it)."""
    with _lock:
        current = loop.get_task_factory()
        entry = _installed.get(loop)
        if entry is not None and entry[0] is current:
            return
        # A factory of ours beneath a foreign one (set over ours while it was
        # off) is wrapped again: it never wraps twice, since its wrapper is
        # a boundary task body.
        factory = new_task_factory(loop, current)
        loop.set_task_factory(factory)
        _installed[loop] = (factory, current)


def _instrumenting(make: Callable[[], Any]) -> Callable[[], Any]:
    """``make`` (a loop factory), with each loop it makes instrumented while it is on."""

    def factory() -> Any:
        loop = make()
        if STATE.active and isinstance(loop, asyncio.AbstractEventLoop):
            _install(loop)
        return loop

    factory.__qualname__ = factory.__name__ = getattr(make, "__name__", "loop_factory")
    return factory


def _patch(owner: object, name: str, replacement: Any) -> Callable[[], None]:
    """Set ``owner.name``; the returned undo restores it unless someone replaced ours since."""
    original = getattr(owner, name)
    setattr(owner, name, replacement)

    def undo() -> None:
        if getattr(owner, name) is replacement:
            setattr(owner, name, original)

    return undo


def _patch_loop_creation() -> list[Callable[[], None]]:
    events = asyncio.events
    new_event_loop = _instrumenting(events.new_event_loop)
    runner_init = asyncio.Runner.__init__

    def init(
        self: asyncio.Runner,
        *,
        debug: bool | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        # None stays None: the Runner then calls set_event_loop itself, and
        # its loop comes from new_event_loop, wrapped below.
        if loop_factory is not None:
            loop_factory = _instrumenting(loop_factory)
        runner_init(self, debug=debug, loop_factory=loop_factory)

    return [
        _patch(events, "new_event_loop", new_event_loop),
        _patch(asyncio, "new_event_loop", new_event_loop),
        _patch(asyncio.Runner, "__init__", init),
    ]


def _turn_off() -> None:
    """Undo the patches and take the factory back out of every loop (lock held)."""
    STATE.active = False
    for undo in reversed(_session.undo):
        undo()
    _session.undo.clear()
    for loop, (factory, previous) in list(_installed.items()):
        # A factory set over ours stays; ours beneath it now only passes tasks on.
        if loop.get_task_factory() is factory:
            loop.set_task_factory(previous)
    _installed.clear()


@final
class AsyncioInstrumentation:
    """What :func:`instrument_asyncio` returns: ``close()`` undoes that call.

    Instrumentation stays on while any handle is open; closing the last one
    (or :func:`uninstrument_asyncio`) turns it off. Also a context manager.

    Example:
        >>> with instrument_asyncio() as handle:
        ...     handle.active
        True
        >>> handle.active
        False
    """

    __slots__ = ("_closed", "_generation")

    def __init__(self, generation: int) -> None:
        self._generation = generation
        self._closed = False

    @property
    def active(self) -> bool:
        """Whether this handle still holds instrumentation on."""
        return not self._closed and self._generation == _session.generation and STATE.active

    def close(self) -> None:
        """Release this handle; the last one open turns instrumentation off. Idempotent."""
        with _lock:
            if self._closed:
                return
            self._closed = True
            if self._generation != _session.generation:
                return  # uninstrument_asyncio() already turned it off
            _session.users -= 1
            if _session.users == 0:
                _turn_off()

    def __enter__(self) -> AsyncioInstrumentation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"AsyncioInstrumentation(active={self.active})"


def instrument_asyncio() -> AsyncioInstrumentation:
    """Trace plain asyncio tasks: each one created under an open span gets a linked ``spawn`` span.

    Opt-in and process wide (see the module docstring for which loops it
    reaches). A task created while a span of the current collector is open
    runs under a detached ``spawn`` span named after the task (for a task
    left with asyncio's ``Task-N`` name: its coroutine's qualname), linked to
    that span with ``relation=spawned_from``, ending with ``status``. The
    span opens when the task is created (so it starts then, and span ids
    follow creation order); a name the loop gives the task afterwards is
    applied at the task's first step. Tasks
    created with no span open are untouched, and the library's own
    boundaries (``traced_spawn``, ``TracedTaskGroup``, ...) are not wrapped
    twice. Calling it again is harmless (it also covers the running loop);
    each handle undoes its own call.

    Example:
        >>> from harn_async_trace import SpanCollector, span, use_collector
        >>> async def main() -> int:
        ...     async def job() -> int:
        ...         return 1
        ...     with span("pipeline", "main"):
        ...         return await asyncio.create_task(job(), name="job")
        >>> collector = SpanCollector()
        >>> with instrument_asyncio(), use_collector(collector):
        ...     asyncio.run(main())
        1
        >>> [(s.kind.value, s.name, s.links[0].attributes) for s in collector.spans()[:1]]
        [('spawn', 'job', {'relation': 'spawned_from'})]
    """
    with _lock:
        if _session.users == 0:
            _session.generation += 1
            _session.undo = _patch_loop_creation()
            STATE.active = True
        _session.users += 1
        handle = AsyncioInstrumentation(_session.generation)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        _install(loop)
    return handle


def uninstrument_asyncio() -> None:
    """Turn instrumentation off now, whatever handles are still open.

    Tasks already running under a ``spawn`` span finish under it.

    Example:
        >>> handle = instrument_asyncio(); uninstrument_asyncio(); handle.active
        False
    """
    with _lock:
        if _session.users == 0:
            return
        _session.users = 0
        _session.generation += 1
        _turn_off()
