"""Parser plumbing shared by the statement and expression parsers: token
cursor, error positions, newline/continuation rules, parameter lists and
(ignored) type annotations.
"""

from __future__ import annotations

from typing import Any

from vm_demo import ast as A
from vm_demo.errors import HarnSyntaxError, Location
from vm_demo.lexer import T, Token

__all__ = ("RUNTIME_TYPES", "ParserBase")

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
        # Names declared with `struct` anywhere in the file, so `Name { ... }`
        # reads as a struct literal even before its declaration.
        self.struct_names = frozenset(
            str(tokens[k + 1].value)
            for k in range(len(tokens) - 1)
            if tokens[k].is_kw("struct") and tokens[k + 1].type is T.IDENT
        )
        self.no_struct_literal = False

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
        self.skip_newlines()
        while not self.tok.is_op(")"):
            out.append(self.param())
            self.skip_newlines()
            if not self.tok.is_op(")"):
                self.expect_op(",")
                self.skip_newlines()
        self.advance()
        if self.tok.is_op("->"):
            self.advance()
            self.skip_type()
        self.skip_where()
        return out

    def param(self) -> A.Param:
        """One parameter: `...rest`, `name`, `name: type`, `name = default`."""
        rest = False
        if self.tok.is_op("..."):
            self.advance()
            rest = True
        name = self.expect_name()
        types = None
        if self.tok.is_op(":"):
            self.advance()
            types = _runtime_types(self.skip_type())
        default = None
        if self.tok.is_op("="):
            if rest:
                raise self.error("a rest parameter cannot have a default value")
            self.advance()
            default = self.expression()
        return A.Param(name, rest, default, types)

    def expression(self) -> A.Node:
        raise NotImplementedError  # ExprParser.expression

    def skip_generics(self) -> None:
        """Consume `<T, U>` after a declared name (generics are not checked)."""
        if not self.tok.is_op("<"):
            return
        depth = 0
        while True:
            t = self.advance()
            if t.type is T.EOF:
                raise self.error("expected '>' to close the type parameters")
            if t.is_op("<"):
                depth += 1
            elif t.is_op(">"):
                depth -= 1
                if depth == 0:
                    return

    def skip_where(self) -> None:
        """Consume a `where T: Iface, U: Other` clause before a body."""
        if not (self.tok.type is T.IDENT and self.tok.value == "where"):
            return
        while not (self.tok.is_op("{") or self.tok.type in (T.EOF, T.NEWLINE)):
            self.advance()

    def skip_type(self) -> list[Token]:
        """Consume a type expression (checked only for primitive parameter types).

        Returns the tokens it consumed. A `|` at the start of the next line
        continues a union, as in multi-line `type` aliases.
        """
        depth = 0
        taken: list[Token] = []
        while True:
            t = self.tok
            if t.type is T.NEWLINE and depth == 0:
                j = self.i
                while self.toks[j].type is T.NEWLINE:
                    j += 1
                if self.toks[j].is_op("|"):
                    self.i = j
                    continue
                return taken
            if t.type is T.EOF:
                return taken
            if depth == 0 and (
                t.is_op(",") or t.is_op(")") or t.is_op("=") or (t.is_op("{") and self._typed())
            ):
                return taken
            if depth == 0 and (t.is_op("]") or t.is_op("}")):
                return taken
            if t.type is T.OP and t.value in ("<", "(", "[", "{"):
                depth += 1
            elif t.type is T.OP and t.value in (">", ")", "]", "}"):
                depth -= 1
            elif t.is_op("->") and depth == 0 and not (taken and taken[-1].is_op(")")):
                return taken  # `{ x: int -> x }`: the closure arrow, not `fn(int) -> int`
            if t.type is not T.NEWLINE:
                taken.append(t)
            self.advance()

    def _typed(self) -> bool:
        # A `{` right after a complete type is the body, not a shape type.
        prev = self.toks[self.i - 1]
        return not (prev.is_op(":") or prev.is_op("->") or prev.is_op("|") or prev.is_op("="))


# Annotations the VM enforces when a function is called (`int` and `float` accept each other).
RUNTIME_TYPES = frozenset(
    {"int", "float", "string", "bool", "list", "dict", "set", "nil", "closure"}
)


def _runtime_types(tokens: list[Token]) -> tuple[Any, ...] | None:
    """What the VM checks for an annotation: primitive names (`int`, `string | nil`),
    or a one-item `(("shape", fields),)` for a shape `{name: string, age?: int}`.
    None when the annotation has nothing checkable."""
    if tokens and tokens[0].is_op("{") and tokens[-1].is_op("}"):
        shape = _shape(tokens[1:-1])
        return None if shape is None else (("shape", shape),)
    names: list[str] = []
    for k, t in enumerate(tokens):
        if k % 2:
            if not t.is_op("|"):
                return None
        elif (t.type is T.IDENT or t.is_kw("nil")) and t.value in RUNTIME_TYPES:
            names.append(str(t.value))
        else:
            return None
    return tuple(names) if names and len(tokens) % 2 else None


def _shape(tokens: list[Token]) -> tuple[tuple[str, bool, Any], ...] | None:
    """Fields `(name, optional, types or None)` of a shape's body, split at top-level commas."""
    fields: list[tuple[str, bool, Any]] = []
    depth = 0
    part: list[Token] = []
    for t in [*tokens, None]:
        if t is None or (depth == 0 and t.is_op(",")):
            if part:
                if part[0].type not in (T.IDENT, T.KEYWORD):
                    return None
                optional = len(part) > 1 and part[1].is_op("?")
                rest = part[2:] if optional else part[1:]
                if not rest or not rest[0].is_op(":"):
                    return None
                fields.append((str(part[0].value), optional, _runtime_types(rest[1:])))
            part = []
            continue
        if t.type is T.OP and t.value in ("<", "(", "[", "{"):
            depth += 1
        elif t.type is T.OP and t.value in (">", ")", "]", "}"):
            depth -= 1
        part.append(t)
    return tuple(fields)
