"""Compiling the constructs built on the core ones: `match`, `retry`, `?`,
spreads, struct literals, and the declarations `struct`/`enum`/`impl`.

`match` arms are tried in order; a pattern is either structural (literals,
bound names, `_`, enum variants such as `Shape.Circle(r)` or `Ok(v)`,
list and dict shapes), checked by one MATCH instruction that pushes what it
binds, or any other expression, compared with `==`. The arm bodies are
ordinary code in the enclosing function, so their calls nest under its span.
"""

from __future__ import annotations

from typing import Any

from vm_demo import ast as A
from vm_demo.bytecode import Op
from vm_demo.compiler_scope import ScopeCompiler, TryBlock
from vm_demo.objects_types import EnumDef, StructDef

__all__ = ("ExtCompiler", "bound_names", "pattern_desc")


def pattern_desc(node: A.Node) -> tuple[Any, ...] | None:
    """The structural form of a match pattern, or None for an expression pattern."""
    if isinstance(node, A.Name):
        return ("any",) if node.name == "_" else ("bind", node.name)
    if isinstance(node, A.Const):
        return ("eq", node.value)
    if isinstance(node, A.Attr) and isinstance(node.obj, A.Name) and not node.optional:
        return ("variant", node.obj.name, node.name, None)
    if isinstance(node, A.MethodCall) and isinstance(node.obj, A.Name):
        subs = [pattern_desc(a) for a in node.args]
        if any(s is None for s in subs):
            return None
        return ("variant", node.obj.name, node.name, subs)
    if (
        isinstance(node, A.Call)
        and isinstance(node.func, A.Name)
        and node.func.name in ("Ok", "Err")
        and len(node.args) == 1
    ):
        sub = pattern_desc(node.args[0])
        return None if sub is None else ("variant", "Result", node.func.name, [sub])
    if isinstance(node, A.ListLit):
        items = node.items
        rest = None
        if items and isinstance(items[-1], A.Spread) and isinstance(items[-1].value, A.Name):
            rest = items[-1].value.name
            items = items[:-1]
        subs = [pattern_desc(x) for x in items]
        if any(s is None for s in subs):
            return None
        return ("list", subs, rest)
    if isinstance(node, A.DictLit):
        fields = []
        for k, v in node.entries:
            sub = pattern_desc(v)
            if not isinstance(k, A.Const) or sub is None:
                return None
            fields.append((k.value, sub))
        return ("dict", fields)
    return None


def bound_names(desc: tuple[Any, ...]) -> list[str]:
    """Names a structural pattern binds, in the order MATCH produces them."""
    kind = desc[0]
    if kind == "bind":
        return [desc[1]]
    if kind == "variant":
        return [n for s in desc[3] or [] for n in bound_names(s)]
    if kind == "list":
        names = [n for s in desc[1] for n in bound_names(s)]
        return names + ([desc[2]] if desc[2] else [])
    if kind == "dict":
        return [n for _, s in desc[1] for n in bound_names(s)]
    return []


