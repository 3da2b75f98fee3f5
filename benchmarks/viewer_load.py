"""The HTML viewer in headless Chromium: load + first render at 1k/10k/100k spans.

Command: ``.venv/bin/python benchmarks/viewer_load.py`` (needs ``make
test-browser`` once, for Debian's chromium and Playwright).

Per size, in the same browser and run, interleaved round by round (best of
``ROUNDS``):

* **viewer**: navigation start to the first frame painted after the page's
  script finished (HTML parse of the whole file, ``JSON.parse``, row index,
  first draw), from ``performance.now()`` in the page;
* **baseline**: a page holding the *same* JSON in the same kind of
  ``<script>`` element that only ``JSON.parse``-s it: the floor any viewer
  of this data pays. The ratio is viewer / baseline.

Also: ``write_html`` time in Python, the file size, and the median redraw
time at 100k spans while zooming (what keeps it usable), with how many
elements that frame drew.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from _harness import machine_line, quick

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests_browser"))

from shapes import fan_out_trace  # noqa: E402  # after the path tweak

from harn_async_trace.export._viewer.data import viewer_json  # noqa: E402
from harn_async_trace.export.html import write_html  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ROUNDS = 2 if quick() else 5
SIZES = (1_000, 10_000) if quick() else (1_000, 10_000, 100_000)
PAINTED = (
    "new Promise(r => requestAnimationFrame(() => requestAnimationFrame("
    "() => r(performance.now()))))"
)
READY = "body[data-ready='1']"
REDRAW = (
    "(() => { const v = harnViewer, s = v.state; s.nsPerPx *= FACTOR;"
    " const t = performance.now(); v.render(); return performance.now() - t; })()"
)
BASELINE = (
    '<!DOCTYPE html><html><body><script type="application/json" id="d">{data}</script>'
    "<script>const D = JSON.parse(document.getElementById('d').textContent);"
    "document.body.dataset.ready = '1';</script></body></html>"
)


def main() -> int:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("viewer_load: skipped: Playwright is not installed (run `make test-browser` once)")
        return 0
    if not Path(CHROMIUM).exists():
        print(f"viewer_load: skipped: {CHROMIUM} is missing (run `make test-browser` once)")
        return 0
    print(machine_line())
    print(f"\n### HTML viewer load + first render in headless Chromium (best of {ROUNDS})\n")
    print("| spans | write_html | file | viewer load+render | baseline JSON.parse page | ratio |")
    print("|---:|---:|---:|---:|---:|---:|")
    tmp = Path(tempfile.mkdtemp(prefix="harn-viewer-bench-"))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        redraw: list[float] = []
        drawn = 0
        for n in SIZES:
            spans = fan_out_trace(n)
            viewer, base = tmp / f"viewer-{n}.html", tmp / f"baseline-{n}.html"
            begin = time.perf_counter()
            write_html(spans, viewer)
            write_s = time.perf_counter() - begin
            base.write_text(BASELINE.format(data=viewer_json(spans)), encoding="utf-8")
            best = {"viewer": float("inf"), "baseline": float("inf")}
            for _ in range(ROUNDS):
                for label, path in (("viewer", viewer), ("baseline", base)):
                    page.goto(path.as_uri())
                    page.wait_for_selector(READY, state="attached", timeout=120_000)
                    best[label] = min(best[label], float(page.evaluate(PAINTED)))
            if n == SIZES[-1]:
                page.goto(viewer.as_uri())
                page.wait_for_selector(READY, state="attached", timeout=120_000)
                for step in range(20):
                    factor = 0.7 if step < 10 else 1 / 0.7
                    redraw.append(float(page.evaluate(REDRAW.replace("FACTOR", str(factor)))))
                drawn = int(page.evaluate("harnViewer.state.drawn"))
            size_mb = viewer.stat().st_size / 1e6
            ratio = best["viewer"] / best["baseline"]
            print(f"| {n:,} | {write_s * 1000:,.0f} ms | {size_mb:.1f} MB "
                  f"| {best['viewer']:,.0f} ms | {best['baseline']:,.0f} ms | {ratio:.2f}x |")
        browser.close()
    median = statistics.median(redraw)
    print(f"\nredraw while zooming at {SIZES[-1]:,} spans: median {median:.1f} ms,"
          f" max {max(redraw):.1f} ms ({drawn} span elements in the last frame)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
