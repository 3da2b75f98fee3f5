"""Recursive-descent parser: tokens -> `vm_demo.ast` nodes.

Statements end at a newline, `;` or `}`. A binary operator (other than `-`)
or a `.` at the start of the next line continues the expression, as in Harn.
Type annotations are parsed and discarded (the subset is dynamically typed).
"""

from __future__ import annotations

from vm_demo import ast as A
from vm_demo.errors import HarnSyntaxError, Location
from vm_demo.lexer import StrExpr, T, Token, tokenize

# Operators that continue an expression when they start the next line.
_CONTINUATION = frozenset(
    {"+", "*", "/", "%", "&&", "||", "??", "==", "!=", "<=", ">=", "<", ">", "|>", ".", "?."}
)
_ASSIGN_OPS = frozenset({"=", "+=", "-=", "*=", "/=", "%="})


class Parser:
    """Parse one token list; `parse_module()` is the entry point."""

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

    def block(self) -> list[A.Node]:
        self.expect_op("{")
        body: list[A.Node] = []
        self.skip_newlines()
        while not self.tok.is_op("}"):
            if self.tok.type is T.EOF:
                raise self.error("expected '}' before end of file")
            body.append(self.statement())
            self.end_statement()
        self.advance()
        return body

    def statement(self) -> A.Node:
        t = self.tok
        if t.is_kw("pub"):
            self.advance()
            t = self.tok
        if t.is_op("@"):
            return self.fn_decl()
        if t.type is T.KEYWORD:
            kw = t.value
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

    def fn_decl(self) -> A.Node:
        decorators: list[str] = []
        while self.tok.is_op("@"):
            self.advance()
            decorators.append(self.expect_name())
            if self.tok.is_op("("):  # decorator arguments are accepted and ignored
                self.advance()
                depth = 1
                while depth:
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
                    nt = self.tok
                    items.append(A.NamePattern(nt.line, nt.col, self.expect_name()))
                if not self.tok.is_op("]"):
                    self.expect_op(",")
            self.advance()
            return A.ListPattern(t.line, t.col, items, rest)
        if t.is_op("{"):
            self.advance()
            fields: list[tuple[str, str]] = []
            while not self.tok.is_op("}"):
                key = self.expect_name()
                bound = key
                if self.tok.is_op(":"):
                    self.advance()
                    bound = self.expect_name()
                fields.append((key, bound))
                if not self.tok.is_op("}"):
                    self.expect_op(",")
            self.advance()
            return A.DictPattern(t.line, t.col, fields)
        return A.NamePattern(t.line, t.col, self.expect_name())

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

    # -- expressions ---------------------------------------------------------------

    def expression(self) -> A.Node:
        left = self.ternary()
        while self.at_op("|>"):
            t = self.advance()
            self.skip_newlines()
            right = self.ternary()
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

    _LEVELS: tuple[tuple[str, ...], ...] = (
        ("??",),
        ("||",),
        ("&&",),
        ("==", "!="),
        ("<", ">", "<=", ">="),
        ("+", "-"),
        ("*", "/", "%"),
    )

    def binary(self, level: int) -> A.Node:
        if level == len(self._LEVELS):
            return self.unary()
        ops = self._LEVELS[level]
        left = self.binary(level + 1)
        while True:
            t = self.tok
            if level == 4 and (t.is_kw("in") or (t.is_kw("not") and self.peek().is_kw("in"))):
                self.advance()
                op = "in"
                if t.is_kw("not"):
                    self.advance()
                    op = "not in"
                left = A.Binary(t.line, t.col, op, left, self.binary(level + 1))
                continue
            if level == 4 and t.is_kw("to"):
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
            if self.tok.is_op("..."):
                raise self.error("spread arguments are not supported")
            args.append(self.expression())
            if not self.tok.is_op(")"):
                self.expect_op(",")
        self.advance()
        return args

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
                return self.select_expr()
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
                    items.append(self.expression())
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
                sub = Parser(toks, self.filename)
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
        is_dict = (
            nxt.is_op("}")
            or nxt.is_op("[")
            or (nxt.type in (T.IDENT, T.KEYWORD, T.STRING) and after.is_op(":"))
        )
        if not is_dict:
            return self.closure_block()
        self.advance()
        entries: list[tuple[A.Node, A.Node]] = []
        self.skip_newlines()
        while not self.tok.is_op("}"):
            kt = self.tok
            key: A.Node
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
        j = self.i + 1
        while self.toks[j].type is T.IDENT:
            if self.toks[j + 1].is_op(","):
                j += 2
                continue
            return self.toks[j + 1].is_op("->")
        return False

    def closure_block(self) -> A.FuncExpr:
        """`{ a, b -> body }` or `{ body }` (no parameters)."""
        t = self.expect_op("{")
        params: list[A.Param] = []
        j = self.i
        while self.toks[j].type is T.NEWLINE:
            j += 1
        names: list[str] = []
        while self.toks[j].type is T.IDENT:
            names.append(str(self.toks[j].value))
            if self.toks[j + 1].is_op(","):
                j += 2
            else:
                j += 1
                break
        if names and self.toks[j].is_op("->"):
            params = [A.Param(n) for n in names]
            self.i = j + 1
        elif not names and self.toks[j].is_op("->"):
            self.i = j + 1
        body: list[A.Node] = []
        self.skip_newlines()
        while not self.tok.is_op("}"):
            if self.tok.type is T.EOF:
                raise self.error("expected '}' before end of file")
            body.append(self.statement())
            self.end_statement()
        self.advance()
        return A.FuncExpr(t.line, t.col, params, body, "")

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
        if self.toks[j].is_kw("catch"):
            self.i = j + 1
            if self.tok.is_op("("):
                self.advance()
                catch_name = self.expect_name()
                if self.tok.is_op(":"):
                    self.advance()
                    self.skip_type()
                self.expect_op(")")
            catch_body = self.block()
            j = self.i
            while self.toks[j].type is T.NEWLINE:
                j += 1
        if self.toks[j].is_kw("finally"):
            self.i = j + 1
            finally_body = self.block()
        return A.TryExpr(t.line, t.col, body, catch_name, catch_body, finally_body)

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
        return A.Parallel(t.line, t.col, mode, subject, options, body)

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


def parse(source: str, filename: str = "<input>") -> A.Module:
    """Parse a whole file: `parse("let x = 1").body[0]` is a `Let`."""
    return Parser(tokenize(source, filename), filename).parse_module()
