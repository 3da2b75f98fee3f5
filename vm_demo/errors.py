"""Errors raised by the Harn front end and VM, all carrying file:line:col.

`HarnSyntaxError` comes from the lexer/parser/compiler; `HarnRuntimeError`
from the VM. A runtime error carries the Harn *value* that was thrown (for
`throw x` it is `x`; for internal errors it is the message string) so that
`catch (e)` can bind it, plus the call chain collected while unwinding.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from harn_async_trace import span_end, span_set_metadata
from vm_demo.objects import to_display

__all__ = (
    "HarnError",
    "HarnRuntimeError",
    "HarnSyntaxError",
    "Location",
    "TraceEntry",
    "deep_recursion",
    "ending_span",
    "register_source",
    "source_line",
)


@dataclass(frozen=True, slots=True)
class Location:
    """A source position: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# Source texts by file name, so any error can show its line with a caret.
_SOURCES: dict[str, list[str]] = {}


def register_source(filename: str, text: str) -> None:
    """Remember `text` as the contents of `filename` for error reports."""
    _SOURCES[filename] = text.split("\n")


def source_line(filename: str, line: int) -> str:
    """Return line `line` (1-based) of a registered source, or ``""``."""
    lines = _SOURCES.get(filename)
    if lines is None or not 0 < line <= len(lines):
        return ""
    return lines[line - 1]


# Parsing and compiling recurse once per nesting level (about 15 Python frames
# per nested block); raise the limit while they run so deeply nested but valid
# programs compile, and turn a real overflow into a syntax error.
_DEEP_RECURSION = 20_000


@contextmanager
def deep_recursion() -> Iterator[None]:
    """Run a recursive front-end pass with a raised recursion limit."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, _DEEP_RECURSION))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


class HarnError(Exception):
    """Base class for every error reported to a Harn user."""


class HarnSyntaxError(HarnError):
    """A lexing, parsing or compile-time error at a known position."""

    def __init__(self, message: str, loc: Location) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc
        self.source_line = source_line(loc.file, loc.line)

    def render(self) -> str:
        """Return `error: msg`, `--> file:line:col`, the source line and a caret."""
        return "\n".join([f"error: {self.message}", f"  --> {self.loc}", *_caret(self.loc)])

    def __str__(self) -> str:
        return f"{self.loc}: {self.message}"


def _caret(loc: Location) -> list[str]:
    """The source line of `loc` with a caret under its column (none if unknown)."""
    text = source_line(loc.file, loc.line)
    if not text:
        return []
    num = str(loc.line)
    pad = " " * len(num)
    return [f"{pad} |", f"{num} | {text}", f"{pad} | {' ' * (loc.col - 1)}^"]


@dataclass(slots=True)
class TraceEntry:
    """One `called from` line of a runtime error's call chain."""

    function: str
    file: str
    line: int


class HarnRuntimeError(HarnError):
    """An error thrown while the program runs (by `throw` or by the VM)."""

    def __init__(self, value: Any, message: str | None = None) -> None:
        self.value = value
        self.message = message if message is not None else _describe(value)
        super().__init__(self.message)
        self.loc: Location | None = None
        self.trace: list[TraceEntry] = []
        self.thrown = False  # raised by a Harn `throw` (not by the VM)
        self.cancelled = False  # a `deadline` expiring: spans it unwinds are cancelled
        # Set when this stands for a task cancellation running `finally` bodies on
        # its way out; RERAISE then raises the cancellation itself, which no catch takes.
        self.cancellation: BaseException | None = None

    def render(self) -> str:
        """Return the `error: ...` report with location and call chain."""
        out = [f"error: {self.message}"]
        if self.loc is not None:
            out.append(f"  --> {self.loc}")
            out.extend(_caret(self.loc))
        for entry in self.trace:
            out.append(f"  = note: called from {entry.function} at {entry.file}:{entry.line}")
        return "\n".join(out)

    def __str__(self) -> str:
        if self.loc is None:
            return self.message
        return f"{self.loc}: {self.message}"


def _describe(value: Any) -> str:
    return to_display(value)


@contextmanager
def ending_span(sid: int) -> Iterator[None]:
    """End span ``sid`` (0: none) when the block exits; a Harn error's message is its ``error``.

    For the spans the runtime opens around a whole piece of Harn work (a
    pipeline run, a tool call), whatever way that work ends.
    """
    try:
        yield
    except HarnRuntimeError as e:
        if sid:
            span_set_metadata(sid, "error", e.message)
            if e.cancelled:
                span_set_metadata(sid, "cancelled", True)
        raise
    except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
        if sid:
            span_set_metadata(sid, "cancelled", True)
        raise
    finally:
        if sid:
            span_end(sid)
