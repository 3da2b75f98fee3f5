"""The HTML viewer in real headless Chromium: load, element contract, filter, search, click."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from shapes import boundary_trace, fan_out_trace
from viewer_page import Opened

from harn_async_trace import Span
from harn_async_trace.export import read_jsonl

REPO = Path(__file__).resolve().parents[1]
DOCS_SHOT = REPO / "docs" / "viewer-demo.png"

Open = Callable[..., Opened]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> list[Span]:
    """The `make demo` trace (examples/agent.harn under a mock clock)."""
    # A subprocess: Playwright's sync API owns this thread's event loop.
    trace = tmp_path_factory.mktemp("demo") / "agent.jsonl"
    subprocess.run(
        [sys.executable, "-m", "harn_async_trace.cli", "run", "examples/agent.harn",
         "--mock-time", "1700000000000", "--jsonl", str(trace)],
        cwd=REPO, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return list(read_jsonl(trace))


def link_pairs(spans: list[Span]) -> list[tuple[str, str]]:
    ids = {(s.trace_id, s.span_id) for s in spans}
    return sorted(
        (link.span_id, str(s.span_id))
        for s in spans for link in s.links
        if (link.trace_id, int(link.span_id)) in ids
    )  # fmt: skip


def drawn_ids(opened: Opened, selector: str = "[data-span-id]") -> list[str]:
    ids: list[str] = opened.page.eval_on_selector_all(
        selector, "els => els.map(e => e.dataset.spanId)"
    )
    return sorted(ids, key=int)


class TestDemo:
    def test_loads_offline_without_errors(self, open_viewer: Open, demo: list[Span]) -> None:
        """The page logs no error and requests nothing but its own file."""
        opened = open_viewer(demo)
        assert opened.errors == []
        assert opened.requests == [opened.path.as_uri()]

    def test_one_element_per_span_and_per_link(self, open_viewer: Open, demo: list[Span]) -> None:
        """Every span is a data-span-id element; every link a data-link-from/to arrow."""
        opened = open_viewer(demo)
        assert drawn_ids(opened) == sorted((str(s.span_id) for s in demo), key=int)
        arrows = opened.page.eval_on_selector_all(
            "[data-link-from]", "els => els.map(e => [e.dataset.linkFrom, e.dataset.linkTo])"
        )
        assert sorted(map(tuple, arrows)) == link_pairs(demo)
        assert len(arrows) == 5

    def test_fan_out_arrows_are_visible(self, open_viewer: Open, demo: list[Span],
                                        tmp_path: Path) -> None:
        """Each fan-out arrow has a real on-screen extent and ends at its branch."""
        opened = open_viewer(demo, name="agent.html")
        page = opened.page
        for arrow in page.query_selector_all("[data-link-from]"):
            box = arrow.bounding_box()
            assert box is not None
            assert box["height"] > 10, arrow.get_attribute("d")
            branch = page.query_selector(f"[data-span-id='{arrow.get_attribute('data-link-to')}']")
            assert branch is not None
            target = branch.bounding_box()
            assert target is not None
            # The arrow's head is at the branch bar's top-left corner.
            assert abs((box["y"] + box["height"]) - target["y"]) < 6
            assert abs((box["x"] + box["width"]) - target["x"]) < 12
        shot = tmp_path / "demo.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
            page.set_viewport_size({"width": 1280, "height": 520})
            page.wait_for_timeout(100)
            page.click("[data-span-id='8']")
            page.wait_for_timeout(100)
            page.screenshot(path=str(DOCS_SHOT))

    def test_filter_by_kind(self, open_viewer: Open, demo: list[Span]) -> None:
        """Unticking a kind removes its spans (and arrows touching them); ticking restores."""
        opened = open_viewer(demo)
        page = opened.page
        page.uncheck("input[data-kind='llm_call']")
        page.wait_for_timeout(50)
        shown = drawn_ids(opened)
        assert shown == sorted((str(s.span_id) for s in demo if s.kind != "llm_call"), key=int)
        page.uncheck("input[data-kind='spawn']")
        page.wait_for_timeout(50)
        assert page.locator("[data-link-from]").count() == 0
        page.check("input[data-kind='llm_call']")
        page.check("input[data-kind='spawn']")
        page.wait_for_timeout(50)
        assert len(drawn_ids(opened)) == len(demo)

    def test_search_by_name(self, open_viewer: Open, demo: list[Span]) -> None:
        """Searching dims everything but the matches and counts them."""
        opened = open_viewer(demo)
        page = opened.page
        page.fill("#search", "Research")
        page.wait_for_timeout(50)
        matched = drawn_ids(opened, ".span.match")
        assert matched == sorted((str(s.span_id) for s in demo if s.name == "research"), key=int)
        assert len(matched) == 3
        assert page.locator(".span.dim").count() == len(demo) - 3
        assert page.inner_text("#matches") == "3 matches"
        page.press("#search", "Enter")
        page.wait_for_timeout(50)
        assert "fn_call research" in page.inner_text("#details")
        page.fill("#search", "")
        page.wait_for_timeout(50)
        assert page.locator(".span.dim").count() == 0

    def test_click_shows_metadata(self, open_viewer: Open, demo: list[Span]) -> None:
        """Clicking a span fills the details panel with its metadata and subtree totals."""
        opened = open_viewer(demo)
        page = opened.page
        claude = next(s for s in demo if s.name == "claude-sonnet-4")
        page.click(f"[data-span-id='{claude.span_id}']")
        page.wait_for_timeout(50)
        text = page.inner_text("#details")
        assert "llm_call claude-sonnet-4" in text
        for key, value in claude.metadata.items():
            assert key in text
            assert str(value) in text
        assert page.locator(f".span.sel[data-span-id='{claude.span_id}']").count() == 1
        # A parallel span's subtree totals include its branches' tokens, once.
        fan = next(s for s in demo if s.name == "each@agent.harn:39" and s.kind == "parallel")
        page.click(f"[data-span-id='{fan.span_id}']")
        page.wait_for_timeout(50)
        assert "85 tokens (33 in, 52 out)" in page.inner_text("#details")

    def test_zoom_and_pan(self, open_viewer: Open, demo: list[Span]) -> None:
        """Zoom buttons and dragging change what the timeline shows."""
        opened = open_viewer(demo)
        page = opened.page
        first = page.locator("[data-span-id='20']").bounding_box()
        page.click("#zoom-in")
        page.wait_for_timeout(50)
        zoomed = page.locator("[data-span-id='20']").bounding_box()
        assert first is not None
        assert zoomed is not None
        assert zoomed["width"] > first["width"] * 1.8
        page.mouse.move(700, 300)
        page.mouse.down()
        page.mouse.move(500, 300, steps=4)
        page.mouse.up()
        page.wait_for_timeout(50)
        panned = page.locator("[data-span-id='20']").bounding_box()
        assert panned is not None
        assert math.isclose(panned["x"], zoomed["x"] - 200, abs_tol=3)


class TestBoundaries:
    def test_pool_and_channel_arrows_with_queue_wait(self, open_viewer: Open) -> None:
        """Pool submit -> dequeue and emit -> match get arrows; a queue wait is drawn."""
        spans = boundary_trace()
        opened = open_viewer(spans)
        assert opened.errors == []
        relations = opened.page.eval_on_selector_all(
            "[data-link-from]", "els => els.map(e => e.dataset.relation)"
        )
        assert sorted(relations) == sorted(
            str(link.attributes.get("relation", "link")) for _, link in _resolvable(spans)
        )
        assert {"submitted_by", "consumed"} <= set(relations)
        assert drawn_ids(opened) == sorted((str(s.span_id) for s in spans), key=int)
        waits = opened.page.eval_on_selector_all(".wait", "els => els.map(e => e.offsetWidth)")
        assert len(waits) >= 2
        assert max(waits) > 20

    def test_hostile_names_and_metadata(self, open_viewer: Open) -> None:
        """Script-like names show as text; odd metadata values render without errors."""
        loop: list[Any] = []
        loop.append(loop)
        spans = [Span(trace_id="t", span_id=1, parent_id=None, kind="step",
                      name="<img src=x onerror=alert(1)></script>", start_ms=0,
                      start_unix_ms=0, duration_ms=5,
                      metadata={"nan": math.nan, "loop": loop, "bytes": b"\x00\xff"})]
        opened = open_viewer(spans)
        page = opened.page
        page.click("[data-span-id='1']")
        page.wait_for_timeout(50)
        assert opened.errors == []
        assert page.locator("#details img").count() == 0
        assert "<img src=x onerror=alert(1)></script>" in page.inner_text("#details h2")


def _resolvable(spans: list[Span]) -> list[tuple[Span, Any]]:
    ids = {(s.trace_id, s.span_id) for s in spans}
    return [(s, link) for s in spans for link in s.links
            if (link.trace_id, int(link.span_id)) in ids and link.span_id != str(s.span_id)]


class TestLarge:
    def test_100k_spans_stay_usable(self, open_viewer: Open) -> None:
        """At 100k spans the page draws a bounded set, and search, click and zoom work."""
        spans = fan_out_trace(100_000)
        opened = open_viewer(spans)
        page = opened.page
        assert opened.errors == []
        state = page.evaluate("({drawn: harnViewer.state.drawn})")
        assert 0 < page.locator("[data-span-id]").count() == state["drawn"] <= 2_500
        assert page.locator("[data-link-from]").count() <= 1_500
        page.fill("#search", "[24998]")
        page.wait_for_timeout(100)
        assert page.inner_text("#matches") == "1 match"
        page.press("#search", "Enter")
        page.wait_for_timeout(100)
        target = next(s for s in spans if s.name.endswith("[24998]"))
        assert f"spawn {target.name}" in page.inner_text("#details h2")
        page.evaluate(f"harnViewer.zoomTo({spans.index(target)})")
        page.wait_for_timeout(100)
        assert page.locator(f"[data-span-id='{target.span_id}']").count() == 1
