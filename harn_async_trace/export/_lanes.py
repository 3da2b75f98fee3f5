"""Lanes for the Chrome exporter: one per task, from the span tree in O(n).

Every root (a detached span such as ``spawn``/``pool_dequeue``, or a span
whose parent is missing) starts a *group*, which stands for one task, and
its descendants share the group's lane. When the spans carry the task lane
the collector recorded (``Span.lane``, non-zero), a child recorded in
another lane than its parent's starts a group of its own too, so a lane
never mixes two recorded tasks (spans read from files without lanes fall
back to the tree alone; with today's collector a child always records its
parent's lane, so both agree). A child that would break the strict nesting
Chrome's "complete" events need on one lane - it overlaps an earlier sibling
on that lane (plain ``gather`` of children under one parent) or sticks out
of its parent - is *spilled*: it starts a group of its own. Each group gets its own lane, or with
``reuse=True`` the lowest lane that is free again by the group's start (like
worker threads), which keeps huge fan-outs readable.

Memory is a handful of int arrays (``array('q')``), never a copy of the
spans; the only sorts are of each span's children and of the groups.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Sequence
from typing import Final

from ..model import Span

__all__ = ("LaneLayout", "layout_lanes")

_DENSE_SLACK: Final = 4


class _IdIndex:
    """(trace, span id) -> position in the span list: arrays for dense ids, else dicts."""

    __slots__ = ("_maps", "trace_of", "traces")

    def __init__(self, spans: Sequence[Span]) -> None:
        self.traces: dict[str, int] = {}
        n = len(spans)
        self.trace_of = array("q", bytes(8 * n))
        max_ids: list[int] = []
        for i, span in enumerate(spans):
            t = self.traces.get(span.trace_id)
            if t is None:
                t = self.traces[span.trace_id] = len(max_ids)
                max_ids.append(0)
            self.trace_of[i] = t
            if span.span_id > max_ids[t]:
                max_ids[t] = span.span_id
        # Collector ids are sequential from 1, so a flat array is the common case.
        self._maps: list[array[int] | dict[int, int]] = [
            array("q", [-1]) * (top + 1) if top <= _DENSE_SLACK * n + 1024 else {}
            for top in max_ids
        ]
        for i, span in enumerate(spans):
            index = self._maps[self.trace_of[i]]
            if span.span_id >= 0:
                index[span.span_id] = i

    def find(self, trace: int | None, span_id: int) -> int:
        if trace is None or span_id < 0:
            return -1
        index = self._maps[trace]
        if isinstance(index, dict):
            return index.get(span_id, -1)
        return index[span_id] if span_id < len(index) else -1


class LaneLayout:
    """Result of :func:`layout_lanes`: a lane and process number per span, plus lane names."""

    __slots__ = ("id_index", "lane", "lane_names", "pid")

    def __init__(
        self, id_index: _IdIndex, lane: array[int], lane_names: dict[tuple[int, int], str]
    ) -> None:
        self.id_index = id_index
        self.lane = lane
        self.lane_names = lane_names
        self.pid = id_index.trace_of  # one process per trace (0-based)

    def find(self, trace_id: str, span_id: str | int) -> int:
        """Position of a span (e.g. a link target) in the list, or -1."""
        try:
            number = int(span_id)
        except ValueError:
            return -1
        return self.id_index.find(self.id_index.traces.get(trace_id), number)


def layout_lanes(spans: Sequence[Span], *, reuse: bool = False) -> LaneLayout:
    """Assign every span a lane so each lane's spans nest strictly (see module doc).

    Example:
        >>> layout_lanes([]).lane.tolist()
        []
    """
    n = len(spans)
    ids = _IdIndex(spans)
    starts = array("q", (s.start_ns for s in spans))
    ends = array("q", (s.start_ns + s.duration_ns for s in spans))
    parent = array("q", [-1]) * n
    offsets = array("q", bytes(8 * (n + 1)))
    find, trace_of = ids.find, ids.trace_of
    for i, span in enumerate(spans):
        parent_id = span.parent_id
        if parent_id is not None:
            p = find(trace_of[i], parent_id)
            if p >= 0 and p != i:
                parent[i] = p
                offsets[p + 1] += 1
    for i in range(n):
        offsets[i + 1] += offsets[i]
    children = array("q", bytes(8 * offsets[n]))
    cursor = array("q", offsets)
    for i in range(n):
        p = parent[i]
        if p >= 0:
            children[cursor[p]] = i
            cursor[p] += 1
    del cursor

    group_of = array("q", [-1]) * n
    group_roots: list[int] = []
    recorded = n > 0 and all(s.lane for s in spans)
    task = array("q", (s.lane for s in spans)) if recorded else None

    def grow(root: int) -> None:
        pending = [root]
        while pending:
            top = pending.pop()
            if group_of[top] >= 0:
                continue  # only reachable through malformed (cyclic) parent ids
            group = len(group_roots)
            group_roots.append(top)
            stack = [top]
            while stack:
                s = stack.pop()
                if group_of[s] >= 0:
                    continue
                group_of[s] = group
                lo, hi = offsets[s], offsets[s + 1]
                if lo == hi:
                    continue
                s_start, s_end = starts[s], ends[s]
                same = task[s] if task is not None else 0
                if hi - lo == 1:  # the common case: no sort, no overlap possible
                    c = children[lo]
                    if starts[c] >= s_start and ends[c] <= s_end and (
                        task is None or task[c] == same
                    ):
                        stack.append(c)
                    else:
                        pending.append(c)
                    continue
                kids = sorted(children[lo:hi], key=lambda c: (starts[c], ends[c]))
                last_end = s_start
                for c in kids:
                    if task is not None and task[c] != same:
                        pending.append(c)
                    elif starts[c] >= last_end and ends[c] <= s_end and starts[c] >= s_start:
                        stack.append(c)
                        last_end = ends[c]
                    else:
                        pending.append(c)

    for i in range(n):
        if parent[i] < 0:
            grow(i)
    for i in range(n):
        if group_of[i] < 0:
            grow(i)  # a cycle in malformed input: still give every span a lane

    root_starts = array("q", (starts[r] for r in group_roots))
    if len(ids.traces) == 1:
        order = sorted(range(len(group_roots)), key=root_starts.__getitem__)  # stable: ties by g
    else:
        order = sorted(
            range(len(group_roots)), key=lambda g: (trace_of[group_roots[g]], root_starts[g])
        )
    group_lane = array("q", bytes(8 * len(group_roots)))
    lane_names: dict[tuple[int, int], str] = {}
    free: dict[int, list[tuple[int, int]]] = {}  # trace -> heap of (free_at_ns, lane)
    used: dict[int, int] = {}  # trace -> lanes used so far
    for g in order:
        root = group_roots[g]
        trace = ids.trace_of[root]
        heap = free.setdefault(trace, [])
        if reuse and heap and heap[0][0] <= starts[root]:
            lane = heapq.heappop(heap)[1]
        else:
            lane = used.get(trace, 0) + 1
            used[trace] = lane
        if reuse:
            heapq.heappush(heap, (ends[root], lane))
        group_lane[g] = lane
        lane_names.setdefault((trace, lane), f"{spans[root].kind.value} {spans[root].name}")
    lanes = array("q", (group_lane[g] for g in group_of))
    return LaneLayout(ids, lanes, lane_names)
