"""Random nestings of every boundary: each span's parent and links are exactly right."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from boundaries_support import LOOPS, make_traced
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harn_async_trace import (
    Span,
    SpanKind,
    TracedPool,
    span,
    traced_parallel,
    traced_spawn,
)

# A plan node is ("leaf", ticks) or (kind, ticks, children).
Node = tuple[Any, ...]
KINDS = ("span", "spawn", "parallel", "pool")

plans = st.recursive(
    st.tuples(st.just("leaf"), st.integers(0, 3)),
    lambda children: st.tuples(
        st.sampled_from(KINDS), st.integers(0, 3), st.lists(children, min_size=1, max_size=4)
    ),
    max_leaves=25,
)


async def _ticks(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def _execute(node: Node, name: str, chaos: bool = False) -> None:
    """Run a plan; a ``chaos`` plan's leaves may raise, and its fan-outs are left at defaults."""
    kind, ticks = node[0], node[1]
    await _ticks(ticks)
    if kind == "leaf":
        with span(SpanKind.FN_CALL, name):
            await _ticks(ticks)
            if chaos and node[2]:
                raise _LeafError(name)
        return
    children: list[Node] = node[2]

    def branches() -> list[Coroutine[Any, Any, None]]:
        return [_execute(c, f"{name}.{i}", chaos) for i, c in enumerate(children)]

    async def run_children() -> None:
        await asyncio.gather(*branches())

    if kind == "span":
        with span(SpanKind.STEP, name):
            await run_children()
    elif kind == "spawn":
        await traced_spawn(run_children(), name=name)
    elif kind == "parallel":
        await traced_parallel(branches(), name=name, max_concurrent=None if chaos else 2)
    else:
        async with TracedPool(2, len(children), name=name) as pool:
            futures = [
                pool.submit(
                    _execute, c, f"{name}.{i}", chaos, name=None if chaos else f"{name}/{i}"
                )
                for i, c in enumerate(children)
            ]
            await asyncio.gather(*futures)


def _check(node: Node, name: str, scope: int, spans: dict[tuple[str, str], Span]) -> int:
    """Assert ``node``'s spans hang off ``scope`` as designed; returns how many were checked."""
    kind = node[0]
    if kind == "leaf":
        assert spans[("fn_call", name)].parent_id == scope
        return 1
    children: list[Node] = node[2]
    checked = 1
    if kind == "span":
        own = spans[("step", name)]
        assert own.parent_id == scope
        scopes = [own.span_id] * len(children)
    elif kind == "spawn":
        own = spans[("spawn", name)]
        assert own.parent_id is None
        assert [(ln.span_id, ln.attributes) for ln in own.links] == [
            (str(scope), {"relation": "spawned_from"})
        ]
        scopes = [own.span_id] * len(children)
    elif kind == "parallel":
        own = spans[("parallel", name)]
        assert own.parent_id == scope
        scopes = []
        for i in range(len(children)):
            branch = spans[("spawn", f"{name}[{i}]")]
            assert branch.parent_id is None
            assert [(ln.span_id, ln.attributes) for ln in branch.links] == [
                (str(own.span_id), {"relation": "branch_of", "index": str(i)})
            ]
            scopes.append(branch.span_id)
    else:
        scopes = []
        for i in range(len(children)):
            submit = spans[("pool_submit", f"{name}/{i}")]
            dequeue = spans[("pool_dequeue", f"{name}/{i}")]
            assert submit.parent_id == scope
            assert dequeue.parent_id is None
            assert [ln.span_id for ln in dequeue.links] == [str(submit.span_id)]
            scopes.append(dequeue.span_id)
    for i, (child, child_scope) in enumerate(zip(children, scopes, strict=True)):
        checked += _check(child, f"{name}.{i}", child_scope, spans)
    return checked


@pytest.mark.parametrize("loop_kind", LOOPS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans)
def test_random_nestings_parent_and_link_correctly(loop_kind: str, plan: Node) -> None:
    """Any nesting of span/spawn/parallel/pool keeps every parent and link exact."""
    traced, restore = make_traced(loop_kind)
    try:

        async def main() -> None:
            with span(SpanKind.PIPELINE, "root"):
                await _execute(plan, "n")

        traced.run(main)
        spans = {(str(s.kind), s.name): s for s in traced.collector.spans()}
        assert len(spans) == len(traced.collector.spans())  # names are unique per kind
        root = spans[("pipeline", "root")]
        assert _check(plan, "n", root.span_id, spans) >= 1
        assert traced.collector.open_span_count() == 0
    finally:
        restore()


class _LeafError(Exception):
    """Raised by failing leaves of a chaos plan."""


chaos_plans = st.recursive(
    st.tuples(st.just("leaf"), st.integers(0, 3), st.booleans()),
    lambda children: st.tuples(
        st.sampled_from(KINDS), st.integers(0, 3), st.lists(children, min_size=1, max_size=4)
    ),
    max_leaves=20,
)


@pytest.mark.parametrize("loop_kind", LOOPS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=chaos_plans, cancel_after=st.one_of(st.none(), st.integers(0, 25)))
def test_errors_and_cancellation_leave_no_open_span(
    loop_kind: str, plan: Node, cancel_after: int | None
) -> None:
    """Failing leaves and a cancellation at a random tick never leave a span open."""
    traced, restore = make_traced(loop_kind)
    try:

        async def main() -> None:
            task = asyncio.create_task(_execute(plan, "n", True))
            if cancel_after is not None:
                await _ticks(cancel_after)
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)

        traced.run(main)
        assert traced.collector.open_span_count() == 0
        for s in traced.collector.spans():
            if s.kind in (SpanKind.SPAWN, SpanKind.POOL_DEQUEUE, SpanKind.PARALLEL):
                assert s.metadata["status"] in ("ok", "error", "cancelled")
    finally:
        restore()
