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

import os
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from vm_demo import ast as A
from vm_demo.bytecode import Code, Op
from vm_demo.errors import HarnSyntaxError, Location, register_source
from vm_demo.objects import Duration
from vm_demo.parser import parse

_BINOPS = {
    "+": Op.ADD,
    "-": Op.SUB,
    "*": Op.MUL,
    "/": Op.DIV,
    "%": Op.MOD,
    "==": Op.EQ,
    "!=": Op.NE,
    "<": Op.LT,
    "<=": Op.LE,
    ">": Op.GT,
    ">=": Op.GE,
    "in": Op.IN,
    "not in": Op.NOT_IN,
}


@dataclass(slots=True)
class _Binding:
    slot: int
    mutable: bool
    cell: bool


@dataclass(slots=True)
class _Loop:
    continue_target: int
    breaks: list[int] = field(default_factory=list)
    is_for: bool = False


@dataclass(slots=True)
class _Try:
    finally_body: list[A.Node] | None


class ModuleCode(Code):
    """The top-level code of a file plus its pipeline names in order."""

    __slots__ = ("pipelines",)

    def __init__(self, name: str, filename: str) -> None:
        super().__init__(name, filename)
        self.pipelines: list[str] = []


def _has_nested_function(nodes: list[A.Node]) -> bool:
    stack: list[Any] = list(nodes)
    while stack:
        n = stack.pop()
        if isinstance(n, A.FuncExpr):
            return True
        if isinstance(n, list | tuple):
            stack.extend(n)
        elif is_dataclass(n):
            stack.extend(getattr(n, f.name) for f in fields(n))
    return False


