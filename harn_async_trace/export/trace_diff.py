"""Structural diff of two traces (``harn-trace diff A.jsonl B.jsonl``).

Spans are matched by their *path* in the causal tree (``causal.py``): the
kind and name of each span from the root down, so a parallel branch matches
the same branch of the other run even though it is a detached span. Siblings
with the same kind and name are told apart by their order of start
(``fn_call summarize#2`` is the second one). Trace ids and span ids play no
part, so two runs of one program compare cleanly.

The result lists spans only in A (removed), only in B (added; a whole added
subtree is reported once, at its top), and matched spans whose duration,
tokens or cost changed (each span's *own* tokens and cost, so one changed
LLM call is one line, not one per ancestor), plus the totals of both runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, final

from ..model import Span
from ._serde_text import serde_json_text
from .causal import UsageTotals, causal_tree, span_usage

__all__ = ("SpanChange", "TraceDiff", "diff_traces", "format_trace_diff")

_NS_PER_MS: Final = 1_000_000
Path = tuple[tuple[str, str, int], ...]


@final
@dataclass(frozen=True, slots=True)
class SpanChange:
    """A span present in both traces whose duration, tokens or cost differ."""

    path: Path
    duration_ns: tuple[int, int]
    tokens: tuple[int, int]
    cost_usd: tuple[float, float]


@final
@dataclass(frozen=True, slots=True)
class _Side:
    spans: int
    elapsed_ns: int
    usage: UsageTotals


@final
@dataclass(frozen=True, slots=True)
class TraceDiff:
    """What :func:`diff_traces` found; ``equal`` is True when nothing differs.

    ``removed``/``added`` hold ``(path, spans in that subtree)`` for the top
    of each subtree only in A / only in B.
    """

    removed: list[tuple[Path, int]] = field(default_factory=list)
    added: list[tuple[Path, int]] = field(default_factory=list)
    changed: list[SpanChange] = field(default_factory=list)
    a: _Side = _Side(0, 0, UsageTotals())
    b: _Side = _Side(0, 0, UsageTotals())

    @property
    def equal(self) -> bool:
        """True when no span was added, removed or changed."""
        return not (self.removed or self.added or self.changed)


class _Paths:
    """Interned paths shared by both sides: the same path gets the same small int.

    A path is ``(parent path, kind, name, rank)``, so building one costs O(1)
    however deep the span sits (a tuple of the whole path would make a
    100k-deep trace quadratic).
    """

    __slots__ = ("ids", "parent", "step")

    def __init__(self) -> None:
        self.ids: dict[tuple[int, str, str, int], int] = {}
        self.parent: list[int] = []
        self.step: list[tuple[str, str, int]] = []

    def intern(self, parent: int, kind: str, name: str, rank: int) -> int:
        key = (parent, kind, name, rank)
        found = self.ids.get(key)
        if found is None:
            found = self.ids[key] = len(self.parent)
            self.parent.append(parent)
            self.step.append((kind, name, rank))
        return found

    def path(self, path_id: int) -> Path:
        steps = []
        while path_id >= 0:
            steps.append(self.step[path_id])
            path_id = self.parent[path_id]
        return tuple(reversed(steps))


def _index(spans: Sequence[Span], paths: _Paths) -> tuple[dict[int, int], dict[int, int], _Side]:
    """Path id -> position, path id -> subtree size, and the side's totals."""
    tree = causal_tree(spans)
    where: dict[int, int] = {}
    path_of = [-1] * len(spans)
    # Occurrences of each (kind, name) so far under each parent (-1: the roots);
    # the walk visits siblings in start order, so the count is the rank.
    seen: dict[int, dict[tuple[str, str], int]] = {}
    totals = tree.totals()
    usage, elapsed, order = UsageTotals(), 0, []
    for trace_id in tree.roots:
        elapsed = max(elapsed, tree.elapsed_ns(trace_id))
        t = tree.trace_totals(trace_id, totals)
        usage = UsageTotals(
            usage.llm_calls + t.llm_calls, usage.input_tokens + t.input_tokens,
            usage.output_tokens + t.output_tokens, usage.cost_usd + t.cost_usd,
        )  # fmt: skip
        for i, _depth in tree.walk(trace_id):
            order.append(i)
            span = spans[i]
            key = (span.kind.value, span.name)
            p = tree.parent[i]
            ranks = seen.setdefault(p, {})
            rank = ranks[key] = ranks.get(key, -1) + 1
            path_of[i] = paths.intern(path_of[p] if p >= 0 else -1, *key, rank)
            where.setdefault(path_of[i], i)
    size = [1] * len(spans)
    for i in reversed(order):  # children before parents
        p = tree.parent[i]
        if p >= 0:
            size[p] += size[i]
    sizes = {path_of[i]: size[i] for i in order}
    return where, sizes, _Side(len(order), elapsed, usage)


