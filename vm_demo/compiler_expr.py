"""Compiling expressions and the value-producing block forms (if, try, select)."""

from __future__ import annotations

from vm_demo import ast as A
from vm_demo.bytecode import Code, Op
from vm_demo.compiler_ext import ExtCompiler
from vm_demo.compiler_scope import BINOPS, Binding, TryBlock
from vm_demo.objects import Duration

__all__ = ("ExprCompiler",)


def _yields(nodes: list[A.Node]) -> bool:
    """Does this body contain `yield` outside nested functions?"""
    return any(isinstance(n, A.Yield) for n in A.walk(nodes))


class ExprCompiler(ExtCompiler):
    """Expressions; statements are in `compiler.FunctionCompiler`."""

    # -- bodies ----------------------------------------------------------------------

    def body_value(self, stmts: list[A.Node]) -> None:
        """Compile a block whose value (its last expression) stays on the stack."""
        self.scopes.append({})
        for i, s in enumerate(stmts[:-1]):
            if isinstance(s, A.Defer):
                self._deferred(s, stmts[i + 1 :], value=True)
                self.scopes.pop()
                return
            self.stmt(s)
        if stmts and isinstance(stmts[-1], A.Defer):
            self._deferred(stmts[-1], [], value=True)
        elif not stmts:
            self.emit(Op.LOAD_NIL)
        else:
            last = stmts[-1]
            if isinstance(last, A.ExprStmt):
                self.expr(last.expr)
            else:
                self.stmt(last)
                self.emit(Op.LOAD_NIL)
        self.scopes.pop()

    def body_stmts(self, stmts: list[A.Node]) -> None:
        self.scopes.append({})
        for i, s in enumerate(stmts):
            if isinstance(s, A.Defer):
                self._deferred(s, stmts[i + 1 :], value=False)
                break
            self.stmt(s)
        self.scopes.pop()

    def _deferred(self, defer: A.Defer, rest: list[A.Node], *, value: bool) -> None:
        """`defer { d }` then `rest`: the rest of the scope runs as `try { rest } finally { d }`.

        Later defers nest inside, so they run first (LIFO), on every way out.
        """
        guarded = A.TryExpr(defer.line, defer.col, rest, None, None, None, defer.body)
        self.try_(guarded, value=value)

    def function(self, fn: A.FuncExpr, *, traced: bool, step: bool = False) -> Code:
        code = Code(fn.name or "<closure>", self.code.filename)
        # A generator opens its fn_call span per resume (iterators.Generator), not per call.
        code.generator = _yields(fn.body)
        code.traced = traced and not code.generator
        code.step = step
        code.params = [p.name for p in fn.params]
        code.rest_param = bool(fn.params) and fn.params[-1].rest
        defaulted = [p for p in fn.params if p.default is not None]
        code.nrequired = sum(1 for p in fn.params if p.default is None and not p.rest)
        code.nfast = -1 if code.rest_param or defaulted else len(fn.params)
        sub = type(self)(code, self, fn.body, self.module_globals)
        slots = []
        for p in fn.params:
            slot = sub.new_slot(p.name)
            slots.append(slot)
            sub.scopes[0][p.name] = Binding(slot, False, sub.uses_cells)
            if sub.uses_cells:
                code.cell_params.append(slot)
        sub.at(fn)
        for p, slot in zip(fn.params, slots, strict=True):
            if p.default is not None:
                given = sub.emit(Op.ARG_SET, (slot, None))
                sub.expr(p.default)
                sub.emit(Op.STORE_CELL if sub.uses_cells else Op.STORE_LOCAL, slot)
                sub.code.patch(given, (slot, sub.here()))
        checks = tuple(
            (slot, p.name, p.types) for p, slot in zip(fn.params, slots, strict=True) if p.types
        )
        if checks:
            sub.at(fn)
            sub.emit(Op.CHECK_ARGS, (checks, sub.uses_cells))
        sub.body_value(fn.body)
        sub.emit(Op.RETURN)
        return code

    # -- compound expressions -----------------------------------------------------------

    def if_(self, node: A.IfExpr, *, value: bool) -> None:
        self.expr(node.cond)
        self.at(node)
        else_jump = self.emit(Op.JUMP_IF_FALSE, None)
        (self.body_value if value else self.body_stmts)(node.then)
        end_jump = self.emit(Op.JUMP, None)
        self.code.patch(else_jump, self.here())
        if node.other is not None:
            (self.body_value if value else self.body_stmts)(node.other)
        elif value:
            self.emit(Op.LOAD_NIL)
        self.code.patch(end_jump, self.here())

    def try_(self, node: A.TryExpr, *, value: bool) -> None:
        fin = node.finally_body
        if node.catch_body is not None and fin is not None:
            # `try/catch/finally` is `try { try/catch } finally { }`: the finally
            # covers the catch body too, and runs for a cancellation (no catch takes one).
            inner = A.TryExpr(
                node.line,
                node.col,
                node.body,
                node.catch_name,
                node.catch_types,
                node.catch_body,
                None,
            )
            body: list[A.Node] = [A.ExprStmt(node.line, node.col, inner)]
            self.try_(A.TryExpr(node.line, node.col, body, None, None, None, fin), value=value)
            return
        body_fn = self.body_value if value else self.body_stmts
        bare = node.catch_body is None and fin is None
        self.at(node)
        setup = self.emit(Op.SETUP_TRY, None)
        self.blocks.append(TryBlock(fin))
        body_fn(node.body)
        self.blocks.pop()
        self.emit(Op.POP_BLOCK)
        if bare and value:
            self.emit(Op.WRAP_OK)
        if fin is not None:
            self.body_stmts(fin)
        end = self.emit(Op.JUMP, None)
        # The handler (the error value is on the stack); a finally-only one also
        # runs when a cancellation unwinds through (VMBase._unwind_cancel).
        self.code.patch(setup, (self.here(), fin is not None))
        if bare:
            self.emit(Op.WRAP_ERR if value else Op.POP)
        elif fin is not None:
            self.body_stmts(fin)
            self.emit(Op.RERAISE)
        else:
            assert node.catch_body is not None
            if node.catch_types is not None:
                self.emit(Op.CHECK_CATCH, node.catch_types)
            self.scopes.append({})
            if node.catch_name is not None:
                self.declare(node.catch_name, False)
            else:
                self.emit(Op.POP)
            body_fn(node.catch_body)
            self.scopes.pop()
        self.code.patch(end, self.here())

    def select(self, node: A.Select) -> None:
        self.emit(Op.LOAD_BUILTIN, "__select")
        for case in node.cases:
            self.expr(case.channel)
        self.at(node)
        self.emit(Op.BUILD_LIST, len(node.cases))
        if node.timeout is not None:
            self.expr(node.timeout)
        else:
            self.emit(Op.LOAD_NIL)
        self.at(node)
        self.emit(Op.CALL, 2)
        self.emit(Op.UNPACK_LIST, (2, False))  # pushes index, then value on top
        self.scopes.append({})
        tmp_val = self.new_slot(" select.value")
        tmp_idx = self.new_slot(" select.index")
        self.emit(Op.STORE_LOCAL, tmp_idx)
        self.emit(Op.STORE_LOCAL, tmp_val)
        ends: list[int] = []
        branches: list[tuple[int, list[A.Node], str | None]] = [
            (i, c.body, c.name) for i, c in enumerate(node.cases)
        ]
        if node.timeout_body is not None:
            branches.append((-1, node.timeout_body, None))
        for idx, body, name in branches:
            self.emit(Op.LOAD_LOCAL, tmp_idx)
            self.emit(Op.LOAD_CONST, idx)
            self.emit(Op.EQ)
            nxt = self.emit(Op.JUMP_IF_FALSE, None)
            self.scopes.append({})
            if name is not None:
                self.emit(Op.LOAD_LOCAL, tmp_val)
                self.declare(name, False)
            self.body_value(body)
            self.scopes.pop()
            ends.append(self.emit(Op.JUMP, None))
            self.code.patch(nxt, self.here())
        self.emit(Op.LOAD_NIL)
        for j in ends:
            self.code.patch(j, self.here())
        self.scopes.pop()

    # -- expressions ---------------------------------------------------------------------

    def expr(self, node: A.Node) -> None:
        self.at(node)
        if isinstance(node, A.Const):
            if node.value is None:
                self.emit(Op.LOAD_NIL)
            else:
                self.emit(Op.LOAD_CONST, node.value)
        elif isinstance(node, A.Name):
            self.load_name(node.name)
        elif isinstance(node, A.Binary):
            self.expr(node.left)
            self.expr(node.right)
            self.at(node)
            self.emit(BINOPS[node.op])
        elif isinstance(node, A.Call):
            self.expr(node.func)
            if any(isinstance(a, A.Spread) for a in node.args):
                self.items_with_spread(node.args)
                self.at(node)
                self.emit(Op.CALL_SPREAD)
                return
            for a in node.args:
                self.expr(a)
            self.at(node)
            self.emit(Op.CALL, len(node.args))
        elif isinstance(node, A.MethodCall):
            self.expr(node.obj)
            if any(isinstance(a, A.Spread) for a in node.args):
                self.items_with_spread(node.args)
                self.at(node)
                self.emit(Op.CALL_METHOD_SPREAD, (node.name, node.optional))
                return
            for a in node.args:
                self.expr(a)
            self.at(node)
            self.emit(Op.CALL_METHOD, (node.name, len(node.args), node.optional))
        elif isinstance(node, A.BuiltinCall):
            self.emit(Op.LOAD_BUILTIN, node.name)
            for a in node.args:
                self.expr(a)
            self.at(node)
            self.emit(Op.CALL, len(node.args))
        elif isinstance(node, A.Attr):
            self.expr(node.obj)
            self.at(node)
            self.emit(Op.GET_ATTR, (node.name, node.optional))
        elif isinstance(node, A.Index):
            self.expr(node.obj)
            self.expr(node.index)
            self.at(node)
            self.emit(Op.GET_INDEX)
        elif isinstance(node, A.Slice):
            self.expr(node.obj)
            if node.start is not None:
                self.expr(node.start)
            if node.end is not None:
                self.expr(node.end)
            self.at(node)
            self.emit(Op.SLICE, (node.start is not None, node.end is not None))
        elif isinstance(node, A.Duration):
            self.emit(Op.LOAD_CONST, Duration(node.ms))
        elif isinstance(node, A.Interp):
            for p in node.parts:
                if isinstance(p, str):
                    self.emit(Op.LOAD_CONST, p)
                else:
                    self.expr(p)
            self.at(node)
            self.emit(Op.BUILD_STRING, len(node.parts))
        elif isinstance(node, A.ListLit) and any(isinstance(i, A.Spread) for i in node.items):
            self.items_with_spread(node.items)
        elif isinstance(node, A.DictLit) and any(isinstance(k, A.Spread) for k, _ in node.entries):
            self.dict_with_spread(node)
        elif isinstance(node, A.ListLit):
            for item in node.items:
                self.expr(item)
            self.at(node)
            self.emit(Op.BUILD_LIST, len(node.items))
        elif isinstance(node, A.DictLit):
            for k, v in node.entries:
                self.expr(k)
                self.expr(v)
            self.at(node)
            self.emit(Op.BUILD_DICT, len(node.entries))
        elif isinstance(node, A.Unary):
            self.expr(node.operand)
            self.at(node)
            self.emit(Op.NEG if node.op == "-" else Op.NOT)
        elif isinstance(node, A.Logical):
            self.expr(node.left)
            self.at(node)
            op = {
                "&&": Op.JUMP_IF_FALSE_OR_POP,
                "||": Op.JUMP_IF_TRUE_OR_POP,
                "??": Op.JUMP_IF_NOT_NIL_OR_POP,
            }[node.op]
            j = self.emit(op, None)
            self.expr(node.right)
            self.code.patch(j, self.here())
        elif isinstance(node, A.Ternary):
            self.expr(node.cond)
            j = self.emit(Op.JUMP_IF_FALSE, None)
            self.expr(node.then)
            end = self.emit(Op.JUMP, None)
            self.code.patch(j, self.here())
            self.expr(node.other)
            self.code.patch(end, self.here())
        elif isinstance(node, A.Range):
            self.expr(node.start)
            self.expr(node.end)
            self.at(node)
            self.emit(Op.BUILD_RANGE, node.inclusive)
        elif isinstance(node, A.FuncExpr):
            self.emit(Op.MAKE_CLOSURE, self.function(node, traced=bool(node.name)))
        elif isinstance(node, A.IfExpr):
            self.if_(node, value=True)
        elif isinstance(node, A.TryExpr):
            self.try_(node, value=True)
        elif isinstance(node, A.Spawn):
            self.emit(Op.LOAD_BUILTIN, "__spawn")
            self.expr(node.body)
            self.at(node)
            self.emit(Op.LOAD_CONST, f"spawn@{self.label(node)}")
            self.emit(Op.CALL, 2)
        elif isinstance(node, A.Parallel):
            self.emit(Op.LOAD_BUILTIN, "__parallel")
            self.emit(Op.LOAD_CONST, f"{node.mode}:stream" if node.stream else node.mode)
            self.expr(node.subject)
            if node.options is not None:
                self.expr(node.options)
            else:
                self.emit(Op.LOAD_NIL)
            self.expr(node.body)
            self.at(node)
            self.emit(Op.LOAD_CONST, f"{node.mode}@{self.label(node)}")
            self.emit(Op.CALL, 5)
        elif isinstance(node, A.Deadline):
            self.emit(Op.LOAD_BUILTIN, "__deadline")
            self.expr(node.duration)
            self.expr(node.body)
            self.at(node)
            self.emit(Op.CALL, 2)
        elif isinstance(node, A.Select):
            self.select(node)
        elif isinstance(node, A.Match):
            self.match_(node)
        elif isinstance(node, A.Unwrap):
            self.unwrap(node)
        elif isinstance(node, A.Retry):
            self.retry(node)
        elif isinstance(node, A.StructLit):
            self.load_name(node.name)
            for k, v in node.entries:
                self.expr(k)
                self.expr(v)
            self.at(node)
            self.emit(Op.BUILD_DICT, len(node.entries))
            self.emit(Op.CALL, 1)
        elif isinstance(node, A.Spread):
            raise self.error("'...' spreads only inside calls, lists and dicts", node)
        else:
            raise self.error(f"cannot compile {type(node).__name__} here", node)
