"""Bytecode: the `Op` set, `Code` objects and a disassembler.

Instructions are pre-decoded `(op, arg)` tuples (one list per code object)
so the dispatch loop does a tuple unpack and a table lookup per instruction.
`Code.lines[i]` / `Code.cols[i]` give the source position of instruction i.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = ("Code", "Op", "disassemble")


class Op(IntEnum):
    """Opcodes, grouped as the VM's handler table is."""

    # stack manipulation
    LOAD_CONST = 0
    LOAD_NIL = 1
    POP = 2
    DUP = 3
    # names: locals (frame slots), cells (captured locals), free vars, globals
    LOAD_LOCAL = 10
    STORE_LOCAL = 11
    LOAD_CELL = 12
    STORE_CELL = 13
    MAKE_CELL = 14  # store TOS into a *new* cell in slot arg (a declaration)
    LOAD_FREE = 15
    STORE_FREE = 16
    LOAD_GLOBAL = 17
    STORE_GLOBAL = 18  # assignment to an existing global
    DEFINE_GLOBAL = 19  # top-level declaration (arg: (name, mutable))
    LOAD_BUILTIN = 20  # intrinsics the compiler relies on, never shadowed
    # operators
    ADD = 30
    SUB = 31
    MUL = 32
    DIV = 33
    MOD = 34
    EQ = 35
    NE = 36
    LT = 37
    LE = 38
    GT = 39
    GE = 40
    IN = 41
    NOT_IN = 42
    NOT = 43
    NEG = 44
    POW = 45
    # control flow (jump args are absolute instruction indexes)
    JUMP = 50
    JUMP_IF_FALSE = 51  # pops
    JUMP_IF_TRUE = 52  # pops
    JUMP_IF_FALSE_OR_POP = 53  # && : keep the falsy value, else pop
    JUMP_IF_TRUE_OR_POP = 54  # || : keep the truthy value, else pop
    JUMP_IF_NOT_NIL_OR_POP = 55  # ??
    GET_ITER = 56
    FOR_ITER = 57  # push next item, or pop the iterator and jump to arg
    # containers and access
    BUILD_LIST = 60
    BUILD_DICT = 61
    BUILD_STRING = 62  # interpolation: display-format arg values and join
    BUILD_RANGE = 63  # arg: inclusive
    GET_ATTR = 64  # arg: (name, optional)
    SET_ATTR = 65
    GET_INDEX = 66
    SET_INDEX = 67
    SLICE = 68  # arg: (has_start, has_end)
    UNPACK_LIST = 69  # arg: (count, has_rest)
    # functions
    MAKE_CLOSURE = 70  # arg: Code; captures per Code.captures
    CALL = 71  # arg: argc; callee below the args
    CALL_METHOD = 72  # arg: (name, argc, optional); receiver below the args
    RETURN = 73
    YIELD = 74  # a generator hands TOS to its consumer and suspends
    CHECK_ARGS = 75  # arg: ((slot, name, types), ...) annotated primitive params
    ARG_SET = 76  # arg: (slot, target); jump to target if the param was passed
    CALL_SPREAD = 77  # callee, arg list -> result (a call with `...xs`)
    CALL_METHOD_SPREAD = 78  # arg: (name, optional); receiver, arg list
    # errors
    SETUP_TRY = 80  # arg: (handler index, finally-only?); records the stack depth
    POP_BLOCK = 81
    THROW = 82
    RERAISE = 83  # TOS is an error value caught by a handler: raise it again
    WRAP_OK = 84
    WRAP_ERR = 85
    NOP = 86
    IMPORT = 87  # arg: (path, names or None); merges into the module globals
    BUILD_LIST_SPREAD = 88  # arg: spread flags per item; spread items are flattened in
    BUILD_DICT_SPREAD = 89  # arg: spread flags per entry (a spread entry is one dict)
    MATCH = 90  # arg: (pattern, target); pop subject, push its bindings or jump
    UNWRAP = 91  # arg: target; Ok(v) -> v and jump; Err stays for the return path
    CHECK_CATCH = 92  # arg: type names; re-raise a caught error of another type
    UNPACK_PAIR = 93  # arg: count; a Pair (or list) into its parts
    UNPACK_DICT = 94  # arg: keys to leave out of the `...rest` dict, or None
    NO_MATCH = 95  # no arm matched: a runtime error


@dataclass(slots=True, eq=False)
class Code:
    """A compiled function body (a pipeline, fn, closure or module top level)."""

    name: str
    filename: str
    params: list[str] = field(default_factory=list)
    rest_param: bool = False
    instrs: list[tuple[int, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    cols: list[int] = field(default_factory=list)
    nslots: int = 0
    # Parameters that live in cells (captured by inner closures) by slot.
    cell_params: list[int] = field(default_factory=list)
    # How a closure captures: (from_enclosing_cell_slot?, index) per free var.
    captures: list[tuple[bool, int]] = field(default_factory=list)
    freevar_names: list[str] = field(default_factory=list)
    slot_names: list[str] = field(default_factory=list)
    traced: bool = False  # named fns emit fn_call spans; closures don't
    step: bool = False  # @step fns emit step spans instead
    generator: bool = False  # the body yields: calls make a Generator
    # Argument count for the no-binding-work path of a call (no rest or
    # defaulted params), else -1; `nrequired` params have no default.
    nfast: int = 0
    nrequired: int = 0

    def emit(self, op: Op, arg: Any = None, line: int = 0, col: int = 0) -> int:
        self.instrs.append((int(op), arg))
        self.lines.append(line)
        self.cols.append(col)
        return len(self.instrs) - 1

    def patch(self, index: int, arg: Any) -> None:
        op, _ = self.instrs[index]
        self.instrs[index] = (op, arg)

    def __repr__(self) -> str:
        return f"<code {self.name} {self.filename}>"


def _fmt_arg(code: Code, op: Op, arg: Any) -> str:
    if arg is None:
        return ""
    if op in (Op.LOAD_LOCAL, Op.STORE_LOCAL, Op.LOAD_CELL, Op.STORE_CELL, Op.MAKE_CELL):
        name = code.slot_names[arg] if arg < len(code.slot_names) else "?"
        return f"{arg} ({name})"
    if op in (Op.LOAD_FREE, Op.STORE_FREE):
        return f"{arg} ({code.freevar_names[arg]})"
    if op is Op.MAKE_CLOSURE:
        return f"<code {arg.name}>"
    return repr(arg)


def disassemble(code: Code, *, recursive: bool = True) -> str:
    """Render `code` (and nested code objects) one instruction per line.

    >>> from vm_demo.compiler import compile_source
    >>> print(disassemble(compile_source("let x = 1")))  # doctest: +SKIP
    """
    out = [f"== {code.name} ({code.filename}) slots={code.nslots} =="]
    nested: list[Code] = []
    last_line = -1
    for i, (op_int, arg) in enumerate(code.instrs):
        op = Op(op_int)
        line = code.lines[i]
        marker = f"{line:>4}" if line != last_line else "    "
        last_line = line
        out.append(f"{marker} {i:>5} {op.name:<22} {_fmt_arg(code, op, arg)}".rstrip())
        if op is Op.MAKE_CLOSURE:
            nested.append(arg)
    if recursive:
        for sub in nested:
            out.append("")
            out.append(disassemble(sub))
    return "\n".join(out)
