"""Live progress for ``harn-trace run``: ``--trace`` lines as spans end, and a status line.

One event-stream subscriber (``events.subscribe``) does both:

* with ``--trace``, each span is printed as a JSON line on stderr the moment
  it ends (not all at exit), flushed, so a long program shows its work as it
  goes and a crash loses nothing that had ended;
* when stdout is a terminal and the run is traced, a one-line status
  (elapsed wall time, spans open and finished, tokens, cost) is redrawn in
  place about ten times a second and erased when the program ends. Program
  output goes through :attr:`LiveProgress.stdout`, which erases the status
  line before each write so the two never share a line. Nothing of it is
  written when stdout is not a terminal.

Only spans of the run's collector (whatever their trace ids, as ``--jsonl``
streaming does) are counted and printed.
"""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final, TextIO, final

from .. import events
from ..clock import SystemClock
from ..collector import SpanCollector
from ..export import span_to_dict
from ..export._encoding import json_safe, write_terminal
from ..export._io import ended_span_of
from ..export.causal import span_usage

__all__ = ("LiveProgress", "live_progress")

_ERASE: Final = "\r\x1b[2K"
_TICK_S: Final = 0.1


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed or odd stream is not a terminal
        return False


@final
class _StatusAwareStream:
    """Program output: erases the status line before writing (see module doc)."""

    def __init__(self, progress: LiveProgress, stream: TextIO) -> None:
        self._progress = progress
        self._stream = stream

    def write(self, text: str) -> int:
        progress = self._progress
        with progress._lock:
            progress._erase()
            written = self._stream.write(text)
            if text:
                # A status drawn after a partial line would erase that line's text.
                progress._at_line_start = text.endswith("\n")
                if progress._at_line_start:
                    progress.draw()  # keep the status below the output, not flickering
            return written

    def flush(self) -> None:
        self._stream.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


@final
class LiveProgress:
    """The subscriber behind ``--trace`` streaming and the terminal status line.

    ``trace`` receives a JSON line per ended span (None: no lines);
    ``terminal`` receives the status line (None: no status). Use
    :func:`live_progress`, which decides both from the command line.

    Example:
        >>> import io
        >>> with LiveProgress(SpanCollector(), trace=None, terminal=None) as live:
        ...     live.status_text().endswith("s  0 open  0 finished")
        True
    """

    def __init__(
        self, collector: SpanCollector, *, trace: TextIO | None, terminal: TextIO | None
    ) -> None:
        self.collector = collector
        self.trace = trace
        self.terminal = terminal
        self.open = 0
        self.finished = 0
        self.tokens = 0
        self.cost_usd = 0.0
        self._lock = threading.RLock()
        self._shown = False
        self._at_line_start = True
        self._clock = SystemClock()
        self._began = self._clock.monotonic_ns()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._subscription: events.Subscription | None = events.subscribe(self._on_event)
        if terminal is not None:
            self._ticker = threading.Thread(
                target=self._tick, name="harn-trace-status", daemon=True
            )
            self._ticker.start()

    def wrap(self, stream: TextIO) -> TextIO:
        """``stream`` for program output (erases the status before each write when one is shown)."""
        if self.terminal is None:
            return stream
        return _StatusAwareStream(self, stream)  # type: ignore[return-value]  # a TextIO stand-in

    def _on_event(self, event: events.SpanStartEvent | events.SpanEndEvent) -> None:
        if type(event) is events.SpanStartEvent:
            if event.collector is self.collector:
                with self._lock:
                    self.open += 1
            return
        span = ended_span_of(event, None, self.collector)
        if span is None:
            return
        usage = span_usage(span)
        with self._lock:
            self.open = max(0, self.open - 1)
            self.finished += 1
            self.tokens += usage.tokens
            self.cost_usd += usage.cost_usd
            if self.trace is not None:
                self._erase()
                # The encoding rule first: any metadata value, never a raw ESC.
                line = json.dumps(json_safe(span_to_dict(span)), sort_keys=True)
                write_terminal(self.trace, line + "\n")
                self.trace.flush()
                self._at_line_start = True
                self.draw()

    def status_text(self) -> str:
        """The status line's text (no escape codes)."""
        elapsed = (self._clock.monotonic_ns() - self._began) / 1e9
        text = f"{elapsed:.1f}s  {self.open} open  {self.finished} finished"
        if self.tokens:
            text += f"  {self.tokens} tokens"
        if self.cost_usd:
            text += "  $" + f"{self.cost_usd:.6f}".rstrip("0").rstrip(".")
        return text

    def draw(self) -> None:
        """Redraw the status line now (the ticker calls this)."""
        if self.terminal is None:
            return
        width = shutil.get_terminal_size((80, 24)).columns
        with self._lock:
            if not self._at_line_start:
                return
            text = self.status_text()[: max(width - 1, 10)]
            self.terminal.write(f"{_ERASE}{text}")
            self.terminal.flush()
            self._shown = True

    def _erase(self) -> None:
        if self._shown and self.terminal is not None:
            self.terminal.write(_ERASE)
            self.terminal.flush()
            self._shown = False

    def _tick(self) -> None:
        while not self._stop.wait(_TICK_S):
            try:
                self.draw()
            except (OSError, ValueError):  # the terminal went away: stop drawing
                return

    def close(self) -> None:
        """Unsubscribe, stop the ticker and erase the status line (idempotent)."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            subscription.close()
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            try:
                self._erase()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> LiveProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def live_progress(
    collector: SpanCollector, stdout: TextIO, stderr: TextIO, *, trace: bool, traced: bool
) -> Iterator[tuple[TextIO, TextIO]]:
    """While the block runs: ``--trace`` lines to stderr, and the status on a terminal stdout.

    Yields the (stdout, stderr) the program and its error report should
    write to: on a terminal they erase the status line first.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> with live_progress(SpanCollector(), out, out, trace=False, traced=True) as (o, e):
        ...     o is out and e is out
        True
    """
    terminal = stdout if traced and _isatty(stdout) else None
    with LiveProgress(collector, trace=stderr if trace else None, terminal=terminal) as live:
        yield live.wrap(stdout), live.wrap(stderr)