class FunctionCompiler:
    """Compiles one function body into `self.code`."""

    def __init__(
        self,
        code: Code,
        parent: FunctionCompiler | None,
        body: list[A.Node],
        module_globals: dict[str, bool],
    ) -> None:
        self.code = code
        self.parent = parent
        self.is_module = isinstance(code, ModuleCode)
        self.uses_cells = (not self.is_module) and _has_nested_function(body)
        if self.is_module:
            self.uses_cells = _has_nested_function(body)
        self.scopes: list[dict[str, _Binding]] = [{}]
        self.free: dict[str, tuple[int, bool]] = {}  # name -> (index, mutable)
        self.blocks: list[_Loop | _Try] = []
        self.module_globals = module_globals  # name -> mutable
        self.line = 0
        self.col = 0

    # -- helpers -----------------------------------------------------------------

    def error(self, msg: str, node: A.Node) -> HarnSyntaxError:
        return HarnSyntaxError(msg, Location(self.code.filename, node.line, node.col))

    def emit(self, op: Op, arg: Any = None) -> int:
        return self.code.emit(op, arg, self.line, self.col)

    def at(self, node: A.Node) -> None:
        self.line, self.col = node.line, node.col

    def label(self, node: A.Node) -> str:
        """`file.harn:LINE`, used to name spawn/parallel spans."""
        return f"{os.path.basename(self.code.filename)}:{node.line}"

    def here(self) -> int:
        return len(self.code.instrs)

    def new_slot(self, name: str) -> int:
        self.code.slot_names.append(name)
        self.code.nslots += 1
        return self.code.nslots - 1

    # -- names ---------------------------------------------------------------------

    def _lookup_local(self, name: str) -> _Binding | None:
        for scope in reversed(self.scopes):
            b = scope.get(name)
            if b is not None:
                return b
        return None

    def _capture(self, name: str) -> tuple[int, bool] | None:
        """Resolve `name` as a free variable of this function (index, mutable)."""
        if name in self.free:
            return self.free[name]
        parent = self.parent
        if parent is None:
            return None
        b = parent._lookup_local(name)
        is_global = b is not None and parent.is_module and parent.scopes[0].get(name) is b
        if b is not None and not is_global:
            if not b.cell:
                return None  # unreachable: parents with nested fns use cells
            entry = (True, b.slot)
            mutable = b.mutable
        else:
            if b is not None:
                return None  # a module-level global
            pf = parent._capture(name)
            if pf is None:
                return None
            entry = (False, pf[0])
            mutable = pf[1]
        idx = len(self.code.captures)
        self.code.captures.append(entry)
        self.code.freevar_names.append(name)
        self.free[name] = (idx, mutable)
        return self.free[name]

    def load_name(self, name: str) -> None:
        b = self._lookup_local(name)
        if b is not None and not (self.is_module and b is self.scopes[0].get(name)):
            self.emit(Op.LOAD_CELL if b.cell else Op.LOAD_LOCAL, b.slot)
            return
        if b is None:
            fr = self._capture(name)
            if fr is not None:
                self.emit(Op.LOAD_FREE, fr[0])
                return
        self.emit(Op.LOAD_GLOBAL, name)

    def store_name(self, name: str, node: A.Node) -> None:
        b = self._lookup_local(name)
        if b is not None and not (self.is_module and b is self.scopes[0].get(name)):
            if not b.mutable:
                raise self.error(
                    f"cannot assign to immutable binding '{name}' (declared with let)", node
                )
            self.emit(Op.STORE_CELL if b.cell else Op.STORE_LOCAL, b.slot)
            return
        if b is None:
            fr = self._capture(name)
            if fr is not None:
                if not fr[1]:
                    raise self.error(
                        f"cannot assign to immutable binding '{name}' (declared with let)", node
                    )
                self.emit(Op.STORE_FREE, fr[0])
                return
        if self.module_globals.get(name) is False:
            raise self.error(
                f"cannot assign to immutable binding '{name}' (declared with let)", node
            )
        self.emit(Op.STORE_GLOBAL, name)

    def declare(self, name: str, mutable: bool) -> None:
        """Bind TOS to a new variable `name` in the innermost scope (pops it)."""
        if name == "_":
            self.emit(Op.POP)
            return
        if self.is_module and len(self.scopes) == 1:
            self.scopes[0][name] = _Binding(-1, mutable, False)
            self.module_globals[name] = mutable
            self.emit(Op.DEFINE_GLOBAL, (name, mutable))
            return
        slot = self.new_slot(name)
        self.scopes[-1][name] = _Binding(slot, mutable, self.uses_cells)
        self.emit(Op.MAKE_CELL if self.uses_cells else Op.STORE_LOCAL, slot)

    def bind_pattern(self, pat: A.Pattern, mutable: bool) -> None:
        self.at(pat)
        if isinstance(pat, A.NamePattern):
            self.declare(pat.name, mutable)
        elif isinstance(pat, A.ListPattern):
            self.emit(Op.UNPACK_LIST, (len(pat.items), pat.rest is not None))
            for item in pat.items:
                self.declare(item.name, mutable)
            if pat.rest is not None:
                self.declare(pat.rest, mutable)
        else:
            for key, bound in pat.fields:
                self.emit(Op.DUP)
                self.emit(Op.GET_ATTR, (key, False))
                self.declare(bound, mutable)
            self.emit(Op.POP)

    # -- bodies ----------------------------------------------------------------------

    def body_value(self, stmts: list[A.Node]) -> None:
        """Compile a block whose value (its last expression) stays on the stack."""
        self.scopes.append({})
        for s in stmts[:-1]:
            self.stmt(s)
        if not stmts:
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
        for s in stmts:
            self.stmt(s)
        self.scopes.pop()

    def function(self, fn: A.FuncExpr, *, traced: bool, step: bool = False) -> Code:
        code = Code(fn.name or "<closure>", self.code.filename)
        code.traced = traced
        code.step = step
        code.params = [p.name for p in fn.params]
        code.rest_param = bool(fn.params) and fn.params[-1].rest
        sub = FunctionCompiler(code, self, fn.body, self.module_globals)
        for p in fn.params:
            slot = sub.new_slot(p.name)
            sub.scopes[0][p.name] = _Binding(slot, False, sub.uses_cells)
            if sub.uses_cells:
                code.cell_params.append(slot)
        sub.at(fn)
        sub.body_value(fn.body)
        sub.emit(Op.RETURN)
        return code

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
            self.emit(Op.MAKE_CLOSURE, self.function(node.func, traced=False))
            self.emit(Op.DEFINE_GLOBAL, (node.name, False))
            assert isinstance(self.code, ModuleCode)
            self.code.pipelines.append(node.name)
        elif isinstance(node, A.Import):
            self.emit(Op.IMPORT, (node.path, node.names))
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
        binop = None if node.op == "=" else _BINOPS[node.op[0]]
        if isinstance(t, A.Name):
            if binop is not None:
                self.load_name(t.name)
                self.expr(node.value)
                self.at(node)
                self.emit(binop)
            else:
                self.expr(node.value)
            self.at(node)
            self.store_name(t.name, t)
        elif isinstance(t, A.Attr):
            self.expr(t.obj)
            if binop is not None:
                self.emit(Op.DUP)
                self.emit(Op.GET_ATTR, (t.name, False))
                self.expr(node.value)
                self.at(node)
                self.emit(binop)
            else:
                self.expr(node.value)
            self.at(node)
            self.emit(Op.SET_ATTR, t.name)
        else:
            assert isinstance(t, A.Index)
            self.expr(t.obj)
            self.expr(t.index)
            if binop is not None:
                self.expr(t.obj)
                self.expr(t.index)
                self.emit(Op.GET_INDEX)
                self.expr(node.value)
                self.at(node)
                self.emit(binop)
            else:
                self.expr(node.value)
            self.at(node)
            self.emit(Op.SET_INDEX)

    def for_(self, node: A.For) -> None:
        self.expr(node.iterable)
        self.at(node)
        self.emit(Op.GET_ITER)
        top = self.here()
        exit_jump = self.emit(Op.FOR_ITER, None)
        loop = _Loop(top, is_for=True)
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
        loop = _Loop(top)
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
            if isinstance(b, _Try):
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
            if isinstance(loop, _Loop):
                self.unwind(i + 1)
                self.at(node)
                if isinstance(node, A.Break):
                    loop.breaks.append(self.emit(Op.JUMP, None))
                else:
                    self.emit(Op.JUMP, loop.continue_target)
                return
        raise self.error(f"'{word}' outside of a loop", node)

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
        body_fn = self.body_value if value else self.body_stmts
        fin = node.finally_body
        bare = node.catch_body is None and fin is None
        self.at(node)
        setup = self.emit(Op.SETUP_TRY, None)
        self.blocks.append(_Try(fin))
        body_fn(node.body)
        self.blocks.pop()
        self.emit(Op.POP_BLOCK)
        if bare and value:
            self.emit(Op.WRAP_OK)
        if fin is not None:
            self.body_stmts(fin)
        end_jumps = [self.emit(Op.JUMP, None)]
        self.code.patch(setup, self.here())  # handler: the error value is on the stack
        if bare:
            if value:
                self.emit(Op.WRAP_ERR)
            else:
                self.emit(Op.POP)
        elif node.catch_body is None:
            assert fin is not None
            self.body_stmts(fin)
            self.emit(Op.RERAISE)
        else:
            inner = self.emit(Op.SETUP_TRY, None) if fin is not None else -1
            self.blocks.append(_Try(fin)) if fin is not None else None
            self.scopes.append({})
            if node.catch_name is not None:
                self.declare(node.catch_name, False)
            else:
                self.emit(Op.POP)
            body_fn(node.catch_body)
            self.scopes.pop()
            if fin is not None:
                self.blocks.pop()
                self.emit(Op.POP_BLOCK)
                self.body_stmts(fin)
                end_jumps.append(self.emit(Op.JUMP, None))
                self.code.patch(inner, self.here())
                self.body_stmts(fin)
                self.emit(Op.RERAISE)
        for j in end_jumps:
            self.code.patch(j, self.here())

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
            self.emit(_BINOPS[node.op])
        elif isinstance(node, A.Call):
            self.expr(node.func)
            for a in node.args:
                self.expr(a)
            self.at(node)
            self.emit(Op.CALL, len(node.args))
        elif isinstance(node, A.MethodCall):
            self.expr(node.obj)
            for a in node.args:
                self.expr(a)
            self.at(node)
            self.emit(Op.CALL_METHOD, (node.name, len(node.args), node.optional))
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
            self.emit(Op.LOAD_CONST, node.mode)
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
        else:
            raise self.error(f"cannot compile {type(node).__name__} here", node)


def compile_module(module: A.Module) -> ModuleCode:
    """Compile a parsed module; its fns are hoisted above other statements."""
    code = ModuleCode("<module>", module.filename)
    comp = FunctionCompiler(code, None, module.body, {})
    fns = [s for s in module.body if isinstance(s, A.FnDecl)]
    rest = [s for s in module.body if not isinstance(s, A.FnDecl)]
    for s in fns + rest:
        comp.stmt(s)
    comp.emit(Op.LOAD_NIL)
    comp.emit(Op.RETURN)
    return code


def compile_source(source: str, filename: str = "<input>") -> ModuleCode:
    """Parse and compile: `compile_source("println(1)").instrs[0]`."""
    register_source(filename, source)
    return compile_module(parse(source, filename))
