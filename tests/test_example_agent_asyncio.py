"""examples/agent_asyncio.py: plain asyncio + instrument_asyncio() gives a fully linked trace."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from harn_async_trace import Span, SpanKind

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent_asyncio.py"


def _load() -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLE), run_name="agent_asyncio")


def boundary_problems(spans: list[Span]) -> list[str]:
    """Misparented spans and task/queue boundaries without a link, as text (empty: all good)."""
    by_id = {s.span_id: s for s in spans}
    problems = []
    for s in spans:
        where = f"{s.kind} {s.name}"
        relations = {link.attributes.get("relation") for link in s.links}
        if s.parent_id is not None:
            parent = by_id[s.parent_id]
            if s.start_ns < parent.start_ns or s.end_ns > parent.end_ns:
                problems.append(f"{where}: outside its parent {parent.name}")
        elif s.kind is SpanKind.SPAWN:
            if "spawned_from" not in relations:
                problems.append(f"{where}: a task with no link to its creator")
        elif s.name != "service":
            problems.append(f"{where}: a root with nothing saying where it came from")
        if s.kind is SpanKind.CHANNEL_MATCH and "consumed" not in relations:
            problems.append(f"{where}: a queue item with no link to its emit")
        for link in s.links:
            if int(link.span_id) not in by_id:
                problems.append(f"{where}: link to a missing span #{link.span_id}")
    return problems


def _task_of(span: Span, by_id: dict[int, Span]) -> str:
    """The name of the spawn span a span ran under (its task), or '' for the main task."""
    while span.parent_id is not None:
        span = by_id[span.parent_id]
    return span.name if span.kind is SpanKind.SPAWN else ""


class TestAgentApp:
    def test_instrumented_trace_has_no_misparented_span_and_links_every_boundary(self) -> None:
        """instrument_asyncio() and no other change: every boundary linked, none misparented."""
        spans: list[Span] = _load()["trace"](instrumented=True)
        assert boundary_problems(spans) == []
        by_id = {s.span_id: s for s in spans}
        tasks = {(s.kind.value, s.name): _task_of(s, by_id) for s in spans}
        assert {key: task for key, task in tasks.items() if key[0] != "spawn"} == {
            ("pipeline", "service"): "",
            ("pipeline", "agent"): "",
            ("llm_call", "plan"): "",
            ("tool_call", "search"): "search",
            ("tool_call", "calculator"): "calculator",
            ("llm_call", "draft"): "llm",
            ("llm_call", "review"): "llm",
            ("channel_emit", "events"): "",
            ("channel_match", "events"): "auditor",
            ("fn_call", "audit answered"): "auditor",
            ("fn_call", "store memory"): "remember",
        }
        spawns = sorted(s.name for s in spans if s.kind is SpanKind.SPAWN)
        assert spawns == ["auditor", "calculator", "llm", "llm", "remember", "search"]
        assert sum(s.kind is SpanKind.SPAWN for s in spans) + 1 == sum(
            bool(s.links) for s in spans
        )  # a link at each of the six task boundaries and the one queue boundary

    def test_without_instrumentation_the_checker_finds_the_problem(self) -> None:
        """The same app without instrument_asyncio(): the background work has no link back."""
        spans: list[Span] = _load()["trace"](instrumented=False)
        assert boundary_problems(spans) == [
            "fn_call store memory: a root with nothing saying where it came from"
        ]

    @pytest.mark.parametrize("argv", [[], ["--plain"]], ids=["instrumented", "plain"])
    def test_script_prints_the_trees_in_the_docs(
        self, argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The script's output is the tree docs/boundaries.md shows for the same service."""
        monkeypatch.setattr(sys, "argv", [str(EXAMPLE), *argv])
        runpy.run_path(str(EXAMPLE), run_name="__main__")
        printed = capsys.readouterr().out
        doc = (EXAMPLE.parents[1] / "docs" / "boundaries.md").read_text(encoding="utf-8")
        trees = [block.split("```")[0] for block in doc.split("```text\n")[1:4]]
        assert printed == (trees[0] if argv else trees[1])
