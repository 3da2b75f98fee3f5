"""``--profile-json``: the spans plus per-kind totals and LLM token/cost totals.

Written in one streaming pass over the spans (after an O(n) pass that sums
child durations for self time), so the output never exists twice in memory.
Layout::

    {"trace_ids": [...], "spans": [span dicts...], "span_count": n,
     "kinds": {"llm_call": {"count", "total_ms", "self_ms", "max_ms"}, ...},
     "llm": {"calls", "input_tokens", "output_tokens", "cache_read_tokens",
             "cache_write_tokens", "cost_usd", "unpriced_calls",
             "by_model": {"model": {...same counters...}}}}

Kind totals are float ms rounded to µs. ``self_ms`` is a span's duration
minus its direct children's (floored at 0, as concurrent children can
outlast the parent's own time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from ..kinds import meta
from ..model import Span
from ._encoding import text_of
from ._io import Target, check_spans, dumps, open_target, write_span_array
from .jsonl import _span_record

__all__ = ("llm_totals", "profile_totals", "write_profile_json")

_NS_PER_MS: Final = 1_000_000
_TOKEN_KEYS: Final = (
    meta.INPUT_TOKENS,
    meta.OUTPUT_TOKENS,
    meta.CACHE_READ_TOKENS,
    meta.CACHE_WRITE_TOKENS,
)


def _new_llm_bucket() -> dict[str, Any]:
    bucket: dict[str, Any] = {"calls": 0}
    for key in _TOKEN_KEYS:
        bucket[key] = 0
    bucket["cost_usd"] = 0.0
    bucket["unpriced_calls"] = 0
    return bucket


def _add_llm(bucket: dict[str, Any], metadata: dict[str, Any]) -> None:
    bucket["calls"] += 1
    for key in _TOKEN_KEYS:
        value = metadata.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            bucket[key] += value
    cost = metadata.get(meta.COST_USD)
    if isinstance(cost, int | float) and not isinstance(cost, bool):
        bucket["cost_usd"] += cost
    else:
        bucket["unpriced_calls"] += 1


class _Totals:
    """Running per-kind and LLM totals (one instance per export)."""

    __slots__ = ("child_ns", "kinds", "llm")

    def __init__(self, child_ns: dict[tuple[str, int], int]) -> None:
        self.child_ns = child_ns
        self.kinds: dict[str, list[int]] = {}  # kind -> [count, total_ns, self_ns, max_ns]
        self.llm = _new_llm_bucket()
        self.llm["by_model"] = {}

    def add(self, span: Span) -> None:
        duration = span.duration_ns
        own = max(0, duration - self.child_ns.get((span.trace_id, span.span_id), 0))
        row = self.kinds.get(span.kind.value)
        if row is None:
            self.kinds[span.kind.value] = [1, duration, own, duration]
        else:
            row[0] += 1
            row[1] += duration
            row[2] += own
            if duration > row[3]:
                row[3] = duration
        if span.kind.value == "llm_call":
            metadata = span.metadata
            _add_llm(self.llm, metadata)
            model = text_of(metadata.get(meta.MODEL, "unknown"))
            by_model = self.llm["by_model"]
            bucket = by_model.get(model)
            if bucket is None:
                bucket = by_model[model] = _new_llm_bucket()
            _add_llm(bucket, metadata)

    def kinds_dict(self) -> dict[str, dict[str, float]]:
        # Float ms (µs resolution): most VM spans are sub-ms, and floored
        # integers would report them all as 0.
        return {
            kind: {
                "count": count,
                "total_ms": round(total / _NS_PER_MS, 3),
                "self_ms": round(own / _NS_PER_MS, 3),
                "max_ms": round(longest / _NS_PER_MS, 3),
            }
            for kind, (count, total, own, longest) in sorted(self.kinds.items())
        }


def _child_durations(spans: Sequence[Span]) -> dict[tuple[str, int], int]:
    child_ns: dict[tuple[str, int], int] = {}
    for span in spans:
        parent = span.parent_id
        if parent is not None:
            key = (span.trace_id, parent)
            child_ns[key] = child_ns.get(key, 0) + span.duration_ns
    return child_ns


def profile_totals(spans: Sequence[Span]) -> dict[str, Any]:
    """The ``kinds`` and ``llm`` sections of a profile, without the span list.

    Example:
        >>> profile_totals([])["llm"]["calls"]
        0
    """
    check_spans(spans, "profile_totals")
    totals = _Totals(_child_durations(spans))
    for span in spans:
        totals.add(span)
    return {"span_count": len(spans), "kinds": totals.kinds_dict(), "llm": totals.llm}


def llm_totals(spans: Sequence[Span]) -> dict[str, Any]:
    """Token and cost totals over the ``llm_call`` spans (overall and per model).

    Example:
        >>> llm_totals([])["cost_usd"]
        0.0
    """
    check_spans(spans, "llm_totals")
    result: dict[str, Any] = profile_totals(spans)["llm"]
    return result


def write_profile_json(spans: Sequence[Span], target: Target) -> int:
    """Write the profile JSON (spans, per-kind totals, LLM totals); returns the span count.

    Example:
        >>> import io, json
        >>> buf = io.StringIO(); _ = write_profile_json([], buf)
        >>> json.loads(buf.getvalue())["kinds"]
        {}
    """
    check_spans(spans, "write_profile_json")
    totals = _Totals(_child_durations(spans))
    trace_ids: dict[str, None] = {}
    for span in spans:
        totals.add(span)
        trace_ids.setdefault(span.trace_id)
    with open_target(target, "write_profile_json") as out:
        write = out.write
        write('{"spans":')
        count = write_span_array(write, spans, _span_record)
        write(",\n")
        write(f'"span_count":{count},\n')
        write(f'"trace_ids":{dumps(list(trace_ids))},\n')
        write(f'"kinds":{dumps(totals.kinds_dict())},\n')
        write(f'"llm":{dumps(totals.llm)}}}\n')
        out.flush()
    return count
