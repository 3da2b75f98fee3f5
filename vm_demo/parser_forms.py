"""Block-taking expression forms: `if`, `try`/`catch` (typed catches),
`match`, `parallel`, `select`, and struct literals `Name { field: value }`.
"""

from __future__ import annotations

from vm_demo import ast as A
from vm_demo.lexer import T, Token
from vm_demo.parser_base import ParserBase

__all__ = ("FormParser",)


class FormParser(ParserBase):
    """Mixed under `parser_expr.ExprParser`, whose methods these call."""

    def binary(self, level: int) -> A.Node:
        raise NotImplementedError  # ExprParser.binary

    def brace_expr(self) -> A.Node:
        raise NotImplementedError  # ExprParser.brace_expr

    def closure_block(self) -> A.FuncExpr:
        raise NotImplementedError  # ExprParser.closure_block

    def _brace_is_value(self) -> bool:
        raise NotImplementedError  # ExprParser._brace_is_value

    def _peek_past_newlines(self) -> tuple[Token, Token]:
        raise NotImplementedError  # ExprParser._peek_past_newlines

    def _struct_literal_ahead(self) -> bool:
        """At a name: is it `Name { field: ... }`, a struct literal?"""
        t = self.tok
        if self.no_struct_literal or not self.peek().is_op("{"):
            return False
        j = self.i + 2
        while self.toks[j].type is T.NEWLINE:
            j += 1
        first, second = self.toks[j], self.toks[j + 1] if j + 1 < len(self.toks) else self.toks[j]
        known = str(t.value) in self.struct_names
        if known and first.is_op("}"):
            return True
        fieldish = first.type in (T.IDENT, T.KEYWORD) and (
            second.is_op(":") or second.is_op(",") or second.is_op("}")
        )
        return fieldish and (known or str(t.value)[:1].isupper()) and (known or second.is_op(":"))

    def struct_literal(self) -> A.Node:
        t = self.advance()
        self.advance()  # {
        entries: list[tuple[A.Node, A.Node]] = []
        self.skip_newlines()
        while not self.tok.is_op("}"):
            kt = self.tok
            if kt.type not in (T.IDENT, T.KEYWORD):
                raise self.error(f"expected a field name in {t.value} {{ ... }}")
            self.advance()
            key = A.Const(kt.line, kt.col, str(kt.value))
            if self.tok.is_op(":"):
                self.advance()
                self.skip_newlines()
                value = self.expression()
            else:  # shorthand `Point { x, y }`
                value = A.Name(kt.line, kt.col, str(kt.value))
            entries.append((key, value))
            self.skip_newlines()
            if not self.tok.is_op("}"):
                self.expect_op(",")
                self.skip_newlines()
        self.advance()
        return A.StructLit(t.line, t.col, str(t.value), entries)

    def match_expr(self) -> A.Node:
        """`match x { pattern [| pattern] [if guard] -> { body } ... }`."""
        t = self.advance()
        subject = self.expression_no_brace()
        self.expect_op("{")
        arms: list[A.MatchArm] = []
        self.skip_newlines()
        while not self.tok.is_op("}"):
            if self.tok.type is T.EOF:
                raise self.error("expected '}' to close the match")
            patterns = [self.binary(0)]
            while self.tok.is_op("|"):
                self.advance()
                patterns.append(self.binary(0))
            guard = None
            if self.tok.is_kw("if"):
                self.advance()
                guard = self.expression()
            self.expect_op("->")
            self.skip_newlines()
            if self.tok.is_op("{") and not self._brace_is_dict():
                body = self.block()
            else:
                e = self.expression()
                body = [A.ExprStmt(e.line, e.col, e)]
            arms.append(A.MatchArm(patterns, guard, body))
            self.skip_newlines()
            if self.tok.is_op(","):
                self.advance()
                self.skip_newlines()
        self.advance()
        return A.Match(t.line, t.col, subject, arms)

    def _brace_is_dict(self) -> bool:
        nxt, after = self._peek_past_newlines()
        return nxt.type in (T.IDENT, T.KEYWORD, T.STRING) and after.is_op(":")

    def expression_no_brace(self) -> A.Node:
        """An expression before a `{` that opens a body (`match x {`)."""
        saved = self.struct_names
        self.struct_names = frozenset()
        self.no_struct_literal = True
        try:
            return self.expression()
        finally:
            self.struct_names = saved
            self.no_struct_literal = False

    def if_expr(self) -> A.Node:
        t = self.advance()
        cond = self.expression()
        then = self.block()
        other: list[A.Node] | None = None
        j = self.i
        while self.toks[j].type is T.NEWLINE:
            j += 1
        if self.toks[j].is_kw("else"):
            self.i = j + 1
            if self.tok.is_kw("if"):
                nested = self.if_expr()
                other = [A.ExprStmt(nested.line, nested.col, nested)]
            else:
                other = self.block()
        return A.IfExpr(t.line, t.col, cond, then, other)

    def try_expr(self) -> A.Node:
        t = self.advance()
        body = self.block()
        catch_name: str | None = None
        catch_body: list[A.Node] | None = None
        finally_body: list[A.Node] | None = None
        j = self.i
        while self.toks[j].type is T.NEWLINE:
            j += 1
        catch_types: tuple[str, ...] | None = None
        if self.toks[j].is_kw("catch"):
            self.i = j + 1
            if self.tok.is_op("("):
                self.advance()
                catch_name = self.expect_name()
                if self.tok.is_op(":"):
                    self.advance()
                    catch_types = self._catch_types(self.skip_type())
                self.expect_op(")")
            elif self.tok.type is T.IDENT:
                catch_name = self.expect_name()
            catch_body = self.block()
            j = self.i
            while self.toks[j].type is T.NEWLINE:
                j += 1
        if self.toks[j].is_kw("finally"):
            self.i = j + 1
            finally_body = self.block()
        return A.TryExpr(t.line, t.col, body, catch_name, catch_types, catch_body, finally_body)

    def _catch_types(self, tokens: list[Token]) -> tuple[str, ...]:
        """`T | U` of a typed catch -> ("T", "U") (a parameterised type keeps its base name)."""
        names: list[str] = []
        depth = 0
        for tk in tokens:
            if tk.type is T.OP and tk.value in ("<", "(", "[", "{"):
                depth += 1
            elif tk.type is T.OP and tk.value in (">", ")", "]", "}"):
                depth -= 1
            elif depth == 0 and tk.type in (T.IDENT, T.KEYWORD):
                names.append(str(tk.value))
        if not names:
            raise self.error("expected a type name in the typed catch")
        return tuple(names)

    def parallel_expr(self) -> A.Node:
        t = self.advance()
        mode = "count"
        if self.tok.is_kw("each") or self.tok.is_kw("settle"):
            mode = str(self.advance().value)
        subject = self.binary(0)
        options: A.Node | None = None
        if self.tok.is_kw("with"):
            self.advance()
            options = self.brace_expr()
        body = self.closure_block()
        stream = False
        if self.tok.type is T.IDENT and self.tok.value == "as" and self.peek().value == "stream":
            self.advance()
            self.advance()
            stream = True
        return A.Parallel(t.line, t.col, mode, subject, options, body, stream)

    def select_expr(self) -> A.Node:
        t = self.advance()
        self.expect_op("{")
        cases: list[A.SelectCase] = []
        timeout: A.Node | None = None
        timeout_body: list[A.Node] | None = None
        self.skip_newlines()
        while not self.tok.is_op("}"):
            if self.tok.is_kw("timeout"):
                self.advance()
                timeout = self.binary(0)
                timeout_body = self.block()
            else:
                name = self.expect_name()
                self.expect_kw("from")
                channel = self.binary(0)
                cases.append(A.SelectCase(name, channel, self.block()))
            self.skip_newlines()
        self.advance()
        if not cases:
            raise self.error("select needs at least one `name from channel` case", t)
        return A.Select(t.line, t.col, cases, timeout, timeout_body)
