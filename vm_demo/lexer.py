"""Lexer: Harn source text -> a list of `Token`s.

Newlines are significant (they end statements), so the lexer emits `NEWLINE`
tokens, except inside `(...)` and `[...]` where expressions may span lines.
String literals with `${...}` interpolation are split here into literal
parts and the *source text* of each embedded expression (with its position);
the parser lexes and parses those fragments recursively.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from vm_demo.errors import HarnSyntaxError, Location

__all__ = ("KEYWORDS", "Lexer", "StrExpr", "T", "Token", "tokenize")


class T(Enum):
    """Token types."""

    INT = "int"
    FLOAT = "float"
    STRING = "string"
    DURATION = "duration"
    IDENT = "ident"
    KEYWORD = "keyword"
    OP = "op"
    NEWLINE = "newline"
    EOF = "eof"


KEYWORDS = frozenset(
    {
        "pipeline",
        "fn",
        "let",
        "var",
        "if",
        "else",
        "for",
        "in",
        "while",
        "break",
        "continue",
        "return",
        "true",
        "false",
        "nil",
        "try",
        "catch",
        "finally",
        "throw",
        "import",
        "from",
        "spawn",
        "parallel",
        "deadline",
        "select",
        "not",
        "pub",
        "to",
        "exclusive",
        "each",
        "settle",
        "with",
        "timeout",
        "match",
        "guard",
        "require",
        "retry",
        "defer",
        "struct",
        "enum",
        "impl",
        "interface",
        "yield",
        "mutex",
    }
)

_OPS = sorted(
    [
        "==",
        "!=",
        "<=",
        ">=",
        "&&",
        "||",
        "??",
        "?.",
        "->",
        "+=",
        "-=",
        "*=",
        "/=",
        "%=",
        "|>",
        "**",
        "...",
        "+",
        "-",
        "*",
        "/",
        "%",
        "<",
        ">",
        "=",
        "!",
        "(",
        ")",
        "[",
        "]",
        "{",
        "}",
        ",",
        ".",
        ":",
        ";",
        "?",
        "@",
        "|",
    ],
    key=len,
    reverse=True,
)
# ASCII only: str.isdigit() is also true for superscripts, which int() rejects.
_DIGITS = frozenset("0123456789")
_DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


@dataclass(slots=True)
class StrExpr:
    """An interpolated `${...}` fragment inside a string literal."""

    source: str
    line: int
    col: int


@dataclass(slots=True)
class Token:
    """One token; `value` is the decoded literal (int, float, parts list...)."""

    type: T
    value: Any
    line: int
    col: int

    def is_op(self, op: str) -> bool:
        return self.type is T.OP and self.value == op

    def is_kw(self, kw: str) -> bool:
        return self.type is T.KEYWORD and self.value == kw


class Lexer:
    """Tokenise one source text. `line`/`col` offsets support fragments."""

    def __init__(self, source: str, filename: str, line: int = 1, col: int = 1) -> None:
        self.src = source
        self.filename = filename
        self.pos = 0
        self.line = line
        self.col = col
        # Open brackets; newlines are skipped while the innermost is ( or [,
        # but a `{` (block or closure body) makes them significant again.
        self.brackets: list[str] = []
        self.tokens: list[Token] = []

    def error(self, msg: str, line: int | None = None, col: int | None = None) -> HarnSyntaxError:
        ln = self.line if line is None else line
        cl = self.col if col is None else col
        return HarnSyntaxError(msg, Location(self.filename, ln, cl))

    def _adv(self, n: int = 1) -> None:
        for _ in range(n):
            if self.pos >= len(self.src):  # never step past the end (`"${"` used to IndexError)
                return
            if self.src[self.pos] == "\n":
                self.line += 1
                self.col = 1
            else:
                self.col += 1
            self.pos += 1

    def _add(self, typ: T, value: Any, line: int, col: int) -> None:
        self.tokens.append(Token(typ, value, line, col))

    def tokenize(self) -> list[Token]:
        src = self.src
        n = len(src)
        while self.pos < n:
            c = src[self.pos]
            if c == "\n":
                if not self.brackets or self.brackets[-1] == "{":
                    self._add(T.NEWLINE, None, self.line, self.col)
                self._adv()
            elif c in " \t\r":
                self._adv()
            elif c == "\\" and src.startswith("\\\n", self.pos):
                self._adv(2)  # explicit line continuation
            elif src.startswith("//", self.pos):
                while self.pos < n and src[self.pos] != "\n":
                    self._adv()
            elif src.startswith("/*", self.pos):
                self._block_comment()
            elif c in _DIGITS:
                self._number()
            elif c == '"' or (c == "r" and src.startswith('r"', self.pos)):
                self._string()
            elif c.isalpha() or c == "_":
                self._ident()
            else:
                self._op()
        self._add(T.NEWLINE, None, self.line, self.col)
        self._add(T.EOF, None, self.line, self.col)
        return self.tokens

    def _block_comment(self) -> None:
        line, col = self.line, self.col
        depth = 0
        while self.pos < len(self.src):
            if self.src.startswith("/*", self.pos):
                depth += 1
                self._adv(2)
            elif self.src.startswith("*/", self.pos):
                depth -= 1
                self._adv(2)
                if depth == 0:
                    return
            else:
                self._adv()
        raise self.error("unterminated block comment", line, col)

    def _number(self) -> None:
        src, start, line, col = self.src, self.pos, self.line, self.col
        while self.pos < len(src) and (src[self.pos] in _DIGITS or src[self.pos] == "_"):
            self._adv()
        is_float = False
        if self.pos + 1 < len(src) and src[self.pos] == "." and src[self.pos + 1] in _DIGITS:
            is_float = True
            self._adv()
            while self.pos < len(src) and src[self.pos] in _DIGITS:
                self._adv()
        text = src[start : self.pos].replace("_", "")
        # Duration literal: a number immediately followed by a unit.
        for unit in ("ms", "s", "m", "h"):
            end = self.pos + len(unit)
            if src.startswith(unit, self.pos) and not (
                end < len(src) and (src[end].isalnum() or src[end] == "_")
            ):
                self._adv(len(unit))
                ms = float(text) * _DURATION_UNITS[unit]
                self._add(T.DURATION, int(ms), line, col)
                return
        if is_float:
            self._add(T.FLOAT, float(text), line, col)
        else:
            self._add(T.INT, int(text), line, col)

    def _ident(self) -> None:
        src, start, line, col = self.src, self.pos, self.line, self.col
        while self.pos < len(src) and (src[self.pos].isalnum() or src[self.pos] == "_"):
            self._adv()
        word = src[start : self.pos]
        self._add(T.KEYWORD if word in KEYWORDS else T.IDENT, word, line, col)

    def _op(self) -> None:
        for op in _OPS:
            if self.src.startswith(op, self.pos):
                if op in ("(", "[", "{"):
                    self.brackets.append(op)
                elif op in (")", "]", "}") and self.brackets:
                    self.brackets.pop()
                self._add(T.OP, op, self.line, self.col)
                self._adv(len(op))
                return
        raise self.error(f"unexpected character {self.src[self.pos]!r}")

    # -- strings -------------------------------------------------------------

    def _string(self) -> None:
        line, col = self.line, self.col
        if self.src[self.pos] == "r":
            self._adv(2)
            start = self.pos
            while self.pos < len(self.src) and self.src[self.pos] not in '"\n':
                self._adv()
            if self.pos >= len(self.src) or self.src[self.pos] != '"':
                raise self.error("unterminated string literal", line, col)
            text = self.src[start : self.pos]
            self._adv()
            self._add(T.STRING, [text], line, col)
            return
        triple = self.src.startswith('"""', self.pos)
        self._adv(3 if triple else 1)
        parts: list[str | StrExpr] = []
        buf: list[str] = []
        while True:
            if self.pos >= len(self.src):
                raise self.error("unterminated string literal", line, col)
            c = self.src[self.pos]
            if triple and self.src.startswith('"""', self.pos):
                self._adv(3)
                break
            if not triple and c == '"':
                self._adv()
                break
            if not triple and c == "\n":
                raise self.error("unterminated string literal", line, col)
            if c == "\\":
                self._adv()
                if self.pos >= len(self.src):
                    raise self.error("unterminated string literal", line, col)
                esc = self.src[self.pos]
                mapped = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "$": "$", "r": "\r"}
                if esc not in mapped:
                    raise self.error(f"unknown escape sequence \\{esc}")
                buf.append(mapped[esc])
                self._adv()
            elif c == "$" and self.src.startswith("${", self.pos):
                if buf:
                    parts.append("".join(buf))
                    buf = []
                self._adv(2)
                parts.append(self._interp())
            else:
                buf.append(c)
                self._adv()
        if buf:
            parts.append("".join(buf))
        if triple:
            parts = _dedent(parts)
        self._add(T.STRING, parts, line, col)

    def _interp(self) -> StrExpr:
        """Scan to the `}` matching `${`, skipping nested braces and strings."""
        line, col, start = self.line, self.col, self.pos
        depth = 0
        while self.pos < len(self.src):
            c = self.src[self.pos]
            if c == '"':
                self._skip_nested_string()
                continue
            if c == "{":
                depth += 1
            elif c == "}":
                if depth == 0:
                    text = self.src[start : self.pos]
                    self._adv()
                    return StrExpr(text, line, col)
                depth -= 1
            self._adv()
        raise self.error("unterminated ${ in string", line, col)

    def _skip_nested_string(self) -> None:
        self._adv()
        while self.pos < len(self.src) and self.src[self.pos] != '"':
            if self.src[self.pos] == "\\":
                self._adv()
            self._adv()
        self._adv()


def _dedent(parts: list[str | StrExpr]) -> list[str | StrExpr]:
    """Strip the common indent of a `\"\"\"` string and its edge newlines."""
    text_parts = [p for p in parts if isinstance(p, str)]
    joined = "\x00".join(text_parts)
    lines = joined.split("\n")
    indents = [len(ln) - len(ln.lstrip(" ")) for ln in lines[1:] if ln.strip(" \x00")]
    cut = min(indents) if indents else 0
    out: list[str | StrExpr] = []
    for i, p in enumerate(parts):
        if not isinstance(p, str):
            out.append(p)
            continue
        segs = p.split("\n")
        segs = [segs[0]] + [s[cut:] if len(s) >= cut else s.lstrip(" ") for s in segs[1:]]
        s = "\n".join(segs)
        if i == 0 and s.startswith("\n"):
            s = s[1:]
        if i == len(parts) - 1:
            s = s.rstrip(" ")
            if s.endswith("\n"):
                s = s[:-1]
        if s:
            out.append(s)
    return out


def tokenize(source: str, filename: str = "<input>", line: int = 1, col: int = 1) -> list[Token]:
    """Tokenise `source`: `tokenize("let x = 1")[0].value == "let"`."""
    return Lexer(source, filename, line, col).tokenize()
