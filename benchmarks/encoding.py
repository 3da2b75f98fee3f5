"""The encoding rule (export/_encoding.py) against the plain stdlib encoder, same run.

Run: ``.venv/bin/python benchmarks/encoding.py`` (``BENCH_QUICK=1`` for a smoke run).

Baseline: ``json.JSONEncoder(separators=(",", ":"), ensure_ascii=False,
default=str).encode``, what the exporters used before the rule (it raised on
NaN-free-but-huge ints, cycles, deep nesting and odd keys, and wrote NaN).
Contender: ``dumps``, the rule. Workloads, per value:

* ``llm metadata`` - the 7 keys an ``llm_call`` span carries (flat: the C
  encoder writes it after one shallow type check);
* ``links`` - the list of link dicts a ``spawn`` span writes;
* ``nested`` - 5 levels of dicts and lists (past the shallow check: walked
  in Python, then encoded);
* ``hostile`` - NaN, a cycle, tuple keys, an object (only the rule can).

Goal: the rule costs at most 1.5x the baseline on the two VM-shaped
workloads, the ones every traced program writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _harness import Row, best_ns, check, machine_line, print_table, quick

from harn_async_trace import LlmCallUsage
from harn_async_trace.export._encoding import dumps

_baseline = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str).encode

LLM: dict[str, Any] = dict(LlmCallUsage("gpt-4o-mini", "openai", 120, 30, cost_usd=0.0125)
                           .metadata_pairs())  # fmt: skip
LINKS = [{"trace_id": "trace_0190a3b4-0000-7000-8000-000000000000", "span_id": "1",
          "attributes": {"relation": "spawned_from"}}]  # fmt: skip
NESTED = {"a": [{"b": {"c": [{"d": 1, "e": "x"}]}}], "f": 2.5}
_loop: list[Any] = [1]
_loop.append(_loop)
HOSTILE = {"nan": float("nan"), "loop": _loop, "keys": {(1, 2): 3}, "obj": object()}


def main() -> None:
    """Measure and print the table and the goal line."""
    print(machine_line())
    number, rounds = (2_000, 3) if quick() else (20_000, 15)
    rows: list[Row] = []
    ratios: dict[str, float] = {}
    for label, value in (("llm metadata", LLM), ("links", LINKS), ("nested", NESTED)):
        assert dumps(value) == _baseline(value)  # same bytes on plain values
        best = best_ns(
            {"baseline": lambda v=value: _baseline(v), "rule": lambda v=value: dumps(v)},
            number=number,
            rounds=rounds,
        )
        ratios[label] = best["rule"] / best["baseline"]
        rows.append(Row(f"{label}: stdlib encoder", best["baseline"], "ns", "1.00x"))
        rows.append(Row(f"{label}: dumps (the rule)", best["rule"], "ns",
                        f"{ratios[label]:.2f}x baseline"))  # fmt: skip
    hostile = best_ns({"rule": lambda: dumps(HOSTILE)}, number=number // 4, rounds=rounds)
    rows.append(Row("hostile: dumps (the rule)", hostile["rule"], "ns",
                    "baseline raises (circular reference)"))  # fmt: skip
    print_table("Encoding one value, ns per value", rows)
    worst = max(ratios["llm metadata"], ratios["links"])
    check("rule <= 1.5x stdlib on VM-shaped metadata", worst <= 1.5,
          f"llm {ratios['llm metadata']:.2f}x, links {ratios['links']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
