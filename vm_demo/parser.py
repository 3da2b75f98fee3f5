"""Recursive-descent parser: tokens -> `vm_demo.ast` nodes.

Statements end at a newline, `;` or `}`. A binary operator (other than `-`)
or a `.` at the start of the next line continues the expression, as in Harn.
Type annotations are parsed and discarded (the subset is dynamically typed).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from vm_demo import ast as A
from vm_demo.errors import deep_recursion
from vm_demo.lexer import T, tokenize
from vm_demo.parser_decl import DeclParser
from vm_demo.parser_expr import ExprParser

__all__ = ("Parser", "parse")

_ASSIGN_OPS = frozenset({"=", "+=", "-=", "*=", "/=", "%="})


class Parser(ExprParser, DeclParser):
    """Parse one token list; `parse_module()` is the entry point."""

    # -- module and statements -------------------------------------------------

    def parse_module(self) -> A.Module:
        body: list[A.Node] = []
        self.skip_newlines()
        while self.tok.type is not T.EOF:
            body.append(self.statement())
            self.end_statement()
        return A.Module(1, 1, self.filename, body)

    def end_statement(self) -> None:
        t = self.tok
        if t.type is T.NEWLINE or t.is_op(";"):
            self.skip_newlines()
        elif not (t.is_op("}") or t.type is T.EOF):
            raise self.error(f"expected end of statement, found {self._describe(t)}")

    def statement(self) -> A.Node:
        t = self.tok
        if t.is_kw("pub"):
            self.advance()
            t = self.tok
        if t.is_op("@"):
            return self.fn_decl()
        if self.is_type_alias():
            return self.type_alias()
        if t.type is T.KEYWORD:
            kw = t.value
            decl = self._DECLS.get(kw)
            if decl is not None:
                return decl(self)
            if kw == "guard":
                self.advance()
                cond = self.expression()
                self.expect_kw("else")
                return A.Guard(t.line, t.col, cond, self.block())
            if kw == "require":
                return self.require_stmt()
            if kw == "defer":
                self.advance()
                return A.Defer(t.line, t.col, self.block())
            if kw == "mutex":
                return self.mutex_block()
            if kw == "yield":
                self.advance()
                if self.tok.type is T.NEWLINE or self.tok.is_op("}") or self.tok.is_op(";"):
                    return A.Yield(t.line, t.col, None)
                return A.Yield(t.line, t.col, self.expression())
            if kw == "fn" and self.peek().type is T.IDENT:
                return self.fn_decl()
            if kw == "pipeline":
                return self.pipeline_decl()
            if kw in ("let", "var"):
                return self.let_stmt()
            if kw == "for":
                return self.for_stmt()
            if kw == "while":
                self.advance()
                cond = self.expression()
                return A.While(t.line, t.col, cond, self.block())
            if kw == "break":
                self.advance()
                return A.Break(t.line, t.col)
            if kw == "continue":
                self.advance()
                return A.Continue(t.line, t.col)
            if kw == "return":
                self.advance()
                if self.tok.type is T.NEWLINE or self.tok.is_op("}") or self.tok.is_op(";"):
                    return A.Return(t.line, t.col, None)
                return A.Return(t.line, t.col, self.expression())
            if kw == "throw":
                self.advance()
                return A.Throw(t.line, t.col, self.expression())
            if kw == "import":
                return self.import_stmt()
        if t.is_op("{") and not self._brace_is_value():
            return A.Block(t.line, t.col, self.block())
        expr = self.expression()
        if self.tok.type is T.OP and self.tok.value in _ASSIGN_OPS:
            op_tok = self.advance()
            if not isinstance(expr, A.Name | A.Attr | A.Index):
                raise self.error("invalid assignment target", op_tok)
            value = self.expression()
            return A.Assign(t.line, t.col, expr, str(op_tok.value), value)
        return A.ExprStmt(t.line, t.col, expr)

    _DECLS: ClassVar[dict[str, Callable[[DeclParser], A.Node]]] = {
        "struct": DeclParser.struct_decl,
        "enum": DeclParser.enum_decl,
        "impl": DeclParser.impl_decl,
        "interface": DeclParser.interface_decl,
    }

    def require_stmt(self) -> A.Node:
        """`require cond, "message"` (or the call form `require(cond, msg)`)."""
        t = self.advance()
        if self.tok.is_op("("):
            args = self.call_args()
        else:
            args = [self.expression()]
            if self.tok.is_op(","):
                self.advance()
                args.append(self.expression())
        return A.ExprStmt(t.line, t.col, A.BuiltinCall(t.line, t.col, "require", args))

    def mutex_block(self) -> A.Node:
        """`mutex { body }`: the default mutex held for the body, released on any exit."""
        t = self.advance()
        body = self.block()
        ln, cl = t.line, t.col
        permit = A.Let(
            ln,
            cl,
            A.NamePattern(ln, cl, " mutex"),
            A.BuiltinCall(ln, cl, "sync_mutex_acquire", []),
            False,
        )
        release = A.ExprStmt(
            ln, cl, A.BuiltinCall(ln, cl, "sync_release", [A.Name(ln, cl, " mutex")])
        )
        guarded = A.TryExpr(ln, cl, body, None, None, None, [release])
        return A.Block(ln, cl, [permit, A.ExprStmt(ln, cl, guarded)])

    def fn_decl(self) -> A.Node:
        decorators: list[str] = []
        while self.tok.is_op("@"):
            self.advance()
            decorators.append(self.expect_name())
            if self.tok.is_op("("):  # decorator arguments are accepted and ignored
                self.advance()
                depth = 1
                while depth:
                    if self.tok.type is T.EOF:
                        raise self.error("expected ')' to close the decorator arguments")
                    if self.tok.is_op("("):
                        depth += 1
                    elif self.tok.is_op(")"):
                        depth -= 1
                    self.advance()
            self.skip_newlines()
        if self.tok.is_kw("pub"):
            self.advance()
        t = self.expect_kw("fn")
        name = self.expect_name()
        self.skip_generics()
        params = self.params()
        body = self.block()
        return A.FnDecl(
            t.line, t.col, name, A.FuncExpr(t.line, t.col, params, body, name), decorators
        )

    def pipeline_decl(self) -> A.Node:
        t = self.advance()
        name = self.expect_name()
        params = self.params() if self.tok.is_op("(") else []
        body = self.block()
        return A.PipelineDecl(t.line, t.col, name, A.FuncExpr(t.line, t.col, params, body, name))

    def let_stmt(self) -> A.Node:
        t = self.advance()
        target = self.pattern()
        if self.tok.is_op(":"):
            self.advance()
            self.skip_type()
        self.expect_op("=")
        return A.Let(t.line, t.col, target, self.expression(), t.value == "var")

    def pattern(self) -> A.Pattern:
        t = self.tok
        if t.is_op("["):
            self.advance()
            items: list[A.NamePattern] = []
            rest: str | None = None
            while not self.tok.is_op("]"):
                if self.tok.is_op("..."):
                    self.advance()
                    rest = self.expect_name()
                else:
                    items.append(self.name_pattern())
                if not self.tok.is_op("]"):
                    self.expect_op(",")
            self.advance()
            return A.ListPattern(t.line, t.col, items, rest)
        if t.is_op("{"):
            self.advance()
            self.skip_newlines()
            fields: list[tuple[str, str, A.Node | None]] = []
            drest: str | None = None
            while not self.tok.is_op("}"):
                if self.tok.is_op("..."):
                    self.advance()
                    drest = self.expect_name()
                else:
                    key = self.expect_field_name()
                    bound = key
                    if self.tok.is_op(":"):
                        self.advance()
                        bound = self.expect_name()
                    default = None
                    if self.tok.is_op("="):
                        self.advance()
                        default = self.expression()
                    fields.append((key, bound, default))
                self.skip_newlines()
                if not self.tok.is_op("}"):
                    self.expect_op(",")
                    self.skip_newlines()
            self.advance()
            return A.DictPattern(t.line, t.col, fields, drest)
        if t.is_op("("):
            self.advance()
            parts: list[A.NamePattern] = []
            while not self.tok.is_op(")"):
                parts.append(self.name_pattern())
                if not self.tok.is_op(")"):
                    self.expect_op(",")
            self.advance()
            return A.TuplePattern(t.line, t.col, parts)
        return A.NamePattern(t.line, t.col, self.expect_name())

    def name_pattern(self) -> A.NamePattern:
        t = self.tok
        name = self.expect_name()
        default = None
        if self.tok.is_op("="):
            self.advance()
            default = self.expression()
        return A.NamePattern(t.line, t.col, name, default)

    def expect_field_name(self) -> str:
        if self.tok.type is T.KEYWORD:
            return str(self.advance().value)
        return self.expect_name()

    def for_stmt(self) -> A.Node:
        t = self.advance()
        target = self.pattern()
        self.expect_kw("in")
        iterable = self.expression()
        return A.For(t.line, t.col, target, iterable, self.block())

    def import_stmt(self) -> A.Node:
        t = self.advance()
        names: list[str] | None = None
        if self.tok.is_op("{"):
            self.advance()
            names = []
            while not self.tok.is_op("}"):
                names.append(self.expect_name())
                if not self.tok.is_op("}"):
                    self.expect_op(",")
            self.advance()
            self.expect_kw("from")
        if (
            self.tok.type is not T.STRING
            or len(self.tok.value) > 1
            or (self.tok.value and not isinstance(self.tok.value[0], str))
        ):
            raise self.error("expected a module path string after 'import'")
        parts = self.advance().value
        return A.Import(t.line, t.col, parts[0] if parts else "", names)


def parse(source: str, filename: str = "<input>") -> A.Module:
    """Parse a whole file: `parse("let x = 1").body[0]` is a `Let`."""
    parser = Parser(tokenize(source, filename), filename)
    with deep_recursion():
        try:
            return parser.parse_module()
        except RecursionError:
            raise parser.error("program is nested too deeply") from None
