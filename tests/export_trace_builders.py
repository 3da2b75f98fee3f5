"""Trace builders shared by the exporter tests (not a test module).

``rich_trace()`` exercises every shape an exporter must handle: nesting,
LLM/tool spans, events, overlapping siblings from two contexts, a detached
spawn root linked to its spawner, pool submit -> dequeue, channel emits ->
one match (multi-link), an error span and a child that outlives its parent.
All under a MockClock, so times are exact and deterministic.
"""

from __future__ import annotations

import contextvars

from harn_async_trace import (
    LlmCallUsage,
    MockClock,
    Span,
    SpanCollector,
    SpanLink,
    install_override,
)

START_WALL_MS = 1_700_000_000_000


def _relinked(link: SpanLink | None, **attributes: str) -> list[SpanLink]:
    assert link is not None
    return [SpanLink(link.trace_id, link.span_id, attributes)]


def rich_trace(clock: MockClock | None = None) -> tuple[SpanCollector, list[Span]]:
    """Build the reference trace; returns the collector and its spans."""
    clock = clock or MockClock(start_wall_ms=START_WALL_MS)
    with install_override(clock):
        c = SpanCollector()

        def tick(us: int = 1000) -> None:
            clock.advance_ns(us * 1000)

        main = c.start("pipeline", "main")
        c.set_metadata(main, "source", "builder")
        tick()
        a = c.start("fn_call", "a")
        tick(250)
        c.end(a)
        llm = c.start("llm_call", "chat")
        for key, value in LlmCallUsage("gpt-x", "mock", 120, 30, cost_usd=0.0125).metadata_pairs():
            c.set_metadata(llm, key, value)
        tick(1500)
        c.record_event(llm, "first_token", {"index": 1})
        tick(500)
        c.end(llm)
        tool = c.start("tool_call", "grep")
        c.set_metadata(tool, "tool_name", "grep")
        c.set_metadata(tool, "args", {"pattern": "x", "paths": ["a", "b"]})
        tick(700)
        c.end(tool)
        # Two overlapping siblings, as plain gather() of children would make.
        ctx1, ctx2 = contextvars.copy_context(), contextvars.copy_context()
        b1 = ctx1.run(c.start, "fn_call", "b1")
        tick()
        b2 = ctx2.run(c.start, "fn_call", "b2")
        tick()
        ctx1.run(c.end, b1)
        tick()
        ctx2.run(c.end, b2)
        # A spawned task: detached root linked to its spawner.
        spawned_from = _relinked(c.span_link(main), relation="spawned_from")
        spawn = c.open("spawn", "worker", spawned_from, detached=True, push=False)
        task = contextvars.copy_context()
        task.run(c.bind(spawn).__enter__)
        s1 = task.run(c.start, "step", "s1")
        tick(300)
        task.run(c.end, s1)
        # Pool: submit ends before the worker dequeues.
        sub = c.start("pool_submit", "job")
        c.set_metadata(sub, "outcome", "queued")
        sub_link = c.span_link(sub)
        tick(100)
        c.end(sub)
        tick(400)
        queued_by = _relinked(sub_link, relation="queued_by")
        deq = c.open("pool_dequeue", "job", queued_by, detached=True, push=False)
        c.set_metadata(deq, "queue_dwell_ms", 0)
        # Channel: two emits consumed by one match (multi-link).
        emits = []
        for _ in range(2):
            e = c.start("channel_emit", "events")
            emits.append(c.span_link(e))
            tick(50)
            c.end(e)
        match = c.open(
            "channel_match",
            "on_events",
            [SpanLink(x.trace_id, x.span_id) for x in emits if x],
            detached=True,
            push=False,
        )
        tick(200)
        c.end(match)
        c.end(deq)
        err = c.start("fn_call", "boom")
        c.set_metadata(err, "error", "division by zero")
        c.set_metadata(err, "error_type", "ZeroDivisionError")
        tick(10)
        c.end(err)
        # A child that outlives its parent (its task kept running).
        p = c.start("fn_call", "short")
        late_ctx = contextvars.copy_context()
        late = late_ctx.run(c.start, "step", "late")
        tick(20)
        c.end(p)
        tick(20)
        late_ctx.run(c.end, late)
        tick()
        c.end(main)
        tick(500)
        task.run(c.end, spawn)
    return c, c.spans()