class ExtCompiler(ScopeCompiler):
    """Mixin for `compiler_expr.ExprCompiler`; relies on its `expr`/`body_value`."""

    def expr(self, node: A.Node) -> None:
        raise NotImplementedError  # ExprCompiler.expr

    def body_value(self, stmts: list[A.Node]) -> None:
        raise NotImplementedError  # ExprCompiler.body_value

    def unwind(self, stop: int) -> None:
        raise NotImplementedError  # FunctionCompiler.unwind

    def function(self, fn: A.FuncExpr, *, traced: bool, step: bool = False) -> Any:
        raise NotImplementedError  # ExprCompiler.function

    # -- match ---------------------------------------------------------------------------

    def match_(self, node: A.Match) -> None:
        self.expr(node.subject)
        self.scopes.append({})
        subject = self.new_slot(" match")
        self.emit(Op.STORE_LOCAL, subject)
        ends: list[int] = []
        for arm in node.arms:
            self.scopes.append({})
            fails: list[int] = []
            to_body: list[int] = []
            names: list[str] = []
            for k, pat in enumerate(arm.patterns):
                self.at(pat)
                self.emit(Op.LOAD_LOCAL, subject)
                desc = pattern_desc(pat)
                if desc is None:
                    self.expr(pat)
                    self.emit(Op.EQ)
                    jump = self.emit(Op.JUMP_IF_FALSE, None)
                    names = []
                else:
                    names = bound_names(desc)
                    jump = self.emit(Op.MATCH, (desc, None))
                if len(arm.patterns) > 1 and names:
                    raise self.error("alternatives joined by '|' cannot bind names", pat)
                if k < len(arm.patterns) - 1:
                    to_body.append(self.emit(Op.JUMP, None))
                    self._patch_fail(jump)
                else:
                    fails.append(jump)
            for j in to_body:
                self.code.patch(j, self.here())
            for name in names:
                self.declare(name, False)
            if arm.guard is not None:
                self.expr(arm.guard)
                fails.append(self.emit(Op.JUMP_IF_FALSE, None))
            self.body_value(arm.body)
            ends.append(self.emit(Op.JUMP, None))
            for j in fails:
                self._patch_fail(j)
            self.scopes.pop()
        self.at(node)
        self.emit(Op.LOAD_LOCAL, subject)
        self.emit(Op.NO_MATCH)
        for j in ends:
            self.code.patch(j, self.here())
        self.scopes.pop()

    def _patch_fail(self, index: int) -> None:
        op, arg = self.code.instrs[index]
        if op == Op.MATCH:
            self.code.patch(index, (arg[0], self.here()))
        else:
            self.code.patch(index, self.here())

    # -- Result propagation and retry ------------------------------------------------------

    def unwrap(self, node: A.Unwrap) -> None:
        self.expr(node.value)
        self.at(node)
        ok = self.emit(Op.UNWRAP, None)
        self.unwind(0)
        self.emit(Op.RETURN)
        self.code.patch(ok, self.here())

    def retry(self, node: A.Retry) -> None:
        """Run the body until it succeeds, at most `count` times; nil if every try fails."""
        self.expr(node.count)
        self.scopes.append({})
        left = self.new_slot(" retry")
        self.emit(Op.STORE_LOCAL, left)
        top = self.here()
        setup = self.emit(Op.SETUP_TRY, None)
        self.blocks.append(TryBlock(None))
        self.body_value(node.body)
        self.blocks.pop()
        self.emit(Op.POP_BLOCK)
        done = self.emit(Op.JUMP, None)
        self.code.patch(setup, (self.here(), False))
        self.emit(Op.POP)
        self.emit(Op.LOAD_LOCAL, left)
        self.emit(Op.LOAD_CONST, 1)
        self.emit(Op.SUB)
        self.emit(Op.DUP)
        self.emit(Op.STORE_LOCAL, left)
        self.emit(Op.LOAD_CONST, 0)
        self.emit(Op.GT)
        self.emit(Op.JUMP_IF_TRUE, top)
        self.emit(Op.LOAD_NIL)
        self.code.patch(done, self.here())
        self.scopes.pop()

    # -- spreads --------------------------------------------------------------------------

    def items_with_spread(self, items: list[A.Node]) -> None:
        """Push a list built from `items`, flattening each `...expr` into it."""
        for item in items:
            self.expr(item.value if isinstance(item, A.Spread) else item)
        self.emit(Op.BUILD_LIST_SPREAD, tuple(isinstance(i, A.Spread) for i in items))

    def dict_with_spread(self, node: A.DictLit) -> None:
        flags = []
        for k, v in node.entries:
            if isinstance(k, A.Spread):
                self.expr(k.value)
                flags.append(True)
            else:
                self.expr(k)
                self.expr(v)
                flags.append(False)
        self.at(node)
        self.emit(Op.BUILD_DICT_SPREAD, tuple(flags))

    # -- declarations ----------------------------------------------------------------------

    def type_decl(self, node: A.StructDecl | A.EnumDecl) -> None:
        if isinstance(node, A.StructDecl):
            self.emit(Op.LOAD_CONST, StructDef(node.name, node.fields))
        else:
            self.emit(Op.LOAD_CONST, EnumDef(node.name, node.variants))
        self.declare(node.name, False)

    def impl_decl(self, node: A.ImplDecl) -> None:
        self.emit(Op.LOAD_BUILTIN, "__impl")
        self.load_name(node.target)
        for m in node.methods:
            self.emit(Op.LOAD_CONST, m.name)
            step = "step" in m.decorators
            m.func.name = f"{node.target}.{m.name}"
            self.emit(Op.MAKE_CLOSURE, self.function(m.func, traced=True, step=step))
        self.at(node)
        self.emit(Op.BUILD_DICT, len(node.methods))
        self.emit(Op.CALL, 2)
        self.emit(Op.POP)
