"""Suspension/resume tokens and links; drain spans with pinned drain_decision children."""

from __future__ import annotations

import asyncio
import json

import pytest
from boundaries_support import Traced, dedent_tree

from harn_async_trace import (
    SpanKind,
    SpanLink,
    SuspensionToken,
    emit_drain_decision,
    span,
    traced_drain,
    traced_resume,
    traced_suspension,
    use_collector,
)


class TestSuspension:
    def test_suspend_then_resume_tree(self, traced: Traced) -> None:
        """resume is a detached root linked to the suspension; work nests under it."""
        with use_collector(traced.collector):
            with span(SpanKind.PIPELINE, "flow"):
                with traced_suspension("approval", reason="human") as suspended:
                    traced.advance_ms(3)
                traced.advance_ms(1)
            traced.advance_ms(100)
            with span(SpanKind.PIPELINE, "later"):
                with traced_resume(suspended.token, attempt=2):
                    with span(SpanKind.STEP, "continue"):
                        traced.advance_ms(5)
                with span(SpanKind.STEP, "after"):
                    pass
        assert traced.outline() == dedent_tree("""
            #1 pipeline flow 4ms
              #2 suspension approval 3ms reason=human
            #3 pipeline later 5ms
              #6 step after 0ms
            #4 resume approval 5ms attempt=2 -> #2{relation=resumes}
              #5 step continue 5ms
        """)

    def test_token_round_trips_through_json(self, traced: Traced) -> None:
        """A token survives to_dict/JSON/from_dict and still links the resume."""
        with use_collector(traced.collector):
            with traced_suspension("snapshot") as suspended:
                pass
            assert suspended.token is not None
            stored = json.dumps(suspended.token.to_dict())
            token = SuspensionToken.from_dict(json.loads(stored))
            assert token == suspended.token
            with traced_resume(token, name="restored"):
                pass
        resume = traced.by_name("restored")
        assert resume.parent_id is None
        assert resume.links == [SpanLink(traced.collector.trace_id, "1", {"relation": "resumes"})]

    def test_resume_from_link_or_nothing(self, traced: Traced) -> None:
        """A SpanLink token is re-tagged relation=resumes; None gives an unlinked resume."""
        foreign = SpanLink("trace_other", "77", {"relation": "whatever"})
        with use_collector(traced.collector):
            with traced_resume(foreign):
                pass
            with traced_resume(None, name="fresh"):
                pass
        assert traced.outline() == dedent_tree("""
            #1 resume resume 0ms -> #77{relation=resumes}
            #2 resume fresh 0ms
        """)
        assert traced.collector.spans()[0].links[0].trace_id == "trace_other"
        with pytest.raises(TypeError):
            traced_resume("span-2")  # type: ignore[arg-type]  # runtime guard

    def test_async_forms_and_errors(self, traced: Traced) -> None:
        """The async context managers record errors and cancellation like span()."""

        async def main() -> None:
            with pytest.raises(ValueError, match="lost"):
                async with traced_suspension("s1"):
                    raise ValueError("lost")

            async def stuck() -> None:
                async with traced_resume(None, name="r1"):
                    await asyncio.Event().wait()

            task = asyncio.create_task(stuck())
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        traced.run(main)
        assert traced.outline() == dedent_tree("""
            #1 suspension s1 0ms error=lost error_type=ValueError
            #2 resume r1 0ms cancelled=true
        """)

    def test_handle_cannot_be_entered_twice(self, traced: Traced) -> None:
        """Re-entering one handle while it is open is a clear error."""
        with use_collector(traced.collector):
            handle = traced_suspension("once")
            with handle, pytest.raises(RuntimeError, match="already open"):
                handle.__enter__()

    def test_disabled_tracing(self, traced: Traced) -> None:
        """With tracing disabled there is no token and nothing is recorded."""
        traced.collector.enabled = False
        with use_collector(traced.collector):
            with traced_suspension("s") as suspended:
                pass
            with traced_resume(suspended.token) as resumed:
                assert resumed.span_id == 0
        assert suspended.token is None
        assert traced.collector.spans() == []


class TestDrain:
    def test_decisions_are_children_of_the_drain_span(self, traced: Traced) -> None:
        """decide() pins decisions under the drain span even under other open spans."""
        with use_collector(traced.collector):
            with span(SpanKind.PIPELINE, "shutdown"):
                with traced_drain("workers", mode="graceful") as drain:
                    traced.advance_ms(2)
                    with span(SpanKind.STEP, "busy"):
                        drain.decide("job-1", "finish", state="running")
                    drain.decide("job-2", "cancel")
                    drain.set_metadata("drained", 2)
                    traced.advance_ms(1)
                assert drain.decide("job-3", "cancel") == 0  # ended: nothing recorded
        assert traced.outline() == dedent_tree("""
            #1 pipeline shutdown 3ms
              #2 drain workers 3ms drained=2 mode=graceful
                #3 step busy 0ms
                #4 drain_decision job-1 0ms decision=finish state=running
                #5 drain_decision job-2 0ms decision=cancel
        """)

    def test_decide_from_another_task(self, traced: Traced) -> None:
        """A decision made by another task still lands under the drain span."""

        async def main() -> None:
            async with traced_drain("pool") as drain:

                async def decider() -> None:
                    with span(SpanKind.FN_CALL, "elsewhere"):
                        drain.decide("job", "requeue")

                await asyncio.create_task(decider())

        traced.run(main)
        decision = traced.by_name("job")
        assert decision.parent_id == traced.by_name("pool").span_id
        assert traced.by_name("elsewhere").parent_id == traced.by_name("pool").span_id

    def test_emit_drain_decision_under_current_span(self, traced: Traced) -> None:
        """emit_drain_decision records a marker under whatever span is current."""
        with use_collector(traced.collector):
            assert emit_drain_decision("orphan", "drop") == 1
        assert traced.outline() == "#1 drain_decision orphan 0ms decision=drop"
        traced.collector.enabled = False
        with use_collector(traced.collector):
            assert emit_drain_decision("ignored", "drop") == 0