def diff_traces(a: Sequence[Span], b: Sequence[Span]) -> TraceDiff:
    """Compare two traces structurally (see the module doc).

    Example:
        >>> s = Span(trace_id="t", span_id=1, parent_id=None, kind="step", name="load",
        ...          start_ms=0, start_unix_ms=0, duration_ms=5)
        >>> diff_traces([s], [s]).equal
        True
        >>> diff_traces([s], []).removed
        [((('step', 'load', 0),), 1)]
    """
    paths = _Paths()
    where_a, sizes_a, side_a = _index(a, paths)
    where_b, sizes_b, side_b = _index(b, paths)
    parent = paths.parent

    def tops(mine: dict[int, int], sizes: dict[int, int], other: dict[int, int]
             ) -> list[tuple[Path, int]]:
        # The top of a subtree only on one side: its parent path is on both.
        return [(paths.path(p), sizes[p]) for p in mine
                if p not in other and (parent[p] < 0 or parent[p] in other)]  # fmt: skip

    changed = []
    for path_id, i in where_a.items():
        j = where_b.get(path_id)
        if j is None:
            continue
        sa, sb = a[i], b[j]
        if not (sa._metadata or sb._metadata):
            if sa.duration_ns != sb.duration_ns:
                changed.append(SpanChange(paths.path(path_id), (sa.duration_ns, sb.duration_ns),
                                          (0, 0), (0.0, 0.0)))  # fmt: skip
            continue
        ua, ub = span_usage(sa), span_usage(sb)
        same_usage = ua.tokens == ub.tokens and ua.cost_usd == ub.cost_usd
        if sa.duration_ns != sb.duration_ns or not same_usage:
            changed.append(SpanChange(
                paths.path(path_id), (sa.duration_ns, sb.duration_ns), (ua.tokens, ub.tokens),
                (ua.cost_usd, ub.cost_usd),
            ))  # fmt: skip
    return TraceDiff(
        tops(where_a, sizes_a, where_b), tops(where_b, sizes_b, where_a), changed, side_a, side_b
    )


def _path_text(path: Path) -> str:
    return " > ".join(f"{kind} {name}" + (f"#{k + 1}" if k else "") for kind, name, k in path)


def _ms(ns: int) -> str:
    ms = ns / _NS_PER_MS
    return f"{ms:.0f}ms" if ms == int(ms) or abs(ms) >= 10 else f"{ms:.3g}ms"


def _delta(before: float, after: float, unit: str) -> str:
    if unit == "ms":
        sign = "+" if after >= before else "-"
        return f"{_ms(int(before))} -> {_ms(int(after))} ({sign}{_ms(int(abs(after - before)))})"
    if unit == "$":
        change = round(after - before, 10)
        return (f"${serde_json_text(round(before, 10))} -> ${serde_json_text(round(after, 10))} "
                f"({'+' if change >= 0 else '-'}${serde_json_text(abs(change))})")  # fmt: skip
    return f"{before:.0f} -> {after:.0f} ({after - before:+.0f})"


def format_trace_diff(diff: TraceDiff, name_a: str = "A", name_b: str = "B") -> str:
    """The diff as text, one line per finding, ending in a newline.

    Example:
        >>> print(format_trace_diff(diff_traces([], [])), end="")
        --- A: 0 spans, 0ms elapsed
        +++ B: 0 spans, 0ms elapsed
        no differences
    """
    lines = []
    for mark, name, side in (("---", name_a, diff.a), ("+++", name_b, diff.b)):
        head = f"{mark} {name}: {side.spans} spans, {_ms(side.elapsed_ns)} elapsed"
        if side.usage:
            head += f", {side.usage.tokens} tokens"
            if side.usage.cost_usd:
                head += f", ${serde_json_text(round(side.usage.cost_usd, 10))}"
        lines.append(head)
    if diff.equal:
        lines.append("no differences")
        return "\n".join(lines) + "\n"
    for mark, items in (("-", diff.removed), ("+", diff.added)):
        for path, size in items:
            below = f" (and {size - 1} span{'s' if size != 2 else ''} under it)" if size > 1 else ""
            lines.append(f"{mark} {_path_text(path)}{below}")
    for change in diff.changed:
        parts = []
        if change.duration_ns[0] != change.duration_ns[1]:
            parts.append("duration " + _delta(*change.duration_ns, "ms"))
        if change.tokens[0] != change.tokens[1]:
            parts.append("tokens " + _delta(*change.tokens, ""))
        if change.cost_usd[0] != change.cost_usd[1]:
            parts.append("cost " + _delta(*change.cost_usd, "$"))
        lines.append(f"~ {_path_text(change.path)}: {', '.join(parts)}")
    totals = [f"spans {diff.a.spans} -> {diff.b.spans} ({diff.b.spans - diff.a.spans:+d})",
              "elapsed " + _delta(diff.a.elapsed_ns, diff.b.elapsed_ns, "ms"),
              "tokens " + _delta(diff.a.usage.tokens, diff.b.usage.tokens, "")]  # fmt: skip
    if diff.a.usage.cost_usd or diff.b.usage.cost_usd:
        totals.append("cost " + _delta(diff.a.usage.cost_usd, diff.b.usage.cost_usd, "$"))
    lines.append("total: " + ", ".join(totals))
    return "\n".join(lines) + "\n"
