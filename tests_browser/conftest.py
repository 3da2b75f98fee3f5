"""Headless Chromium for the viewer tests (``make test-browser`` installs it).

Debian's ``chromium`` is driven by Playwright for Python; no browser is
downloaded. The flags keep Chromium from reaching out on its own (component
updates, sync, field trials), which a closed network refuses.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from viewer_page import Opened

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

CHROMIUM = os.environ.get("HARN_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

playwright_api = pytest.importorskip("playwright.sync_api", reason="run `make test-browser`")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-browser` installs Debian's chromium")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_viewer(browser: Any, tmp_path: Path) -> Iterator[Callable[..., Opened]]:
    pages: list[Any] = []

    def open_(spans: list[Any], *, name: str = "trace.html", width: int = 1400,
              height: int = 800) -> Opened:
        from harn_async_trace.export import write_html

        path = tmp_path / name
        write_html(spans, path)
        page = browser.new_page(viewport={"width": width, "height": height})
        pages.append(page)
        opened = Opened(page, path)
        page.on("console", lambda m: opened.errors.append(f"console.{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: opened.errors.append(f"pageerror: {e}"))
        page.on("request", lambda r: opened.requests.append(r.url))
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        page.wait_for_timeout(50)  # the first requestAnimationFrame redraw
        return opened

    yield open_
    for page in pages:
        page.close()
