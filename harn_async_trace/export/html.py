"""``harn-trace view`` / ``run --html``: one self-contained HTML page to look at a trace.

The page is a timeline with a lane per task and nested bars by start and
duration, arrows for links (spawn, parallel branches, pool submit ->
dequeue with the queue wait drawn before the job, channel emit -> match),
zoom and pan, a details panel (metadata, events, links, errors), a filter by
kind, a search by name, and token/cost totals per subtree in which linked
detached work counts once (``causal.py``).

Everything is inline (the page's Content-Security-Policy even forbids
fetching), so it works from ``file://`` with the network off. The script
and style live beside this module in ``_viewer/``; the data is one JSON
object from ``_viewer/data.py``.

Element contract (tested in headless Chromium): each span *drawn as an
element* has ``data-span-id="<id>"``, each link arrow in view has
``data-link-from`` / ``data-link-to`` (span ids). To stay usable at 100k
spans only what is in view is drawn: up to 2,500 span elements (the widest
win) and 1,500 arrows; the rest of the view is painted on a canvas, and the
full trace is always in the page's data layer (``window.harnViewer``), which
search, click and the details panel use.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import cache
from importlib import resources

from ..model import Span
from ._io import Target, open_target
from ._viewer.data import viewer_json

__all__ = ("html_page", "write_html")


@cache
def _asset(name: str) -> str:
    return resources.files(__package__).joinpath("_viewer", name).read_text(encoding="utf-8")


def html_page(spans: Sequence[Span], *, title: str = "trace") -> str:
    """The viewer page for ``spans`` as one HTML string.

    Example:
        >>> page = html_page([], title="empty")
        >>> page.startswith("<!DOCTYPE html>"), "data-span-id" in page, "<script src" in page
        (True, True, False)
    """
    page = _asset("viewer.html")
    # str.replace, not str.format: the CSS and JS are full of braces.
    page = page.replace("/*CSS*/", _asset("viewer.css"), 1)
    page = page.replace("__TITLE__", html.escape(title), 1)
    before, _, after = page.partition("/*JS*/")
    data_before, _, data_after = before.partition("__DATA__")
    return data_before + viewer_json(spans, title=title) + data_after + _asset("viewer.js") + after


def write_html(spans: Sequence[Span], target: Target, *, title: str | None = None) -> int:
    """Write the self-contained viewer page for ``spans``; returns the number of spans.

    ``title`` defaults to the file name (or ``trace``).

    Example:
        >>> import io
        >>> buf = io.StringIO(); write_html([], buf)
        0
        >>> "harn-trace-data" in buf.getvalue()
        True
    """
    if title is None:
        name = str(target) if not hasattr(target, "write") else "trace"
        title = name.rsplit("/", 1)[-1]
    text = html_page(spans, title=title)
    with open_target(target) as out:
        out.write(text)
    return len(spans)
