"""Reading a saved trace back: JSONL (one span per line) or a ``--json`` array.

Every way a file can be wrong ends in one :class:`TraceFileError` whose
message starts with ``file:line:`` and says what is wrong: a missing or
unreadable file, text that is not UTF-8, invalid JSON (a number of more than
4,300 digits and nesting too deep for the parser included), a line that is
not a span object, or a field of the wrong type or range (checked by
:func:`span_from_dict`). Nothing else escapes, so the CLI never shows a
traceback for a bad file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any, Final

from ..model import Span
from .dicts import span_from_dict

__all__ = ("TraceFileError", "read_jsonl")

_WHITESPACE: Final = " \t\n\r"
_DECODER: Final = json.JSONDecoder()


class TraceFileError(ValueError):
    """A saved trace file is missing or malformed; the message names ``file:line``."""


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} (column {exc.colno})"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply to read"
    # The only other ValueError json raises: int() past sys.int_max_str_digits.
    return "invalid JSON: a number has more than 4,300 digits"


def _span(data: Any, where: str) -> Span:
    if not isinstance(data, dict):
        raise TraceFileError(f"{where}: expected a span object, got {type(data).__name__}")
    try:
        return span_from_dict(data, where=where)
    except ValueError as exc:
        raise TraceFileError(str(exc)) from None


def _jsonl(first: str, first_lineno: int, lines: Iterator[str], name: str) -> Iterator[Span]:
    line, lineno = first, first_lineno
    while True:
        if line.strip():
            where = f"{name}:{lineno}"
            try:
                data = json.loads(line)
            except (ValueError, RecursionError) as exc:
                raise TraceFileError(f"{where}: {_json_error(exc)}") from None
            yield _span(data, where)
        next_line = next(lines, None)
        if next_line is None:
            return
        line, lineno = next_line, lineno + 1


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _WHITESPACE:
        pos += 1
    return pos


def _array(text: str, first_lineno: int, name: str) -> Iterator[Span]:
    # raw_decode element by element: each span error names its own line.
    pos = _skip_space(text, 0) + 1  # past "["
    lineno, counted = first_lineno, 0
    expect_item, count = True, 0
    while True:
        pos = _skip_space(text, pos)
        lineno += text.count("\n", counted, pos)
        counted = pos
        where = f"{name}:{lineno}"
        if pos >= len(text):
            raise TraceFileError(f"{where}: invalid JSON: the array is not closed with ']'")
        if text[pos] == "]" and (not expect_item or count == 0):
            rest = _skip_space(text, pos + 1)
            if rest < len(text):
                lineno += text.count("\n", pos, rest)
                raise TraceFileError(f"{name}:{lineno}: invalid JSON: text after the array")
            return
        if not expect_item:
            if text[pos] != ",":
                raise TraceFileError(f"{where}: invalid JSON: expected ',' or ']' between spans")
            pos += 1
            expect_item = True
            continue
        try:
            data, end = _DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            line = exc.lineno if isinstance(exc, json.JSONDecodeError) else 0
            where = f"{name}:{first_lineno - 1 + line}" if line else where
            raise TraceFileError(f"{where}: {_json_error(exc)}") from None
        yield _span(data, where)
        pos, expect_item, count = end, False, count + 1


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[Span]:
    """Yield the spans of a saved trace lazily: JSONL, or a JSON array (``--json``).

    Blank lines are skipped. Raises :class:`TraceFileError` naming
    ``file:line`` for a missing file, bad JSON or a bad span record.

    Example:
        >>> import tempfile, pathlib
        >>> from harn_async_trace.export import write_jsonl
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.jsonl"; _ = write_jsonl([], p)
        >>> list(read_jsonl(p))
        []
    """
    if not isinstance(path, str | os.PathLike):
        raise TypeError(
            f"read_jsonl(): path must be a str or os.PathLike, got {type(path).__name__}"
        )
    name = os.fspath(path)
    try:
        handle = open(name, encoding="utf-8")
    except FileNotFoundError:
        raise TraceFileError(f"{name}: no such file") from None
    except OSError as exc:
        raise TraceFileError(f"{name}: cannot read: {exc.strerror or exc}") from None
    with handle:
        try:
            yield from _read(handle, name)
        except UnicodeDecodeError as exc:
            raise TraceFileError(f"{name}: not a UTF-8 text file ({exc.reason})") from None
        except OSError as exc:  # e.g. a directory, an I/O error mid-file
            raise TraceFileError(f"{name}: cannot read: {exc.strerror or exc}") from None


def _read(handle: Any, name: str) -> Iterator[Span]:
    lines = iter(handle)
    lineno = 0
    for line in lines:
        lineno += 1
        if not line.strip():
            continue
        if line.lstrip().startswith("["):
            yield from _array(line + handle.read(), lineno, name)
        else:
            yield from _jsonl(line, lineno, lines, name)
        return
