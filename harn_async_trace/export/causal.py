"""The causal tree of a trace, and token/cost totals per subtree that count work once.

A plain parent tree hides causality: a ``spawn`` task, a parallel branch or a
pool job opens a *detached* span (no parent) that links back to the span that
started it, so in the parent tree it is an unrelated root. The causal tree
puts such a span under the span it links to (``relation`` records why, e.g.
``branch_of``), so every span has exactly one place:

* a span with a parent in the trace sits under its parent;
* a span with no parent sits under the first span of *its own trace* that one
  of its links names, marked with that link's ``relation``;
* anything else is a root (``missing_parent`` tells when a parent id was
  given but is not in the trace).

Children and roots are in start order (then span id). Traces are grouped by
trace id, in order of their first start. Spans are keyed by
``(trace_id, span_id)``; when two spans share a key, the first one is the
target of parent ids and links. A cycle in malformed input (two spans naming
each other as parent, or detached spans linked in a ring) is broken by making
the span where the walk closes the loop a root, so each span is placed once
and the build stays O(n) plus the per-parent sorts.

Because each span has exactly one place, :meth:`CausalTree.totals` (tokens
and cost summed over a subtree) counts linked detached work once, under the
span that started it, never also under a second parent.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, final

from ..kinds import SpanKind, meta
from ..model import Span

__all__ = ("CausalTree", "UsageTotals", "causal_tree", "span_usage")

_DONE: Final = 2
_ON_PATH: Final = 1


@final
@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Tokens and cost of LLM calls, summed (see :meth:`CausalTree.totals`).

    Example:
        >>> UsageTotals(1, 10, 5, 0.25).tokens
        15
    """

    llm_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __bool__(self) -> bool:
        return bool(self.llm_calls or self.input_tokens or self.output_tokens or self.cost_usd)


_NONE: Final = UsageTotals()
_ONE_CALL: Final = UsageTotals(llm_calls=1)


def _count(value: Any) -> int:
    # bool is an int; a flag set to True must not count as one token.
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def span_usage(span: Span) -> UsageTotals:
    """The span's own usage from its metadata (``input_tokens``, ``output_tokens``, ``cost_usd``).

    Values that are not non-negative numbers are ignored, so bad metadata
    never breaks a total.

    Example:
        >>> s = Span(trace_id="t", span_id=1, parent_id=None, kind="llm_call", name="m",
        ...          start_ms=0, start_unix_ms=0, duration_ms=1,
        ...          metadata={"input_tokens": 3, "output_tokens": 4, "cost_usd": 0.5})
        >>> span_usage(s)
        UsageTotals(llm_calls=1, input_tokens=3, output_tokens=4, cost_usd=0.5)
    """
    metadata = span._metadata
    is_llm = span.kind is SpanKind.LLM_CALL
    if not metadata:
        return _ONE_CALL if is_llm else _NONE
    if not is_llm and (
        meta.INPUT_TOKENS not in metadata
        and meta.OUTPUT_TOKENS not in metadata
        and meta.COST_USD not in metadata
    ):
        return _NONE  # the common case (a status, a tool name): nothing to count
    cost = metadata.get(meta.COST_USD)
    if not (isinstance(cost, int | float) and not isinstance(cost, bool)):
        cost = 0.0
    elif not math.isfinite(cost) or cost < 0:
        cost = 0.0
    return UsageTotals(
        1 if is_llm else 0,
        _count(metadata.get(meta.INPUT_TOKENS)),
        _count(metadata.get(meta.OUTPUT_TOKENS)),
        float(cost),
    )


