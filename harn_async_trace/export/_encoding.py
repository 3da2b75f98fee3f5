"""The one rule by which every exporter writes any value as JSON, and any text to a terminal.

Metadata comes from user code, so a value can be anything: NaN, an int of
10,000 digits, a dict that contains itself, tuple keys, bytes, a Harn
``Closure``, a string with a lone surrogate from badly decoded bytes. Each
exporter must still write valid (RFC 8259), strict UTF-8 JSON and never
raise, and every exporter must spell the same value the same way. The rule
(docs/exporters.md, "Encoding any value") in brief:

* JSON types as JSON writes them; tuples are arrays, sets are arrays sorted
  by their JSON text (so a replay writes the same bytes);
* NaN / inf / -inf -> the strings ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``
  (proto3 JSON's spelling, so OTLP/JSON readers take them as doubles);
* an int of more than 4,300 digits (what Python itself, ``json.loads``
  included, refuses to convert) -> the string ``"0x..."`` of its hex digits;
* dict keys: a str as is; int/float/bool/None spelled as the json module
  does (``"1"``, ``"1.5"``, ``"true"``, ``"null"``); any other key its repr;
* any other object -> its ``str()`` if its class defines one (a ``Path``,
  an exception, a ``Decimal``), else its ``repr()`` (``b'\\x00'`` for bytes);
  the default ``<... object at 0x...>`` drops the address so replays stay
  byte-identical; at most 10,000 characters;
* a container met again inside itself -> ``"<cycle>"``; containers nested
  deeper than 100 levels -> ``"<nested too deep>"`` (every common parser
  reads the result; serde_json stops at 128); a container shared by several
  places is written at each, but once such repeats add 100,000 items the
  next is ``"<truncated>"`` (a list doubled 40 times is small in memory but
  2**40 items written out, and must not hang an export);
* a lone surrogate in any string -> the six characters ``\\udcXX``
  (backslash text, like Python's ``backslashreplace``), so the output is
  strict UTF-8 for every reader.

Terminal text (:func:`terminal_text`) also shows C0/C1 control characters
(ESC, CR, ...) as ``\\xHH``, so a span name cannot drive the terminal.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]  # C speedups, untyped
from typing import Any, Final, TextIO

__all__ = (
    "CYCLE",
    "MAX_DEPTH",
    "MAX_ITEMS",
    "TOO_DEEP",
    "TRUNCATED",
    "dumps",
    "int_text",
    "json_int",
    "json_safe",
    "json_string",
    "safe_text",
    "terminal_text",
    "text_of",
    "write_terminal",
)

MAX_DEPTH: Final = 100
MAX_ITEMS: Final = 100_000
MAX_REPR: Final = 10_000
CYCLE: Final = "<cycle>"
TOO_DEEP: Final = "<nested too deep>"
TRUNCATED: Final = "<truncated>"
# Python's default int_max_str_digits: past it str(int) and json.loads fail.
_MAX_DECIMAL: Final = 10**4300
_NON_FINITE: Final = {math.inf: "Infinity", -math.inf: "-Infinity"}
_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
_STR: Final = frozenset({str})
_SHALLOW_ITEMS: Final = 64  # 64**3 items at most: far below MAX_ITEMS
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
# C0 controls but newline and tab, DEL, C1 controls (0x9b is a one-byte CSI), surrogates.
_UNSAFE_FOR_TERMINAL: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")



def _refuse(value: object) -> Any:
    raise TypeError("not a JSON type")  # the fast path gives up; the walk knows the rule


def _encoder(*, sort_keys: bool) -> Callable[[Any], str]:
    # c_make_encoder built once: JSONEncoder.encode builds a new one per call,
    # which is most of its cost on a small dict. No circular check: the fast
    # path only sees shallow values and the walk has cut every cycle.
    if c_make_encoder is None:  # no C accelerator (another interpreter)
        encoder = json.JSONEncoder(
            separators=(",", ":"), ensure_ascii=False, check_circular=False,
            allow_nan=False, sort_keys=sort_keys, default=_refuse,
        ).encode  # fmt: skip
        return encoder
    chunks = c_make_encoder(
        None, _refuse, encode_basestring, None, ":", ",", sort_keys, False, False
    )
    return lambda value: "".join(chunks(value, 0))


# Strict: raises on NaN/inf, an int past 4,300 digits and a non-JSON object,
# exactly where the rule rewrites, so a shallow value is tried as is first.
_encode: Final = _encoder(sort_keys=False)
_encode_sorted: Final = _encoder(sort_keys=True)
_string: Final = encode_basestring  # C-accelerated, UTF-8 kept as is


def _escape_surrogate(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def safe_text(text: str) -> str:
    """``text`` with each lone surrogate written as backslash text (strict UTF-8 safe).

    Example:
        >>> safe_text("ok \\udcff")
        'ok \\\\udcff'
    """
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return _SURROGATE.sub(_escape_surrogate, text)


def json_string(text: str) -> str:
    """``text`` as a JSON string literal under the rule (UTF-8 kept, surrogates as text).

    Example:
        >>> json_string('a"\\udcff')
        '"a\\\\"\\\\\\\\udcff"'
    """
    return _string(safe_text(text))


def int_text(value: int) -> str:
    """An int as JSON text: decimal, or a quoted hex string past 4,300 digits.

    Example:
        >>> int_text(255), int_text(16**4000)[:6]
        ('255', '"0x100')
    """
    if -_MAX_DECIMAL < value < _MAX_DECIMAL:
        return int.__repr__(value)
    return f'"{value:#x}"'


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return float.__float__(value)
    return _NON_FINITE.get(value, "NaN")


def json_int(value: int) -> int | str:
    """An int by the rule: itself, or the ``"0x..."`` string past 4,300 digits.

    Example:
        >>> json_int(7), json_int(16**4000)[:5]
        (7, '0x100')
    """
    number = int.__int__(value)
    if -_MAX_DECIMAL < number < _MAX_DECIMAL:
        return number
    return f"{number:#x}"


def text_of(value: object) -> str:
    """The text of any object: its ``str()`` if its class defines one, else its ``repr()``.

    Never raises; the default repr's memory address is left out (replays
    stay byte-identical), lone surrogates are made safe, and the text is
    cut at 10,000 characters.

    Example:
        >>> from pathlib import PurePosixPath
        >>> text_of("m"), text_of(PurePosixPath("/x")), text_of(bytes(1)), text_of(object())
        ('m', '/x', "b'\\\\x00'", '<builtins.object object>')
    """
    if isinstance(value, str):
        return safe_text(str.__str__(value))
    kind = type(value)
    try:
        if kind.__str__ is not object.__str__ and kind.__str__ is not bytes.__str__:
            text = str(value)
        elif kind.__repr__ is object.__repr__:
            return f"<{kind.__module__}.{kind.__qualname__} object>"
        else:
            text = repr(value)
        if not isinstance(text, str):
            raise TypeError("__repr__ returned a non-string")
    except Exception:  # a hostile __repr__ must not fail an export
        return f"<{kind.__module__}.{kind.__qualname__} object (repr failed)>"
    if len(text) > MAX_REPR:
        text = text[:MAX_REPR] + "..."
    return safe_text(text)


def _key(key: object) -> str:
    if isinstance(key, str):
        return safe_text(str.__str__(key))
    if key is None or key is True or key is False:
        return "null" if key is None else ("true" if key else "false")
    if isinstance(key, float):
        clean = _float(key)
        return clean if isinstance(clean, str) else float.__repr__(clean)
    if isinstance(key, int):
        return str(json_int(key))
    return text_of(key)


def _unique_key(taken: dict[str, Any], key: object) -> str:
    # {1: "a", "1": "b"} must keep both values: the later key says its type.
    text = _key(key)
    if text not in taken:
        return text
    base = f"{text} ({type(key).__name__})"
    text, number = base, 1
    while text in taken:
        number += 1
        text = f"{base} #{number}"
    return text


class _Walk:
    """One sanitising pass over a value graph.

    ``path`` holds the containers being written (a cycle meets one again);
    ``done`` maps each container written so far to its clean copy and its
    item count, so a shared container is walked once and its copy reused;
    ``reused`` counts the items such reuses add to the output (budgeted).
    """

    __slots__ = ("done", "items", "path", "reused")

    def __init__(self) -> None:
        self.path: set[int] = set()
        self.done: dict[int, tuple[Any, int, int]] = {}
        self.items = 0
        self.reused = 0

    def value(self, value: Any, depth: int) -> Any:
        self.items += 1
        if value is None or value is True or value is False:
            return value
        if isinstance(value, str):
            return safe_text(str.__str__(value))
        if isinstance(value, int):
            return json_int(value)
        if isinstance(value, float):
            return _float(value)
        if isinstance(value, dict | list | tuple | set | frozenset | Mapping):
            return self.container(value, depth)
        return text_of(value)

    def container(self, value: Any, depth: int) -> Any:
        if depth >= MAX_DEPTH:
            return TOO_DEEP
        marker = id(value)
        if marker in self.path:
            return CYCLE
        cached = self.done.get(marker)
        if cached is not None and cached[2] == depth:
            clean, size, _ = cached
            # A list doubled 40 times is 40 lists in memory but 2**40 items
            # written out: reuses are budgeted so an export cannot hang.
            self.reused += size
            if self.reused > MAX_ITEMS:
                return TRUNCATED
            self.items += size
            return clean
        before = self.items
        self.path.add(marker)
        try:
            clean = self.copy(value, depth)
        except Exception:  # a Mapping whose items() raises, a set mutated meanwhile
            clean = text_of(value)
        finally:
            self.path.discard(marker)
        self.done[marker] = (clean, self.items - before, depth)
        return clean

    def copy(self, value: Any, depth: int) -> Any:
        if isinstance(value, dict | Mapping):
            out: dict[str, Any] = {}
            for key, item in value.items():
                out[_unique_key(out, key)] = self.value(item, depth + 1)
            return out
        items = [self.value(item, depth + 1) for item in value]
        if isinstance(value, set | frozenset):
            items.sort(key=_encode_sorted)
        return items


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that the stdlib json encoder writes as strict JSON, by the rule.

    Example:
        >>> loop = [1]; loop.append(loop)
        >>> json_safe({"x": float("nan"), (1, 2): loop, "b": b"\\x00"})
        {'x': 'NaN', '(1, 2)': [1, '<cycle>'], 'b': "b'\\\\x00'"}
    """
    return _Walk().value(value, 0)


