"""The causal tree as text: ``harn-trace summary``, ``run --summary`` and trace snapshots.

One renderer, two option sets (:class:`TreeStyle`):

* the **summary** (:func:`format_causal_summary`, :func:`print_causal_summary`)
  is for reading: per trace a header with the real elapsed time (first start
  to last end) and the token/cost total, then one line per span with its
  duration, metadata inline, and the subtree's token/cost total on spans
  that are not LLM calls themselves;
* the **snapshot** style (the pytest plugin's ``trace_snapshot`` goldens) is
  for diffs: ``#id`` on each span (so a link reads ``link -> #3``), start
  offsets, and metadata, links and events each on their own line, so any
  change shows as a changed line; timings only for spans timed by a mock
  clock, since real times are never reproducible; no header.

Both print the same tree in the same order (see ``causal.py``): children in
start order, a detached span under the span it links to, marked
``↪ <relation>``. Plain text indents two spaces per level; on a terminal,
:func:`print_causal_summary` draws tree lines and colour with ``rich``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TextIO, final

from ..model import Span
from ._encoding import json_safe, terminal_text, text_of, write_terminal
from ._serde_text import serde_json_text
from .causal import CausalTree, UsageTotals, causal_tree

__all__ = (
    "RICH_LIMIT",
    "TreeLine",
    "TreeStyle",
    "format_causal_summary",
    "print_causal_summary",
    "render_tree_lines",
)

_NS_PER_MS: Final = 1_000_000
# rich lays out a tree at roughly 0.1 ms per node: past this many spans the
# terminal gets the plain text at once instead of seconds of drawing.
RICH_LIMIT: Final = 5_000


@final
@dataclass(frozen=True, slots=True)
class TreeStyle:
    """What the renderer prints (see the module doc for the two presets).

    Example:
        >>> TreeStyle.SNAPSHOT.ids, TreeStyle.SUMMARY.ids
        (True, False)
    """

    ids: bool
    header: bool
    details: bool
    totals: bool
    timed: Callable[[Span], bool]

    SUMMARY: ClassVar[TreeStyle]  # the presets, set below the class
    SNAPSHOT: ClassVar[TreeStyle]


def _always(span: Span) -> bool:
    return True


TreeStyle.SUMMARY = TreeStyle(ids=False, header=True, details=False, totals=True, timed=_always)
TreeStyle.SNAPSHOT = TreeStyle(ids=True, header=False, details=True, totals=False, timed=_always)


def _value(value: Any) -> str:
    # The exporters' encoding rule: any value, one spelling, never an error.
    return serde_json_text(json_safe(value))


def _pairs(values: dict[str, Any]) -> str:
    keyed = sorted(((text_of(key), value) for key, value in values.items()), key=_first)
    return ", ".join(f"{key}={_value(value)}" for key, value in keyed)


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _money(cost: float) -> str:
    # Sums of float costs pick up noise digits (0.1 + 0.2); ten decimals is
    # below any real price and keeps the seed's number style.
    return "$" + serde_json_text(round(cost, 10))


def _usage_text(usage: UsageTotals) -> str:
    parts = [f"{usage.tokens} tokens"]
    if usage.cost_usd:
        parts.append(_money(usage.cost_usd))
    return ", ".join(parts)


@final
@dataclass(frozen=True, slots=True)
class TreeLine:
    """One printed span: its depth, the ``↪ relation`` marker (or ""), the label, detail lines."""

    depth: int
    marker: str
    label: str
    details: tuple[str, ...]
    kind: str


def _label(
    span: Span, tree: CausalTree, i: int, style: TreeStyle, usage: UsageTotals | None
) -> str:
    text = f"#{span.span_id} " if style.ids else ""
    text += f"{span.kind.value} {span.name}"
    if style.ids:
        if style.timed(span):
            # Offsets from the collector's epoch, as the span records them.
            text += f" @{span.start_ms}ms +{span.duration_ms}ms"
    else:
        text += f" {span.duration_ms}ms"
        if span._metadata:
            text += f" ({_pairs(span._metadata)})"
    if usage and span.kind.value != "llm_call":
        text += f" [{_usage_text(usage)}]"
    if tree.missing_parent[i]:
        text += f" (parent #{span.parent_id} missing)"
    return text


def _details(span: Span, trace_id: str, style: TreeStyle) -> tuple[str, ...]:
    if not style.details:
        return ()
    lines: list[str] = []
    if span._metadata:
        lines.append(f"meta: {_pairs(span._metadata)}")
    for link in span._links or ():
        here = link.trace_id == trace_id
        target = f"#{link.span_id}" if here else f"{link.trace_id}#{link.span_id}"
        suffix = f" ({_pairs(dict(link.attributes))})" if link.attributes else ""
        lines.append(f"link -> {target}{suffix}")
    for event in span._events or ():
        suffix = f" ({_pairs(event.attributes)})" if event.attributes else ""
        when = f"+{event.offset_ms}ms " if style.timed(span) else ""
        lines.append(f"event {when}{event.name}{suffix}")
    return tuple(lines)


def render_tree_lines(
    spans: Sequence[Span], style: TreeStyle
) -> Iterator[tuple[str, str | TreeLine]]:
    """The renderer: yields ``("header", text)``, ``("blank", "")`` and ``("span", TreeLine)``.

    Every output format (plain summary, terminal tree, snapshot) is laid out
    from this one stream.

    Example:
        >>> [kind for kind, _ in render_tree_lines([], TreeStyle.SUMMARY)]
        []
    """
    tree = causal_tree(spans)
    totals = tree.totals() if style.totals or style.header else None
    for number, trace_id in enumerate(tree.roots):
        if number:
            yield "blank", ""
        if style.header and totals is not None:
            count = tree.span_count(trace_id)
            elapsed = tree.elapsed_ns(trace_id) // _NS_PER_MS
            head = f"Trace {trace_id}: {count} span{'s' if count != 1 else ''}, {elapsed}ms elapsed"
            trace_usage = tree.trace_totals(trace_id, totals)
            if trace_usage:
                head += f", {trace_usage.llm_calls} LLM calls, {_usage_text(trace_usage)}"
            yield "header", head
            yield "blank", ""
        elif len(tree.roots) > 1:
            yield "header", f"trace {number + 1} of {len(tree.roots)}"
        for i, depth in tree.walk(trace_id):
            span = spans[i]
            relation = tree.relation[i]
            subtree = totals[i] if style.totals and totals is not None else None
            yield "span", TreeLine(
                depth,
                f"↪ {relation} " if relation is not None else "",
                _label(span, tree, i, style, subtree),
                _details(span, trace_id, style),
                span.kind.value,
            )


def format_causal_summary(spans: Sequence[Span], *, style: TreeStyle | None = None) -> str:
    """The causal tree as plain text, two spaces per level, ending in a newline.

    Example:
        >>> from harn_async_trace import MockClock, SpanCollector, SpanLink, install_override
        >>> clock = MockClock()
        >>> with install_override(clock):
        ...     c = SpanCollector(); c.adopt_trace("trace_demo")
        ...     fan = c.start("parallel", "fan")
        ...     link = SpanLink("trace_demo", str(fan), {"relation": "spawned_from"})
        ...     branch = c.start_detached_with_links("spawn", "b0", [link])
        ...     clock.advance(0.040)
        ...     _ = c.end(branch); _ = c.end(fan)
        >>> print(format_causal_summary(c.spans()), end="")
        Trace trace_demo: 2 spans, 40ms elapsed
        <BLANKLINE>
        parallel fan 40ms
          ↪ spawned_from spawn b0 40ms
    """
    if not spans:
        return "No spans recorded.\n" if style is None or style.header else "(no spans)\n"
    style = style or TreeStyle.SUMMARY
    out: list[str] = []
    for _kind, item in render_tree_lines(spans, style):
        if isinstance(item, TreeLine):
            pad = "  " * item.depth
            out.append(f"{pad}{item.marker}{item.label}")
            out.extend(f"{pad}    {detail}" for detail in item.details)
        else:
            out.append(item)
    return "\n".join(out) + "\n"


_KIND_STYLE: Final = {
    "pipeline": "bold",
    "llm_call": "magenta",
    "tool_call": "cyan",
    "parallel": "yellow",
    "spawn": "yellow",
    "pool_submit": "blue",
    "pool_dequeue": "blue",
    "channel_emit": "green",
    "channel_match": "green",
}


def print_causal_summary(
    spans: Sequence[Span], file: TextIO | None = None, *, color: bool | None = None
) -> None:
    """Print the summary: a ``rich`` tree in colour on a terminal, else the plain text.

    ``color=None`` decides by ``file.isatty()``; control characters and lone
    surrogates in span text are escaped (``\\x1b``) either way, so the text
    never drives a terminal and never fails on a strict encoding. Traces of
    more than ``RICH_LIMIT`` (5,000) spans get the plain text even on a
    terminal, which prints at once.

    Example:
        >>> import io
        >>> buf = io.StringIO(); print_causal_summary([], buf); buf.getvalue()
        'No spans recorded.\\n'
    """
    out = file if file is not None else sys.stdout
    if color is None:
        isatty = getattr(out, "isatty", None)
        color = bool(isatty and isatty())
    if not color or not spans or len(spans) > RICH_LIMIT:
        write_terminal(out, format_causal_summary(spans))
        return
    from rich.console import Console
    from rich.text import Text
    from rich.tree import Tree

    console = Console(file=out, force_terminal=True, highlight=False)
    trees: list[Tree] = []
    stack: list[Tree] = []

    def flush() -> None:
        for node in trees:
            console.print(node)
        trees.clear()

    for kind, item in render_tree_lines(spans, TreeStyle.SUMMARY):
        if not isinstance(item, TreeLine):
            if kind == "header":
                flush()
                console.print(Text(terminal_text(item), style="bold"))
            elif not trees:
                console.print()
            continue
        label = Text()
        if item.marker:
            label.append(item.marker, style="dim italic")
        label.append(terminal_text(item.label), style=_KIND_STYLE.get(item.kind, ""))
        del stack[item.depth :]
        node = stack[-1].add(label) if stack else Tree(label, guide_style="dim")
        if not stack:
            trees.append(node)
        stack.append(node)
    flush()
