"""Parser plumbing shared by the statement and expression parsers: token
cursor, error positions, newline/continuation rules, parameter lists and
(ignored) type annotations.
"""

from __future__ import annotations

from vm_demo import ast as A
from vm_demo.errors import HarnSyntaxError, Location
from vm_demo.lexer import T, Token

# Operators that continue an expression when they start the next line.
_CONTINUATION = frozenset(
    {"+", "*", "/", "%", "&&", "||", "??", "==", "!=", "<=", ">=", "<", ">", "|>", ".", "?."}
)


class ParserBase:
    """Token cursor and helpers; `Parser` (statements) builds on `ExprParser`."""

    def __init__(self, tokens: list[Token], filename: str) -> None:
        self.toks = tokens
        self.i = 0
        self.filename = filename

    # -- token helpers -------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.type is not T.EOF:
            self.i += 1
        return t

    def error(self, msg: str, tok: Token | None = None) -> HarnSyntaxError:
        t = tok or self.tok
        if tok is None and t.type in (T.NEWLINE, T.EOF) and self.i > 0:
            # Point just past the last real token, not at the next line.
            prev = self.toks[self.i - 1]
            width = len(str(prev.value)) if prev.type in (T.IDENT, T.KEYWORD, T.OP) else 1
            return HarnSyntaxError(msg, Location(self.filename, prev.line, prev.col + width))
        return HarnSyntaxError(msg, Location(self.filename, t.line, t.col))

    def _describe(self, t: Token) -> str:
        if t.type is T.EOF:
            return "end of file"
        if t.type is T.NEWLINE:
            return "end of line"
        if t.type is T.STRING:
            return "a string"
        return repr(str(t.value))

    def expect_op(self, op: str) -> Token:
        if not self.tok.is_op(op):
            raise self.error(f"expected '{op}', found {self._describe(self.tok)}")
        return self.advance()

    def expect_kw(self, kw: str) -> Token:
        if not self.tok.is_kw(kw):
            raise self.error(f"expected '{kw}', found {self._describe(self.tok)}")
        return self.advance()

    def expect_name(self) -> str:
        t = self.tok
        if t.type is T.IDENT:
            return str(self.advance().value)
        raise self.error(f"expected a name, found {self._describe(t)}")

    def skip_newlines(self) -> None:
        while self.tok.type is T.NEWLINE or self.tok.is_op(";"):
            self.advance()

    def _continues(self) -> bool:
        """At a NEWLINE: skip it if the next line starts with a continuation op."""
        j = self.i
        while self.toks[j].type is T.NEWLINE:
            j += 1
        t = self.toks[j]
        if t.type is T.OP and t.value in _CONTINUATION:
            self.i = j
            return True
        return False

    def at_op(self, *ops: str) -> bool:
        t = self.tok
        if t.type is T.NEWLINE and self._peek_continuation(ops):
            self._continues()
            t = self.tok
        return t.type is T.OP and t.value in ops

    def _peek_continuation(self, ops: tuple[str, ...]) -> bool:
        j = self.i
        while self.toks[j].type is T.NEWLINE:
            j += 1
        t = self.toks[j]
        return t.type is T.OP and t.value in ops and t.value in _CONTINUATION

    # -- shared by statements and expressions -------------------------------------

    def statement(self) -> A.Node:
        raise NotImplementedError  # Parser.statement

    def end_statement(self) -> None:
        raise NotImplementedError  # Parser.end_statement

    def block(self) -> list[A.Node]:
        self.expect_op("{")
        return self.block_rest()

    def block_rest(self) -> list[A.Node]:
        """The statements of a block whose `{` is already consumed, through its `}`."""
        body: list[A.Node] = []
        self.skip_newlines()
        while not self.tok.is_op("}"):
            if self.tok.type is T.EOF:
                raise self.error("expected '}' before end of file")
            body.append(self.statement())
            self.end_statement()
        self.advance()
        return body

    def params(self) -> list[A.Param]:
        self.expect_op("(")
        out: list[A.Param] = []
        while not self.tok.is_op(")"):
            rest = False
            if self.tok.is_op("..."):
                self.advance()
                rest = True
            out.append(A.Param(self.expect_name(), rest))
            if self.tok.is_op(":"):
                self.advance()
                self.skip_type()
            if self.tok.is_op("="):
                raise self.error("default parameter values are not supported")
            if not self.tok.is_op(")"):
                self.expect_op(",")
        self.advance()
        if self.tok.is_op("->"):
            self.advance()
            self.skip_type()
        return out

    def skip_type(self) -> None:
        """Consume a type expression (ignored by this dynamically typed subset)."""
        depth = 0
        while True:
            t = self.tok
            if t.type is T.EOF or (t.type is T.NEWLINE and depth == 0):
                return
            if depth == 0 and (
                t.is_op(",") or t.is_op(")") or t.is_op("=") or (t.is_op("{") and self._typed())
            ):
                return
            if t.type is T.OP and t.value in ("<", "(", "[", "{"):
                depth += 1
            elif t.type is T.OP and t.value in (">", ")", "]", "}"):
                depth -= 1
            self.advance()

    def _typed(self) -> bool:
        # A `{` right after a complete type is the body, not a shape type.
        prev = self.toks[self.i - 1]
        return not (prev.is_op(":") or prev.is_op("->") or prev.is_op("|"))
