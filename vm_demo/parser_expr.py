"""Expression parser: precedence climbing, postfix chains, literals, dict
literals and closures. The block-taking forms (if, try, match, parallel,
select, struct literals) are in `parser_forms.py`.
"""

from __future__ import annotations

from vm_demo import ast as A
from vm_demo.errors import HarnSyntaxError
from vm_demo.lexer import StrExpr, T, Token, tokenize
from vm_demo.parser_forms import FormParser

__all__ = ("ExprParser",)

_PIPE = "__pipe"


def _replace_placeholder(node: A.Node) -> bool:
    """Rename every `_` in a pipe's right side (outside nested closures); any found?"""
    found = False
    for n in A.walk(node):
        if isinstance(n, A.Name) and n.name == "_":
            n.name = _PIPE
            found = True
    return found


class ExprParser(FormParser):
    """Expressions; see `parser.Parser` for statements."""

    # -- expressions ---------------------------------------------------------------

    def expression(self) -> A.Node:
        left = self.ternary()
        while self.at_op("|>"):
            t = self.advance()
            self.skip_newlines()
            right = self.ternary()
            if _replace_placeholder(right):
                # `x |> f(_, 1)` is `x |> { __pipe -> f(__pipe, 1) }`.
                body: list[A.Node] = [A.ExprStmt(right.line, right.col, right)]
                right = A.FuncExpr(t.line, t.col, [A.Param(_PIPE)], body, "")
            left = A.Call(t.line, t.col, right, [left])
        return left

    def ternary(self) -> A.Node:
        cond = self.binary(0)
        if self.tok.is_op("?"):
            t = self.advance()
            then = self.ternary()
            self.expect_op(":")
            other = self.ternary()
            return A.Ternary(t.line, t.col, cond, then, other)
        return cond

    # Lowest to highest, as in the language spec: `??` sits between the
    # additive and multiplicative operators, and `**` is right-associative.
    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("||",),
        ("&&",),
        ("==", "!="),
        ("<", ">", "<=", ">="),
        ("+", "-"),
        ("??",),
        ("*", "/", "%"),
        ("**",),
    )
    _POWER = 7

    def binary(self, level: int) -> A.Node:
        if level == self._POWER:
            base = self.unary()
            if self.at_op("**"):
                t = self.advance()
                self.skip_newlines()
                return A.Binary(t.line, t.col, "**", base, self.binary(level))
            return base
        ops = self._LEVELS[level]
        left = self.binary(level + 1)
        while True:
            t = self.tok
            if level == 3 and (t.is_kw("in") or (t.is_kw("not") and self.peek().is_kw("in"))):
                self.advance()
                op = "in"
                if t.is_kw("not"):
                    self.advance()
                    op = "not in"
                left = A.Binary(t.line, t.col, op, left, self.binary(level + 1))
                continue
            if level == 3 and t.is_kw("to"):
                self.advance()
                end = self.binary(level + 1)
                inclusive = True
                if self.tok.is_kw("exclusive"):
                    self.advance()
                    inclusive = False
                left = A.Range(t.line, t.col, left, end, inclusive)
                continue
            if not self.at_op(*ops):
                return left
            t = self.advance()
            self.skip_newlines()
            right = self.binary(level + 1)
            op = str(t.value)
            if op in ("&&", "||", "??"):
                left = A.Logical(t.line, t.col, op, left, right)
            else:
                left = A.Binary(t.line, t.col, op, left, right)

    def unary(self) -> A.Node:
        t = self.tok
        if t.is_op("!") or t.is_op("-"):
            self.advance()
            operand = self.unary()
            if (
                t.value == "-"
                and isinstance(operand, A.Const)
                and type(operand.value)
                in (
                    int,
                    float,
                )
            ):
                return A.Const(t.line, t.col, -operand.value)
            return A.Unary(t.line, t.col, str(t.value), operand)
        return self.postfix(self.primary())

    def call_args(self) -> list[A.Node]:
        self.expect_op("(")
        args: list[A.Node] = []
        while not self.tok.is_op(")"):
            args.append(self.element())
            if not self.tok.is_op(")"):
                self.expect_op(",")
        self.advance()
        return args

    def element(self) -> A.Node:
        """An argument or list item: an expression or `...expr`."""
        if self.tok.is_op("..."):
            t = self.advance()
            return A.Spread(t.line, t.col, self.expression())
        return self.expression()

    def postfix(self, expr: A.Node) -> A.Node:
        while True:
            t = self.tok
            if t.is_op("("):
                expr = A.Call(t.line, t.col, expr, self.call_args())
            elif self.at_op(".", "?."):
                t = self.advance()
                nt = self.tok
                if nt.type not in (T.IDENT, T.KEYWORD):
                    raise self.error(f"expected a field name after '{t.value}'")
                name = str(self.advance().value)
                optional = t.value == "?."
                if self.tok.is_op("("):
                    expr = A.MethodCall(nt.line, nt.col, expr, name, self.call_args(), optional)
                else:
                    expr = A.Attr(nt.line, nt.col, expr, name, optional)
            elif t.is_op("?") and self._postfix_try():
                self.advance()
                expr = A.Unwrap(t.line, t.col, expr)
            elif t.is_op("["):
                self.advance()
                start: A.Node | None = None
                if not self.tok.is_op(":"):
                    start = self.expression()
                if self.tok.is_op(":"):
                    self.advance()
                    end = None if self.tok.is_op("]") else self.expression()
                    self.expect_op("]")
                    expr = A.Slice(t.line, t.col, expr, start, end)
                else:
                    self.expect_op("]")
                    assert start is not None
                    expr = A.Index(t.line, t.col, expr, start)
            else:
                return expr

    _ENDS_POSTFIX_TRY = frozenset({")", "]", "}", ",", ".", "?.", "?", ";", "+", "-", "*", "/"})

    def _postfix_try(self) -> bool:
        """At `?`: the Result-unwrap postfix (not a ternary, whose `?` starts a branch)."""
        nxt = self.peek()
        if nxt.type in (T.NEWLINE, T.EOF):
            return True
        return nxt.type is T.OP and nxt.value in self._ENDS_POSTFIX_TRY

    def primary(self) -> A.Node:
        t = self.tok
        typ = t.type
        if typ is T.INT or typ is T.FLOAT:
            self.advance()
            return A.Const(t.line, t.col, t.value)
        if typ is T.DURATION:
            self.advance()
            return A.Duration(t.line, t.col, t.value)
        if typ is T.STRING:
            self.advance()
            return self.string(t)
        if typ is T.IDENT:
            if self._struct_literal_ahead():
                return self.struct_literal()
            self.advance()
            return A.Name(t.line, t.col, str(t.value))
        if typ is T.KEYWORD:
            kw = t.value
            if kw in ("true", "false"):
                self.advance()
                return A.Const(t.line, t.col, kw == "true")
            if kw == "nil":
                self.advance()
                return A.Const(t.line, t.col, None)
            if kw == "if":
                return self.if_expr()
            if kw == "try":
                return self.try_expr()
            if kw == "fn":
                self.advance()
                params = self.params()
                return A.FuncExpr(t.line, t.col, params, self.block(), "")
            if kw == "spawn":
                self.advance()
                return A.Spawn(t.line, t.col, self.closure_block())
            if kw == "parallel":
                return self.parallel_expr()
            if kw == "deadline":
                self.advance()
                dur = self.binary(0)
                return A.Deadline(t.line, t.col, dur, self.closure_block())
            if kw == "select":
                if self.peek().is_op("("):  # `select(ch1, ch2)`: the builtin
                    self.advance()
                    return A.Name(t.line, t.col, "select")
                return self.select_expr()
            if kw == "match":
                return self.match_expr()
            if kw == "retry":
                self.advance()
                count: A.Node = A.Const(t.line, t.col, 3)
                if not self.tok.is_op("{"):
                    count = self.binary(0)
                return A.Retry(t.line, t.col, count, self.block())
            if kw in ("each", "settle", "with", "timeout", "from", "exclusive"):
                self.advance()  # soft keywords are plain names elsewhere
                return A.Name(t.line, t.col, str(kw))
        if typ is T.OP:
            if t.value == "(":
                self.advance()
                e = self.expression()
                self.expect_op(")")
                return e
            if t.value == "[":
                self.advance()
                items: list[A.Node] = []
                while not self.tok.is_op("]"):
                    items.append(self.element())
                    if not self.tok.is_op("]"):
                        self.expect_op(",")
                self.advance()
                return A.ListLit(t.line, t.col, items)
            if t.value == "{":
                return self.brace_expr()
        raise self.error(f"unexpected {self._describe(t)}")

    def string(self, t: Token) -> A.Node:
        parts: list[str | A.Node] = []
        for p in t.value:
            if isinstance(p, StrExpr):
                toks = tokenize(p.source, self.filename, p.line, p.col)
                sub = type(self)(toks, self.filename)
                sub.skip_newlines()
                e = sub.expression()
                sub.skip_newlines()
                if sub.tok.type is not T.EOF:
                    raise sub.error("unexpected token in ${...}")
                parts.append(e)
            else:
                parts.append(p)
        if all(isinstance(p, str) for p in parts):
            return A.Const(t.line, t.col, "".join(p for p in parts if isinstance(p, str)))
        return A.Interp(t.line, t.col, parts)

    def _peek_past_newlines(self) -> tuple[Token, Token]:
        """The two tokens after the current one, skipping newlines before them."""
        j = self.i + 1
        while self.toks[j].type is T.NEWLINE:
            j += 1
        return self.toks[j], self.toks[min(j + 1, len(self.toks) - 1)]

    def brace_expr(self) -> A.Node:
        """`{` in expression position: a dict literal or a closure."""
        t = self.tok
        nxt, after = self._peek_past_newlines()
        keyed = nxt.is_op("...") or (
            nxt.type in (T.IDENT, T.KEYWORD, T.STRING) and after.is_op(":")
        )
        is_dict = nxt.is_op("}") or nxt.is_op("[") or (keyed and not self._closure_params_ahead())
        if not is_dict:
            return self.closure_block()
        self.advance()
        entries: list[tuple[A.Node, A.Node]] = []
        self.skip_newlines()
        while not self.tok.is_op("}"):
            kt = self.tok
            key: A.Node
            if kt.is_op("..."):
                self.advance()
                entries.append(
                    (A.Spread(kt.line, kt.col, self.expression()), A.Const(kt.line, kt.col, None))
                )
                self.skip_newlines()
                if not self.tok.is_op("}"):
                    self.expect_op(",")
                    self.skip_newlines()
                continue
            if kt.is_op("["):
                self.advance()
                key = self.expression()
                self.expect_op("]")
            elif kt.type is T.STRING:
                self.advance()
                key = self.string(kt)
            elif kt.type in (T.IDENT, T.KEYWORD):
                self.advance()
                key = A.Const(kt.line, kt.col, str(kt.value))
            else:
                raise self.error("expected a dict key")
            self.expect_op(":")
            self.skip_newlines()
            entries.append((key, self.expression()))
            self.skip_newlines()
            if not self.tok.is_op("}"):
                self.expect_op(",")
                self.skip_newlines()
        self.advance()
        return A.DictLit(t.line, t.col, entries)

    def _brace_is_value(self) -> bool:
        """At `{`: is it a closure with parameters (or `{ ->`) or a dict literal?"""
        nxt, after = self._peek_past_newlines()
        if nxt.is_op("->") or nxt.is_op("}"):
            return True
        if nxt.type in (T.IDENT, T.KEYWORD, T.STRING) and after.is_op(":"):
            return True
        if nxt.is_op("..."):
            return True
        return self._closure_params_ahead()

    def _closure_params_ahead(self) -> bool:
        """At `{`: does a parameter list ending in `->` follow?"""
        saved = self.i
        try:
            self.advance()
            return self._closure_params() is not None
        finally:
            self.i = saved

    def _closure_params(self) -> list[A.Param] | None:
        """Parse `a, b: int, c = 1 ->` after a closure's `{`; None (cursor moved) if absent."""
        self.skip_newlines()
        if self.tok.is_op("->"):
            self.advance()
            return []
        params: list[A.Param] = []
        while True:
            if not (self.tok.type is T.IDENT or self.tok.is_op("...")):
                return None
            try:
                params.append(self.param())
            except HarnSyntaxError:
                return None
            if self.tok.is_op("->"):
                self.advance()
                return params
            if not self.tok.is_op(","):
                return None
            self.advance()
            self.skip_newlines()

    def closure_block(self) -> A.FuncExpr:
        """`{ a, b -> body }` or `{ body }` (no parameters)."""
        t = self.expect_op("{")
        start = self.i
        params = self._closure_params()
        if params is None:
            self.i = start
            params = []
        return A.FuncExpr(t.line, t.col, params, self.block_rest(), "")
