"""Trace snapshots: readable trace trees and the golden files that hold them.

The tree is the causal summary's renderer (``export/causal_text.py``) in its
snapshot style: the same tree and order as ``harn-trace summary`` (children
in start order, a detached span under the span it links to, marked
``↪ <relation>``), plus ``#id`` references, start offsets under a mock clock,
and one line per metadata set, link and event, so that any change in a trace
shows up as a changed line of the golden. Ids are stable under a mock clock
because they are allocated in program order.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Final
from urllib.parse import quote

from .clock import MockClock
from .export.causal_text import TreeStyle, format_causal_summary
from .model import Span

__all__ = (
    "GOLDEN_SUFFIX",
    "Outcome",
    "check_golden",
    "golden_diff",
    "golden_path",
    "golden_stem",
    "owner_stem",
    "render_trace_tree",
)


def _timed_by_mock(span: Span) -> bool:
    # A span read its time from the clock bound at its start; only mock time is
    # reproducible, so real-clock timings are left out of snapshots.
    return isinstance(span.clock, MockClock)


_STYLE = TreeStyle(ids=True, header=False, details=True, totals=False, timed=_timed_by_mock)


def render_trace_tree(spans: Sequence[Span]) -> str:
    """Render spans as the causal tree, ordered by start time (then id).

    Spans whose parent is missing are shown at the top level with a
    ``(parent #N missing)`` note, so nothing recorded is hidden.

    Example:
        >>> from harn_async_trace import SpanCollector
        >>> c = SpanCollector(); _ = c.end(c.start("step", "load"))
        >>> render_trace_tree(c.spans())
        '#1 step load\\n'
    """
    return format_causal_summary(spans, style=_STYLE)


# -- golden files ----------------------------------------------------------------
# The pytest plugin decides *which* test a golden belongs to; this part knows
# how the file is named, compared and written. Nothing here imports pytest.

GOLDEN_SUFFIX: Final = ".trace"
# Characters kept as they are in golden file names: safe on every common file
# system. Everything else is percent-encoded (UTF-8), so the name stays
# readable for usual ids (`test_x[1-True]`) and distinct ids never share a file.
_SAFE: Final = "_.-[]=,+@"
_MAX_PART: Final = 150  # test part of a name; the name= part gets _MAX_NAME
_MAX_NAME: Final = 60


class Outcome(StrEnum):
    """What comparing (or updating) one golden file found or did."""

    MATCHED = "matched"
    WRITTEN = "written"
    UPDATED = "updated"
    MISSING = "missing"
    DIFFERS = "differs"


def _encode(text: str, limit: int) -> str:
    encoded = quote(text, safe=_SAFE)
    if len(encoded) <= limit:
        return encoded
    # A longer form than any unshortened one, so the two kinds never collide.
    digest = hashlib.blake2b(text.encode(), digest_size=4).hexdigest()
    return f"{encoded[:limit]}~{digest}"


def golden_stem(test_path: Sequence[str], name: str | None = None) -> str:
    """File name (without suffix) of a golden: ``Class.test[params]`` plus ``-name``.

    ``test_path`` is the enclosing classes, outermost first, then the test's
    name with its parametrization id.

    Example:
        >>> golden_stem(["TestApi", "test_run[uvloop-a b]"], name="phase2")
        'TestApi.test_run[uvloop-a%20b]-phase2'
    """
    stem = _encode(".".join(test_path), _MAX_PART)
    return stem if name is None else f"{stem}-{_encode(name, _MAX_NAME)}"


def golden_path(test_file: Path, test_path: Sequence[str], name: str | None = None) -> Path:
    """``<dir of test_file>/__snapshots__/<module>/<golden_stem>.trace``.

    Example:
        >>> golden_path(Path("tests/test_api.py"), ["TestApi", "test_run"]).as_posix()
        'tests/__snapshots__/test_api/TestApi.test_run.trace'
    """
    folder = test_file.parent / "__snapshots__" / test_file.stem
    return folder / f"{golden_stem(test_path, name)}{GOLDEN_SUFFIX}"


def check_golden(path: Path, actual: str, *, update: bool) -> Outcome:
    """Compare ``actual`` with the golden at ``path``; with ``update``, write it when it differs.

    Example:
        >>> import tempfile
        >>> golden = Path(tempfile.mkdtemp()) / "t.trace"
        >>> [check_golden(golden, "#1 step a\\n", update=u) for u in (False, True, False)]
        [<Outcome.MISSING: 'missing'>, <Outcome.WRITTEN: 'written'>, <Outcome.MATCHED: 'matched'>]
    """
    expected = path.read_text(encoding="utf-8") if path.exists() else None
    if expected == actual:
        return Outcome.MATCHED
    if not update:
        return Outcome.MISSING if expected is None else Outcome.DIFFERS
    path.parent.mkdir(parents=True, exist_ok=True)
    # "\n" on every OS, so a golden is the same bytes wherever it was written.
    path.write_text(actual, encoding="utf-8", newline="\n")
    return Outcome.WRITTEN if expected is None else Outcome.UPDATED


def golden_diff(path: Path, actual: str) -> str:
    """A unified diff from the golden at ``path`` to ``actual``."""
    expected = path.read_text(encoding="utf-8")
    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"{path.name} (golden)",
            tofile=f"{path.name} (this run)",
        )
    )


def owner_stem(golden: Path, stems: Iterable[str]) -> str | None:
    """Which of the tests' stems ``golden`` belongs to (its own, or ``stem-name``), if any.

    Example:
        >>> owner_stem(Path("t/test_a[1]-x.trace"), ["test_a", "test_a[1]"])
        'test_a[1]'
    """
    stem = golden.name.removesuffix(GOLDEN_SUFFIX)
    owners = [s for s in stems if stem == s or stem.startswith(f"{s}-")]
    return max(owners, key=len, default=None)
