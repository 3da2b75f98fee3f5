"""Compiler: AST -> `Code` objects (one per module, fn, pipeline, closure).

Scoping is resolved at compile time. Every `{ }` gets its own scope; each
declaration gets a fresh frame slot. A function that contains nested
functions stores *all* its locals in cells (so closures share them), a
function without nested functions uses plain slots — the fast path that
keeps call-heavy code like `fib` cheap. Names that resolve nowhere are
globals, looked up at run time (module globals, then builtins).

`finally` bodies are compiled inline on every exit path (normal, error,
and `return`/`break`/`continue` crossing the try), as CPython does.
"""

from __future__ import annotations

from vm_demo import ast as A
from vm_demo.bytecode import Op
from vm_demo.compiler_expr import ExprCompiler
from vm_demo.compiler_scope import BINOPS, LoopBlock, ModuleCode, TryBlock
from vm_demo.errors import HarnSyntaxError, Location, deep_recursion, register_source
from vm_demo.parser import parse

__all__ = ("FunctionCompiler", "ModuleCode", "compile_module", "compile_source")


class FunctionCompiler(ExprCompiler):
    """Compiles one function body (statements here, expressions in the base)."""

    # -- statements --------------------------------------------------------------------

    def stmt(self, node: A.Node) -> None:
        self.at(node)
        if isinstance(node, A.ExprStmt):
            e = node.expr
            if isinstance(e, A.IfExpr):
                self.if_(e, value=False)
            elif (isinstance(e, A.TryExpr) and e.catch_body is not None) or (
                isinstance(e, A.TryExpr) and e.finally_body is not None
            ):
                assert isinstance(e, A.TryExpr)
                self.try_(e, value=False)
            else:
                self.expr(e)
                self.emit(Op.POP)
        elif isinstance(node, A.Let):
            self.expr(node.value)
            self.bind_pattern(node.target, node.mutable)
        elif isinstance(node, A.Assign):
            self.assign(node)
        elif isinstance(node, A.For):
            self.for_(node)
        elif isinstance(node, A.While):
            self.while_(node)
        elif isinstance(node, A.Break | A.Continue):
            self.jump_out(node)
        elif isinstance(node, A.Return):
            if node.value is None:
                self.emit(Op.LOAD_NIL)
            else:
                self.expr(node.value)
            self.at(node)
            self.unwind(0)
            self.emit(Op.RETURN)
        elif isinstance(node, A.Throw):
            self.expr(node.value)
            self.at(node)
            self.emit(Op.THROW)
        elif isinstance(node, A.Block):
            self.body_stmts(node.body)
        elif isinstance(node, A.FnDecl):
            self.fn_decl(node)
        elif isinstance(node, A.PipelineDecl):
            if not (self.is_module and len(self.scopes) == 1):
                raise self.error("pipelines must be declared at the top level", node)
            pipeline = self.function(node.func, traced=False)
            if pipeline.generator:
                raise self.error("'yield' outside of a fn (pipelines cannot yield)", node)
            self.emit(Op.MAKE_CLOSURE, pipeline)
            self.emit(Op.DEFINE_GLOBAL, (node.name, False))
            assert isinstance(self.code, ModuleCode)
            self.code.pipelines.append(node.name)
        elif isinstance(node, A.Import):
            self.emit(Op.IMPORT, (node.path, node.names))
        elif isinstance(node, A.StructDecl | A.EnumDecl):
            self.type_decl(node)
        elif isinstance(node, A.ImplDecl):
            self.impl_decl(node)
        elif isinstance(node, A.Guard):
            self.expr(node.cond)
            self.at(node)
            past = self.emit(Op.JUMP_IF_TRUE, None)
            self.body_stmts(node.body)
            self.code.patch(past, self.here())
        elif isinstance(node, A.Yield):
            if not self.code.generator:
                raise self.error("'yield' outside of a fn", node)
            if node.value is None:
                self.emit(Op.LOAD_NIL)
            else:
                self.expr(node.value)
            self.at(node)
            self.emit(Op.YIELD)
        elif isinstance(node, A.Defer):
            self.body_stmts(node.body)  # nothing follows it in its scope: it runs now
        else:
            self.expr(node)
            self.emit(Op.POP)

    def fn_decl(self, node: A.FnDecl) -> None:
        for d in node.decorators:
            if d != "step":
                raise self.error(f"unknown decorator '@{d}' (only @step is supported)", node)
        step = "step" in node.decorators
        if self.is_module and len(self.scopes) == 1:
            self.emit(Op.MAKE_CLOSURE, self.function(node.func, traced=True, step=step))
            self.declare(node.name, False)
            return
        # Declare first so the function can call itself recursively.
        self.emit(Op.LOAD_NIL)
        self.declare(node.name, False)
        b = self.scopes[-1][node.name]
        self.emit(Op.MAKE_CLOSURE, self.function(node.func, traced=True, step=step))
        self.emit(Op.STORE_CELL if b.cell else Op.STORE_LOCAL, b.slot)

    def assign(self, node: A.Assign) -> None:
        t = node.target
        binop = None if node.op == "=" else BINOPS[node.op[0]]
        if isinstance(t, A.Name):
            if binop is not None:
                self.load_name(t.name)
            self.assigned_value(node, binop)
            self.store_name(t.name, t)
        elif isinstance(t, A.Attr):
            self.expr(t.obj)
            if binop is not None:
                self.emit(Op.DUP)
                self.emit(Op.GET_ATTR, (t.name, False))
            self.assigned_value(node, binop)
            self.emit(Op.SET_ATTR, t.name)
        else:
            assert isinstance(t, A.Index)
            self.expr(t.obj)
            self.expr(t.index)
            if binop is not None:
                self.expr(t.obj)
                self.expr(t.index)
                self.emit(Op.GET_INDEX)
            self.assigned_value(node, binop)
            self.emit(Op.SET_INDEX)

    def assigned_value(self, node: A.Assign, binop: Op | None) -> None:
        """Push the value to store; for `x op= v` the old value is already on the stack."""
        self.expr(node.value)
        self.at(node)
        if binop is not None:
            self.emit(binop)
            self.at(node)

    def for_(self, node: A.For) -> None:
        self.expr(node.iterable)
        self.at(node)
        self.emit(Op.GET_ITER)
        top = self.here()
        exit_jump = self.emit(Op.FOR_ITER, None)
        loop = LoopBlock(top, is_for=True)
        self.blocks.append(loop)
        self.scopes.append({})
        self.bind_pattern(node.target, False)
        self.body_stmts(node.body)
        self.scopes.pop()
        self.blocks.pop()
        self.emit(Op.JUMP, top)
        brk = self.emit(Op.POP)  # `break` lands here and drops the iterator
        self.code.patch(exit_jump, self.here())
        for j in loop.breaks:
            self.code.patch(j, brk)

    def while_(self, node: A.While) -> None:
        top = self.here()
        self.expr(node.cond)
        self.at(node)
        exit_jump = self.emit(Op.JUMP_IF_FALSE, None)
        loop = LoopBlock(top)
        self.blocks.append(loop)
        self.body_stmts(node.body)
        self.blocks.pop()
        self.emit(Op.JUMP, top)
        self.code.patch(exit_jump, self.here())
        for j in loop.breaks:
            self.code.patch(j, self.here())

    def unwind(self, stop: int) -> None:
        """Leave every try block above index `stop`, running finally bodies."""
        saved = self.blocks
        for i in range(len(saved) - 1, stop - 1, -1):
            b = saved[i]
            if isinstance(b, TryBlock):
                self.emit(Op.POP_BLOCK)
                if b.finally_body is not None:
                    self.blocks = saved[:i]
                    self.body_stmts(b.finally_body)
                    self.blocks = saved
        self.blocks = saved

    def jump_out(self, node: A.Break | A.Continue) -> None:
        word = "break" if isinstance(node, A.Break) else "continue"
        for i in range(len(self.blocks) - 1, -1, -1):
            loop = self.blocks[i]
            if isinstance(loop, LoopBlock):
                self.unwind(i + 1)
                self.at(node)
                if isinstance(node, A.Break):
                    loop.breaks.append(self.emit(Op.JUMP, None))
                else:
                    self.emit(Op.JUMP, loop.continue_target)
                return
        raise self.error(f"'{word}' outside of a loop", node)


def compile_module(module: A.Module) -> ModuleCode:
    """Compile a parsed module; declarations are hoisted above other statements.

    Struct and enum types come first, then fns, then `impl` blocks (which
    need both), then the rest in source order.
    """
    code = ModuleCode("<module>", module.filename)
    comp = FunctionCompiler(code, None, module.body, {})
    order = (A.StructDecl | A.EnumDecl, A.FnDecl, A.ImplDecl)
    hoisted = [[s for s in module.body if isinstance(s, kind)] for kind in order]
    rest = [s for s in module.body if not isinstance(s, order)]
    with deep_recursion():
        try:
            for s in [*hoisted[0], *hoisted[1], *hoisted[2], *rest]:
                comp.stmt(s)
        except RecursionError:
            loc = Location(module.filename, comp.line or 1, comp.col or 1)
            raise HarnSyntaxError("program is nested too deeply", loc) from None
    comp.emit(Op.LOAD_NIL)
    comp.emit(Op.RETURN)
    return code


def compile_source(source: str, filename: str = "<input>") -> ModuleCode:
    """Parse and compile: `compile_source("println(1)").instrs[0]`."""
    register_source(filename, source)
    return compile_module(parse(source, filename))
