"""Helpers for the boundary tests: a loop-parametrised runner and a tree outline.

``outline(spans)`` renders a trace as an indented text tree with ids,
durations, metadata and links, so each boundary test can assert the exact
shape in one readable string.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import uvloop

from harn_async_trace import (
    MockClock,
    Span,
    SpanCollector,
    SpanKind,
    install_override,
    use_collector,
)
from harn_async_trace.loop import virtual_loop_factory

T = TypeVar("T")

# Stock asyncio and uvloop, each plain and on the virtual-time loop.
LOOPS = ("asyncio", "uvloop", "virtual-asyncio", "virtual-uvloop")
VIRTUAL_LOOPS = ("virtual-asyncio", "virtual-uvloop")


def new_loop(kind: str, clock: MockClock) -> asyncio.AbstractEventLoop:
    """A fresh event loop of ``kind``; the virtual ones run on ``clock``."""
    if kind.startswith("virtual-"):
        return virtual_loop_factory(clock, use_uvloop=kind.endswith("uvloop"))()
    return uvloop.new_event_loop() if kind == "uvloop" else asyncio.new_event_loop()


def spawn_names(collector: SpanCollector) -> list[str]:
    """The names of ``collector``'s finished spawn spans, in order."""
    return [s.name for s in collector.spans() if s.kind is SpanKind.SPAWN]


def run_on(loop_name: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` on a fresh stock asyncio (``"asyncio"``) or uvloop (``"uvloop"``) loop."""
    if loop_name == "uvloop":
        return uvloop.run(main())
    return asyncio.run(main())


@dataclass
class Traced:
    """What a boundary test gets: a collector, a mock clock and a loop runner."""

    collector: SpanCollector
    clock: MockClock
    loop_kind: str

    def run(self, main: Callable[[], Awaitable[T]]) -> T:
        """Run ``main()`` to completion on a fresh loop, with the collector bound."""

        async def bound() -> T:
            with use_collector(self.collector):
                return await main()

        with asyncio.Runner(loop_factory=lambda: new_loop(self.loop_kind, self.clock)) as runner:
            return runner.run(bound())

    def advance_ms(self, ms: int) -> None:
        """Move the mock clock forward by ``ms`` milliseconds."""
        self.clock.advance_ns(ms * 1_000_000)

    def by_name(self, name: str) -> Span:
        """The one finished span called ``name``."""
        (found,) = [s for s in self.collector.spans() if s.name == name]
        return found

    def outline(self) -> str:
        """The finished spans as a tree (see :func:`outline`)."""
        return outline(self.collector.spans())


def make_traced(loop_kind: str) -> tuple[Traced, Callable[[], None]]:
    """A Traced with a fresh MockClock installed; call the second item to uninstall it."""
    clock = MockClock(start_wall_ms=1_700_000_000_000)
    guard = install_override(clock)
    return Traced(SpanCollector(), clock, loop_kind), guard.restore


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def outline(spans: Iterable[Span], *, skip_meta: tuple[str, ...] = ()) -> str:
    """An indented tree: ``#id kind name Nms k=v ... -> #target{k=v}`` per span.

    Roots and siblings are ordered by id; spans whose parent is missing are
    shown as roots with ``^#parent``.
    """
    spans = sorted(spans, key=lambda s: s.span_id)
    ids = {s.span_id for s in spans}
    children: dict[int | None, list[Span]] = {}
    for s in spans:
        parent = s.parent_id if s.parent_id in ids else None
        children.setdefault(parent, []).append(s)
    lines: list[str] = []

    def render(s: Span, depth: int) -> None:
        parts = [f"#{s.span_id}", str(s.kind), s.name, f"{s.duration_ms}ms"]
        if s.parent_id is not None and s.parent_id not in ids:
            parts.append(f"^#{s.parent_id}")
        for key in sorted(s.metadata):
            if key not in skip_meta:
                parts.append(f"{key}={_value(s.metadata[key])}")
        for link in s.links:
            attrs = ",".join(f"{k}={v}" for k, v in link.attributes.items())
            parts.append(f"-> #{link.span_id}{{{attrs}}}")
        lines.append("  " * depth + " ".join(parts))
        for child in children.get(s.span_id, []):
            render(child, depth + 1)

    for root in children.get(None, []):
        render(root, 0)
    return "\n".join(lines)


def dedent_tree(text: str) -> str:
    """Strip the common indentation and surrounding blank lines of an expected tree."""
    import textwrap

    return textwrap.dedent(text).strip("\n")