@final
class CausalTree:
    """Spans placed in their causal tree; built by :func:`causal_tree`.

    Positions are indexes into ``spans``. ``roots[trace_id]`` lists a trace's
    roots, ``children(i)`` a span's children (both in start order),
    ``parent[i]`` is the causal parent or -1, ``relation[i]`` the link
    relation that placed a detached span (None otherwise), and
    ``missing_parent[i]`` is True for a root whose parent id is not in the trace.
    """

    __slots__ = ("_kids", "_stats", "missing_parent", "parent", "relation", "roots", "spans")

    def __init__(
        self,
        spans: Sequence[Span],
        parent: array[int],
        relation: list[str | None],
        missing_parent: list[bool],
    ) -> None:
        self.spans = spans
        self.parent = parent
        self.relation = relation
        self.missing_parent = missing_parent
        n = len(spans)
        kids: list[list[int] | None] = [None] * n
        top: dict[str, list[int]] = {}
        for i in range(n):
            p = parent[i]
            if p < 0:
                top.setdefault(spans[i].trace_id, []).append(i)
            else:
                bucket = kids[p]
                if bucket is None:
                    kids[p] = [i]
                else:
                    bucket.append(i)

        def order(i: int) -> tuple[int, int]:
            return (spans[i].start_ns, spans[i].span_id)

        for bucket in kids:
            if bucket is not None and len(bucket) > 1:
                bucket.sort(key=order)
        for items in top.values():
            items.sort(key=order)
        self._kids = kids
        self._stats: dict[str, list[int]] | None = None
        self.roots: dict[str, list[int]] = dict(
            sorted(top.items(), key=lambda item: spans[item[1][0]].start_ns)
        )

    def children(self, i: int) -> list[int]:
        """Positions of span ``i``'s causal children, in start order."""
        return self._kids[i] or []

    def walk(self, trace_id: str) -> Iterator[tuple[int, int]]:
        """Yield ``(position, depth)`` depth first, in print order, for one trace.

        Iterative, so a trace nested 100k deep does not hit the recursion limit.
        """
        stack = [(i, 0) for i in reversed(self.roots.get(trace_id, ()))]
        kids = self._kids
        while stack:
            i, depth = stack.pop()
            yield i, depth
            bucket = kids[i]
            if bucket:
                stack.extend((k, depth + 1) for k in reversed(bucket))

    def _trace_stats(self) -> dict[str, list[int]]:
        # trace id -> [span count, first start, last end], in one pass (a span
        # is only ever placed in its own trace, so no walk is needed).
        stats = self._stats
        if stats is None:
            stats = self._stats = {}
            for span in self.spans:
                start = span.start_ns
                end = start + span.duration_ns
                row = stats.get(span.trace_id)
                if row is None:
                    stats[span.trace_id] = [1, start, end]
                else:
                    row[0] += 1
                    if start < row[1]:
                        row[1] = start
                    if end > row[2]:
                        row[2] = end
        return stats

    def elapsed_ns(self, trace_id: str) -> int:
        """Real elapsed time of a trace: its first start to its last end (0 if unknown)."""
        row = self._trace_stats().get(trace_id)
        return 0 if row is None else row[2] - row[1]

    def span_count(self, trace_id: str) -> int:
        """How many spans the trace has."""
        row = self._trace_stats().get(trace_id)
        return 0 if row is None else row[0]

    def totals(self) -> list[UsageTotals]:
        """Usage of each span's causal subtree (itself included), by position.

        Each span is in exactly one subtree chain, so a branch's tokens count
        once: under the branch and the span that started it, never twice.

        Example:
            >>> causal_tree([]).totals()
            []
        """
        n = len(self.spans)
        calls = array("q", bytes(8 * n))
        tokens_in = array("q", bytes(8 * n))
        tokens_out = array("q", bytes(8 * n))
        cost = array("d", bytes(8 * n))
        for i, span in enumerate(self.spans):
            own = span_usage(span)
            if own is not _NONE:
                calls[i], cost[i] = own.llm_calls, own.cost_usd
                tokens_in[i], tokens_out[i] = own.input_tokens, own.output_tokens
        order = [i for trace in self.roots for i, _ in self.walk(trace)]
        parent = self.parent
        for i in reversed(order):  # children before parents
            p = parent[i]
            if p >= 0 and (calls[i] or tokens_in[i] or tokens_out[i] or cost[i]):
                calls[p] += calls[i]
                tokens_in[p] += tokens_in[i]
                tokens_out[p] += tokens_out[i]
                cost[p] += cost[i]
        return [
            UsageTotals(calls[i], tokens_in[i], tokens_out[i], cost[i])
            if calls[i] or tokens_in[i] or tokens_out[i] or cost[i] else _NONE
            for i in range(n)
        ]

    def trace_totals(self, trace_id: str, totals: Sequence[UsageTotals]) -> UsageTotals:
        """The sum of a trace's root subtrees (``totals`` from :meth:`totals`)."""
        roots = [totals[i] for i in self.roots.get(trace_id, ())]
        return UsageTotals(
            sum(t.llm_calls for t in roots),
            sum(t.input_tokens for t in roots),
            sum(t.output_tokens for t in roots),
            sum(t.cost_usd for t in roots),
        )


def _link_target(span: Span, find: dict[tuple[str, int], int]) -> tuple[int, str] | None:
    for link in span._links or ():
        if link.trace_id != span.trace_id:
            continue  # placement stays inside one trace
        try:
            target = find.get((link.trace_id, int(link.span_id)), -1)
        except (TypeError, ValueError):
            continue
        if target >= 0:
            relation = link.attributes.get("relation") if link.attributes else None
            return target, str(relation) if relation is not None else "link"
    return None


def causal_tree(spans: Sequence[Span]) -> CausalTree:
    """Place every span in its causal tree (see the module doc for the rules).

    Example:
        >>> from harn_async_trace import SpanCollector, SpanLink
        >>> c = SpanCollector()
        >>> root = c.start("parallel", "fan")
        >>> link = SpanLink(c.trace_id, str(root), {"relation": "branch_of"})
        >>> _ = c.end(c.start_detached_with_links("spawn", "b0", [link])); _ = c.end(root)
        >>> tree = causal_tree(c.spans())
        >>> [(tree.spans[i].name, d, tree.relation[i]) for i, d in tree.walk(c.trace_id)]
        [('fan', 0, None), ('b0', 1, 'branch_of')]
    """
    n = len(spans)
    find: dict[tuple[str, int], int] = {}
    for i, span in enumerate(spans):
        find.setdefault((span.trace_id, span.span_id), i)
    parent = array("q", [-1]) * n
    relation: list[str | None] = [None] * n
    missing = [False] * n
    for i, span in enumerate(spans):
        parent_id = span.parent_id
        if parent_id is not None:
            p = find.get((span.trace_id, parent_id), -1)
            if p >= 0 and p != i:
                parent[i] = p
            else:
                missing[i] = p < 0
        elif span._links:
            target = _link_target(span, find)
            if target is not None and target[0] != i:
                parent[i], relation[i] = target
    _break_cycles(parent, relation)
    return CausalTree(spans, parent, relation, missing)


def _break_cycles(parent: array[int], relation: list[str | None]) -> None:
    # Walk each span's parent chain once; a chain that comes back to a span
    # still on the current path is a cycle, cut at the span that closes it.
    state = bytearray(len(parent))
    for start in range(len(parent)):
        path: list[int] = []
        i = start
        while i >= 0 and state[i] == 0:
            state[i] = _ON_PATH
            path.append(i)
            p = parent[i]
            if p >= 0 and state[p] == _ON_PATH:
                parent[i] = -1
                relation[i] = None
                break
            i = p
        for j in path:
            state[j] = _DONE