def _shallow(value: Any, depth: int) -> bool:
    kind = type(value)
    if kind is dict:
        if len(value) > _SHALLOW_ITEMS:
            return False
        # The common case, a flat dict of plain values, checked in C.
        if _SCALARS.issuperset(map(type, value.values())) and _STR.issuperset(map(type, value)):
            return True
        for key, item in value.items():
            if type(key) is not str or (
                type(item) not in _SCALARS and (depth == 0 or not _shallow(item, depth - 1))
            ):
                return False
        return True
    if kind is list or kind is tuple:
        if len(value) > _SHALLOW_ITEMS:
            return False
        for item in value:
            if type(item) not in _SCALARS and (depth == 0 or not _shallow(item, depth - 1)):
                return False
        return True
    return kind in _SCALARS


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON text of any value by the rule; UTF-8 kept; never raises.

    Example:
        >>> dumps({"a": (1, 2), "n": float("inf"), "o": object()})
        '{"a":[1,2],"n":"Infinity","o":"<builtins.object object>"}'
    """
    if _shallow(value, 2):
        # Small shallow values (nearly all metadata, links and events): no
        # cycle, depth or budget to watch, so the C encoder writes them; it
        # raises on NaN and huge ints, which the walk then rewrites.
        try:
            text = (_encode_sorted if sort_keys else _encode)(value)
        except (ValueError, TypeError):
            pass
        else:
            if text.isascii() or _SURROGATE.search(text) is None:
                return text
    clean = json_safe(value)
    return (_encode_sorted if sort_keys else _encode)(clean)


def terminal_text(text: str) -> str:
    """``text`` fit for a terminal: control characters but newline/tab shown as ``\\xHH``.

    Lone surrogates become ``\\udcXX`` as in JSON output.

    Example:
        >>> terminal_text("red \\x1b[31m\\r")
        'red \\\\x1b[31m\\\\x0d'
    """
    if _UNSAFE_FOR_TERMINAL.search(text) is None:
        return text
    return _UNSAFE_FOR_TERMINAL.sub(_escape_for_terminal, text)


def _escape_for_terminal(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}"


def write_terminal(out: TextIO, text: str) -> None:
    """Write ``text`` to ``out`` as :func:`terminal_text`, in what ``out`` can encode.

    A character the stream's encoding lacks is written as its escape
    instead of failing (an ASCII-only or strict stdout).

    Example:
        >>> import sys
        >>> write_terminal(sys.stdout, "red \\x1b[31m\\n")
        red \\x1b[31m
    """
    safe = terminal_text(text)
    try:
        out.write(safe)
    except UnicodeEncodeError:
        encoding = getattr(out, "encoding", None) or "utf-8"
        out.write(safe.encode(encoding, "backslashreplace").decode(encoding))
