"""Compiler plumbing: scopes, slots, cells, free variables and globals.

Every `{ }` gets its own scope and each declaration a fresh frame slot. A
function that contains nested functions keeps *all* its locals in cells so
closures share them; one without nested functions uses plain slots (the
fast path for call-heavy code such as `fib`). Unresolved names are globals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from vm_demo import ast as A
from vm_demo.bytecode import Code, Op
from vm_demo.errors import HarnSyntaxError, Location

__all__ = ("BINOPS", "Binding", "LoopBlock", "ModuleCode", "ScopeCompiler", "TryBlock")

BINOPS = {
    "+": Op.ADD,
    "-": Op.SUB,
    "*": Op.MUL,
    "/": Op.DIV,
    "%": Op.MOD,
    "**": Op.POW,
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
class Binding:
    slot: int
    mutable: bool
    cell: bool


@dataclass(slots=True)
class LoopBlock:
    continue_target: int
    breaks: list[int] = field(default_factory=list)
    is_for: bool = False


@dataclass(slots=True)
class TryBlock:
    finally_body: list[A.Node] | None


class ModuleCode(Code):
    """The top-level code of a file plus its pipeline names in order."""

    __slots__ = ("pipelines",)

    def __init__(self, name: str, filename: str) -> None:
        super().__init__(name, filename)
        self.pipelines: list[str] = []


def _has_nested_function(nodes: list[A.Node]) -> bool:
    return any(isinstance(n, A.FuncExpr) for n in A.walk(nodes))


class ScopeCompiler:
    """Name resolution and slot allocation for one function body."""

    def __init__(
        self,
        code: Code,
        parent: ScopeCompiler | None,
        body: list[A.Node],
        module_globals: dict[str, bool],
    ) -> None:
        self.code = code
        self.parent = parent
        self.is_module = isinstance(code, ModuleCode)
        self.uses_cells = (not self.is_module) and _has_nested_function(body)
        if self.is_module:
            self.uses_cells = _has_nested_function(body)
        self.scopes: list[dict[str, Binding]] = [{}]
        self.free: dict[str, tuple[int, bool]] = {}  # name -> (index, mutable)
        self.blocks: list[LoopBlock | TryBlock] = []
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

    def _lookup_local(self, name: str) -> Binding | None:
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
            self.scopes[0][name] = Binding(-1, mutable, False)
            self.module_globals[name] = mutable
            self.emit(Op.DEFINE_GLOBAL, (name, mutable))
            return
        slot = self.new_slot(name)
        self.scopes[-1][name] = Binding(slot, mutable, self.uses_cells)
        self.emit(Op.MAKE_CELL if self.uses_cells else Op.STORE_LOCAL, slot)

    def bind_pattern(self, pat: A.Pattern, mutable: bool) -> None:
        self.at(pat)
        if isinstance(pat, A.NamePattern):
            self.declare(pat.name, mutable)
        elif isinstance(pat, A.ListPattern):
            self.emit(Op.UNPACK_LIST, (len(pat.items), pat.rest is not None))
            for item in pat.items:
                self._default_then_declare(item.name, item.default, mutable)
            if pat.rest is not None:
                self.declare(pat.rest, mutable)
        elif isinstance(pat, A.TuplePattern):
            self.emit(Op.UNPACK_PAIR, len(pat.items))
            for item in pat.items:
                self._default_then_declare(item.name, item.default, mutable)
        else:
            if pat.rest is not None:
                self.emit(Op.DUP)
                self.emit(Op.UNPACK_DICT, tuple(k for k, _, _ in pat.fields))
                self.declare(pat.rest, mutable)
            else:
                self.emit(Op.UNPACK_DICT, None)
            for key, bound, default in pat.fields:
                self.emit(Op.DUP)
                self.emit(Op.GET_ATTR, (key, False))
                self._default_then_declare(bound, default, mutable)
            self.emit(Op.POP)

    def _default_then_declare(self, name: str, default: A.Node | None, mutable: bool) -> None:
        """Bind TOS to `name`, replacing nil with the pattern's default first."""
        if default is not None:
            j = self.emit(Op.JUMP_IF_NOT_NIL_OR_POP, None)
            self.expr(default)
            self.code.patch(j, self.here())
        self.declare(name, mutable)

    def expr(self, node: A.Node) -> None:
        raise NotImplementedError  # ExprCompiler.expr

    def stmt(self, node: A.Node) -> None:
        raise NotImplementedError  # FunctionCompiler.stmt
