"""The data layer of the HTML viewer: spans as compact columns, laid out in lanes and rows.

The page gets one JSON object (``viewer_payload``) and does no layout of its
own beyond culling: every span already has a lane (one per task, from the
Chrome exporter's lane layout) and a row inside its lane (its depth among
spans of the same lane, pushed down when it would overlap a span already on
that row). Per-span columns are plain int arrays and names go through a
string table, so 100k spans stay a few MB of JSON. Details (metadata,
events, links) are kept only for spans that have any.

Metadata values are made JSON-safe here: non-finite floats, bytes, sets,
cycles and arbitrary objects become strings or lists, lone surrogates are
escaped by the ASCII-only encoder, and ``</`` is escaped so the JSON cannot
end its ``<script>`` element early.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any, Final

from ...model import Span
from .._lanes import layout_lanes
from ..causal import causal_tree

__all__ = ("safe_value", "viewer_json", "viewer_payload")

_MAX_DEPTH: Final = 32
_PLAIN: Final = frozenset({str, int, bool})
_WAIT_KEYS: Final = ("queue_wait_ms", "queue_dwell_ms")
# A row search longer than this means a huge fan-out on one lane: give the
# span a fresh row instead of scanning every row (keeps layout O(n)).
_ROW_SCAN: Final = 64


def safe_value(value: Any, _seen: frozenset[int] = frozenset(), _depth: int = 0) -> Any:
    """``value`` as plain JSON data that ``json.dumps(..., allow_nan=False)`` accepts.

    Example:
        >>> safe_value({"x": float("nan"), "b": b"\\x00", 1: (2, {3})})
        {'x': 'nan', 'b': "b'\\\\x00'", '1': [2, [3]]}
    """
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if _depth >= _MAX_DEPTH or id(value) in _seen:
        return "<cycle>" if id(value) in _seen else "<too deep>"
    if type(value) is dict and all(
        type(k) is str and (v is None or type(v) in _PLAIN) for k, v in value.items()
    ):
        return value  # the common case: flat metadata of plain values, nothing to convert
    seen = _seen | {id(value)}
    try:
        if isinstance(value, dict):
            return {str(k): safe_value(v, seen, _depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
            return [safe_value(v, seen, _depth + 1) for v in items]
        return repr(value)
    except Exception:  # a hostile __repr__ or __iter__ must not break the export
        return f"<unprintable {type(value).__name__}>"


def _rows(spans: Sequence[Span], lane_of: list[int], parent: list[int]) -> list[int]:
    # Parents before children: a parent starts no later and ends no earlier.
    order = sorted(
        range(len(spans)),
        key=lambda i: (spans[i].start_ns, -spans[i].duration_ns, spans[i].span_id),
    )
    row = [0] * len(spans)
    row_ends: dict[int, list[int]] = {}
    for i in order:
        span = spans[i]
        lane = lane_of[i]
        ends = row_ends.setdefault(lane, [])
        p = parent[i]
        r = row[p] + 1 if p >= 0 and lane_of[p] == lane else 0
        start = span.start_ns
        limit = r + _ROW_SCAN
        while r < len(ends) and ends[r] > start and r < limit:
            r += 1
        if r < len(ends) and ends[r] > start:
            r = len(ends)
        while len(ends) <= r:
            ends.append(start)
        ends[r] = max(start + span.duration_ns, start)
        row[i] = r
    return row


def viewer_payload(spans: Sequence[Span], *, title: str = "trace") -> dict[str, Any]:
    """The JSON object the viewer page reads (see the module doc).

    Example:
        >>> viewer_payload([])["count"]
        0
    """
    n = len(spans)
    tree = causal_tree(spans)
    totals = tree.totals()
    layout = layout_lanes(spans)
    # A lane per task: the lane the collector recorded when every span has
    # one (overlapping spans of one task then share the lane on separate
    # rows), else the Chrome exporter's lanes rebuilt from the tree.
    recorded = n > 0 and all(s.lane for s in spans)
    lane_key = [
        (layout.pid[i], spans[i].lane if recorded else layout.lane[i]) for i in range(n)
    ]
    keys = sorted(set(lane_key))
    key_index = {k: j for j, k in enumerate(keys)}
    lane_of = [key_index[k] for k in lane_key]
    parent = [layout.find(s.trace_id, s.parent_id) if s.parent_id is not None else -1
              for s in spans]  # fmt: skip
    rows = _rows(spans, lane_of, parent)

    base = min((s.start_unix_ns for s in spans), default=0)
    # lane -> (earliest start, lowest span id, position): its first span names it
    first: dict[int, tuple[int, int, int]] = {}
    depth: dict[int, int] = {}
    for i, span in enumerate(spans):
        lane = lane_of[i]
        here = (span.start_unix_ns, span.span_id, i)
        if lane not in first or here < first[lane]:
            first[lane] = here
        depth[lane] = max(depth.get(lane, 0), rows[i] + 1)
    trace_ids = list(tree.roots)
    trace_index = {t: j for j, t in enumerate(trace_ids)}
    trace_of_lane = {lane_of[i]: trace_index[s.trace_id] for i, s in enumerate(spans)}
    lane_order = sorted(first, key=lambda lane: (trace_of_lane[lane], first[lane], lane))
    lanes: list[dict[str, Any]] = []
    row0: dict[int, int] = {}
    next_row = 0
    for lane in lane_order:
        row0[lane] = next_row
        head = spans[first[lane][2]]
        lanes.append({
            "name": f"{head.kind.value} {head.name}",
            "trace": trace_of_lane[lane], "row0": next_row, "rows": depth[lane],
        })  # fmt: skip
        next_row += depth[lane]

    names: dict[str, int] = {}
    kinds: dict[str, int] = {}

    def intern(table: dict[str, int], text: str) -> int:
        j = table.get(text)
        if j is None:
            j = table[text] = len(table)
        return j

    columns: dict[str, list[int]] = {
        key: [0] * n for key in ("id", "trace", "parent", "kind", "name", "start", "dur", "row")
    }
    details: dict[str, Any] = {}
    usage: dict[str, list[float]] = {}
    links: list[list[Any]] = []
    for i, span in enumerate(spans):
        columns["id"][i] = span.span_id
        columns["trace"][i] = trace_index[span.trace_id]
        columns["parent"][i] = parent[i]
        columns["kind"][i] = intern(kinds, span.kind.value)
        columns["name"][i] = intern(names, span.name)
        columns["start"][i] = span.start_unix_ns - base
        columns["dur"][i] = span.duration_ns
        columns["row"][i] = row0[lane_of[i]] + rows[i]
        detail: dict[str, Any] = {}
        if span._metadata:
            detail["meta"] = safe_value(span._metadata)
            wait = next((span._metadata[k] for k in _WAIT_KEYS if k in span._metadata), None)
            if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > 0:
                detail["wait_ns"] = int(min(wait, 1e15) * 1_000_000)
            if span._metadata.get("error") is not None or span._metadata.get("status") == "error":
                detail["error"] = True
        if span._events:
            detail["events"] = [
                {"name": e.name, "offset_ms": e.offset_ms, "attributes": safe_value(e.attributes)}
                for e in span._events
            ]
        if span._links:
            detail["links"] = [
                {"trace_id": ln.trace_id, "span_id": ln.span_id,
                 "attributes": safe_value(dict(ln.attributes))}
                for ln in span._links
            ]  # fmt: skip
            for ln in span._links:
                source = layout.find(ln.trace_id, ln.span_id)
                if source >= 0 and source != i:
                    relation = ln.attributes.get("relation", "link") if ln.attributes else "link"
                    links.append([source, i, str(relation)])
        if tree.relation[i] is not None:
            detail["relation"] = tree.relation[i]
        if detail:
            details[str(i)] = detail
        total = totals[i]
        if total:
            usage[str(i)] = [total.llm_calls, total.input_tokens, total.output_tokens,
                             round(total.cost_usd, 10)]  # fmt: skip

    traces = []
    for trace_id in trace_ids:
        trace_total = tree.trace_totals(trace_id, totals)
        roots = tree.roots[trace_id]
        traces.append({
            "id": trace_id,
            "spans": tree.span_count(trace_id),
            "start": min(spans[i].start_unix_ns for i in roots) - base,
            "elapsed": tree.elapsed_ns(trace_id),
            "usage": [trace_total.llm_calls, trace_total.input_tokens,
                      trace_total.output_tokens, round(trace_total.cost_usd, 10)],
        })  # fmt: skip
    return {
        "version": 1,
        "title": title,
        "count": n,
        "base_unix_ns": base,
        "traces": traces,
        "kinds": list(kinds),
        "names": list(names),
        "lanes": lanes,
        "rows": next_row,
        "span": columns,
        "detail": details,
        "usage": usage,
        "links": links,
    }


def viewer_json(spans: Sequence[Span], *, title: str = "trace") -> str:
    """:func:`viewer_payload` as JSON text that is safe inside a ``<script>`` element.

    Example:
        >>> "</" in viewer_json([], title="</script>")
        False
    """
    text = json.dumps(
        viewer_payload(spans, title=title), ensure_ascii=True, allow_nan=False,
        separators=(",", ":"),
    )  # fmt: skip
    return text.replace("</", "<\\/")
