"""Chrome trace event format (opens in Perfetto and chrome://tracing).

One process per trace, one lane (``tid``) per task (see ``_lanes.py`` for how
lanes are derived from the tree), one complete event (``ph: "X"``) per span,
an instant event (``ph: "i"``) per span event, and a flow arrow (``ph: "s"``
on the linked span, ``ph: "f"`` on the linking span, same ``id``) for every
link whose target is in the trace: spawn -> task, pool_submit ->
pool_dequeue, channel_emit -> channel_match. Times are microseconds (floats,
so ns precision survives). The file is written event by event.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from ..model import Span
from ._encoding import json_string as _string
from ._encoding import text_of
from ._io import Target, check_spans, dumps, open_target
from ._lanes import LaneLayout, layout_lanes

__all__ = ("chrome_trace_events", "write_chrome_trace")


def _us(ns: int) -> str:
    # Exact decimal µs with ns digits: cheaper than float repr, and no rounding.
    sign = "-" if ns < 0 else ""
    ns = abs(ns)
    return f"{sign}{ns // 1000}.{ns % 1000:03d}"


def _metadata_lines(layout: LaneLayout) -> Iterator[str]:
    for trace_id, trace in layout.id_index.traces.items():
        yield dumps({
            "name": "process_name", "ph": "M", "pid": trace + 1, "tid": 0,
            "args": {"name": f"harn trace {trace_id}"},
        })  # fmt: skip
    for (trace, lane), name in sorted(layout.lane_names.items()):
        label = f"task {name}" if lane > 1 else name
        yield dumps({
            "name": "thread_name", "ph": "M", "pid": trace + 1, "tid": lane,
            "args": {"name": label},
        })  # fmt: skip
        yield dumps({
            "name": "thread_sort_index", "ph": "M", "pid": trace + 1, "tid": lane,
            "args": {"sort_index": lane},
        })  # fmt: skip


def _span_lines(spans: Sequence[Span], layout: LaneLayout, stats: dict[str, int]) -> Iterator[str]:
    # Lines are assembled by hand (names and metadata still go through the
    # JSON encoder): a dict per event plus json.dumps was most of the cost.
    lanes, pids = layout.lane, layout.pid
    flow_id = 0
    for i, span in enumerate(spans):
        where = f'"pid":{pids[i] + 1},"tid":{lanes[i]}'
        start = span.start_ns
        parent = span.parent_id
        args = f'{{"span_id":{span.span_id:d}'
        if parent is not None:
            args += f',"parent_id":{parent:d}'
        if span._metadata:
            args += ',"metadata":' + dumps(span._metadata)
        yield (
            f'{{"name":{_string(span.name)},"cat":"{span.kind._value_}","ph":"X",'
            f'"ts":{_us(start)},"dur":{_us(span.duration_ns)},{where},"args":{args}}}}}'
        )
        for event in span.events:
            ts = _us(start + event.offset_ms * 1_000_000)
            yield (
                f'{{"name":{_string(event.name)},"cat":"event","ph":"i","s":"t","ts":{ts},'
                f'{where},"args":{dumps(event.attributes)}}}'
            )
        for link in span.links:
            source = layout.find(link.trace_id, link.span_id)
            if source < 0:
                stats["unresolved_links"] += 1
                continue
            src = spans[source]
            flow_id += 1
            name = _string(text_of(link.attributes.get("relation", "link")))
            # Viewers bind each end to the slice enclosing its ts on its lane, so
            # both ends sit strictly inside their span (1 ns off its edges where
            # it can) instead of on a boundary shared with a neighbour.
            src_start = src.start_ns
            src_ts = min(max(start, src_start), src_start + max(src.duration_ns - 1, 0))
            dst_ts = start + (1 if span.duration_ns > 1 else 0)
            yield (
                f'{{"name":{name},"cat":"link","ph":"s","id":{flow_id},"ts":{_us(src_ts)},'
                f'"pid":{pids[source] + 1},"tid":{lanes[source]}}}'
            )
            yield (
                f'{{"name":{name},"cat":"link","ph":"f","bp":"e","id":{flow_id},'
                f'"ts":{_us(dst_ts)},{where}}}'
            )
    stats["flows"] = flow_id


def chrome_trace_events(
    spans: Sequence[Span], *, reuse_lanes: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield the trace events (metadata first) one by one, as dicts.

    Example:
        >>> list(chrome_trace_events([]))
        []
    """
    check_spans(spans, "chrome_trace_events")
    layout = layout_lanes(spans, reuse=reuse_lanes)
    stats = {"unresolved_links": 0, "flows": 0}
    for part in (_metadata_lines(layout), _span_lines(spans, layout, stats)):
        for line in part:
            yield json.loads(line)


def write_chrome_trace(
    spans: Sequence[Span], target: Target, *, reuse_lanes: bool = False
) -> int:
    """Write a Chrome trace event JSON object file; returns the number of events.

    ``reuse_lanes=True`` lets a task reuse the lane of one that already ended
    (fewer lanes for huge fan-outs); by default every task has its own lane.
    Links to spans outside ``spans`` get no arrow; their count is in
    ``otherData.unresolved_links``.

    Example:
        >>> import io, json
        >>> buf = io.StringIO(); write_chrome_trace([], buf)
        0
        >>> json.loads(buf.getvalue())["traceEvents"]
        []
    """
    check_spans(spans, "write_chrome_trace")
    layout = layout_lanes(spans, reuse=reuse_lanes)
    stats = {"unresolved_links": 0, "flows": 0}
    count = 0
    with open_target(target, "write_chrome_trace") as out:
        write = out.write
        write('{"traceEvents":[')
        for part in (_metadata_lines(layout), _span_lines(spans, layout, stats)):
            for line in part:
                write(",\n" if count else "\n")
                write(line)
                count += 1
        write("\n],\n" if count else "],\n")
        other = {
            "exporter": "harn-async-trace",
            "trace_ids": list(layout.id_index.traces),
            "span_count": len(spans),
            "flows": stats["flows"],
            "unresolved_links": stats["unresolved_links"],
        }
        write(f'"displayTimeUnit":"ms","otherData":{dumps(other)}}}\n')
        out.flush()
    return count
