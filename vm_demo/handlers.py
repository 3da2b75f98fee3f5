"""Opcode handlers and the dispatch table (`TABLE[op]`), grouped as in `Op`.

Signature: `handler(vm, frame, arg)`, returning None (most ops), a `Frame`
to switch to (CALL of a Harn function, RETURN to the caller), `FINISHED`,
or an awaitable that the loop awaits and whose result it pushes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vm_demo import operators as ops
from vm_demo.bytecode import Op
from vm_demo.errors import HarnRuntimeError
from vm_demo.frame import NO_PUSH, Frame
from vm_demo.handlers_call import CALL_HANDLERS
from vm_demo.handlers_ext import EXT_HANDLERS
from vm_demo.iterators import END, AsyncIter, async_iter
from vm_demo.objects import Cell, HarnSet, Result, to_display, type_name
from vm_demo.objects_types import StructInstance

if TYPE_CHECKING:
    from vm_demo.vm import VMBase

__all__ = (
    "TABLE", "Handler", "op_add", "op_build_dict", "op_build_list", "op_build_range",
    "op_build_string", "op_define_global", "op_dup", "op_for_iter", "op_get_attr", "op_get_index",
    "op_get_iter", "op_import", "op_in", "op_jump", "op_jump_if_false", "op_jump_if_false_or_pop",
    "op_jump_if_not_nil_or_pop", "op_jump_if_true", "op_jump_if_true_or_pop", "op_load_builtin",
    "op_load_cell", "op_load_const", "op_load_free", "op_load_global", "op_load_local",
    "op_load_nil", "op_make_cell", "op_ne", "op_neg", "op_nop", "op_not", "op_not_in", "op_pop",
    "op_pop_block", "op_reraise", "op_set_attr", "op_set_index", "op_setup_try", "op_slice",
    "op_store_cell", "op_store_free", "op_store_global", "op_store_local", "op_sub", "op_throw",
    "op_unpack_list", "op_wrap_err", "op_wrap_ok",
)  # fmt: skip

_MISSING = object()

Handler = Callable[["VMBase", Frame, Any], Any]

# -- stack manipulation --------------------------------------------------------------


def op_load_const(vm: VMBase, f: Frame, arg: Any) -> None:
    f.stack.append(arg)


def op_load_nil(vm: VMBase, f: Frame, arg: Any) -> None:
    f.stack.append(None)


def op_pop(vm: VMBase, f: Frame, arg: Any) -> None:
    f.stack.pop()


def op_dup(vm: VMBase, f: Frame, arg: Any) -> None:
    f.stack.append(f.stack[-1])


def op_nop(vm: VMBase, f: Frame, arg: Any) -> None:
    return None


# -- names -------------------------------------------------------------------------------


def op_load_local(vm: VMBase, f: Frame, arg: int) -> None:
    f.stack.append(f.slots[arg])


def op_store_local(vm: VMBase, f: Frame, arg: int) -> None:
    f.slots[arg] = f.stack.pop()


def op_load_cell(vm: VMBase, f: Frame, arg: int) -> None:
    f.stack.append(f.slots[arg].value)


def op_store_cell(vm: VMBase, f: Frame, arg: int) -> None:
    f.slots[arg].value = f.stack.pop()


def op_make_cell(vm: VMBase, f: Frame, arg: int) -> None:
    f.slots[arg] = Cell(f.stack.pop())


def op_load_free(vm: VMBase, f: Frame, arg: int) -> None:
    f.stack.append(f.cells[arg].value)


def op_store_free(vm: VMBase, f: Frame, arg: int) -> None:
    f.cells[arg].value = f.stack.pop()


def op_load_global(vm: VMBase, f: Frame, name: str) -> None:
    v = f.globals.get(name, _MISSING)
    if v is _MISSING:
        v = vm.builtins.get(name, _MISSING)
        if v is _MISSING:
            raise HarnRuntimeError(f"undefined variable '{name}'")
    f.stack.append(v)


def op_store_global(vm: VMBase, f: Frame, name: str) -> None:
    g = f.globals
    if name not in g:
        raise HarnRuntimeError(f"assignment to undeclared variable '{name}'")
    if name in g[" consts"]:
        raise HarnRuntimeError(f"cannot assign to immutable binding '{name}'")
    g[name] = f.stack.pop()


def op_define_global(vm: VMBase, f: Frame, arg: tuple[str, bool]) -> None:
    name, mutable = arg
    f.globals[name] = f.stack.pop()
    consts = f.globals[" consts"]
    if mutable:
        consts.discard(name)
    else:
        consts.add(name)


def op_load_builtin(vm: VMBase, f: Frame, name: str) -> None:
    f.stack.append(vm.builtins[name])


# -- operators ------------------------------------------------------------------------


def op_add(vm: VMBase, f: Frame, arg: Any) -> None:
    s = f.stack
    b = s.pop()
    a = s[-1]
    t = a.__class__
    if t is b.__class__ and (t is int or t is str or t is float):
        s[-1] = a + b
    else:
        s[-1] = ops.add(a, b)


def op_sub(vm: VMBase, f: Frame, arg: Any) -> None:
    s = f.stack
    b = s.pop()
    a = s[-1]
    if a.__class__ is int and b.__class__ is int:
        s[-1] = a - b
    else:
        s[-1] = ops.sub(a, b)


def _binary(fn: Callable[[Any, Any], Any]) -> Handler:
    """A handler for a binary operator with no int fast path: ``a b -> fn(a, b)``."""

    def handler(vm: VMBase, f: Frame, arg: Any) -> None:
        s = f.stack
        b = s.pop()
        s[-1] = fn(s[-1], b)

    return handler


def op_ne(vm: VMBase, f: Frame, arg: Any) -> None:
    s = f.stack
    b = s.pop()
    s[-1] = not ops.equal(s[-1], b)


def _cmp(op: str, fast: Callable[[Any, Any], bool]) -> Handler:
    def handler(vm: VMBase, f: Frame, arg: Any) -> None:
        s = f.stack
        b = s.pop()
        a = s[-1]
        if a.__class__ is int and b.__class__ is int:
            s[-1] = fast(a, b)
        else:
            s[-1] = ops.compare(op, a, b)

    return handler


def op_in(vm: VMBase, f: Frame, arg: Any) -> None:
    s = f.stack
    container = s.pop()
    s[-1] = ops.contains(container, s[-1])


def op_not_in(vm: VMBase, f: Frame, arg: Any) -> None:
    s = f.stack
    container = s.pop()
    s[-1] = not ops.contains(container, s[-1])


def op_not(vm: VMBase, f: Frame, arg: Any) -> None:
    f.stack[-1] = not f.stack[-1]


def op_neg(vm: VMBase, f: Frame, arg: Any) -> None:
    f.stack[-1] = ops.negate(f.stack[-1])


# -- control flow -----------------------------------------------------------------------


def op_jump(vm: VMBase, f: Frame, arg: int) -> None:
    f.pc = arg


def op_jump_if_false(vm: VMBase, f: Frame, arg: int) -> None:
    if not f.stack.pop():
        f.pc = arg


def op_jump_if_true(vm: VMBase, f: Frame, arg: int) -> None:
    if f.stack.pop():
        f.pc = arg


def op_jump_if_false_or_pop(vm: VMBase, f: Frame, arg: int) -> None:
    if not f.stack[-1]:
        f.pc = arg
    else:
        f.stack.pop()


def op_jump_if_true_or_pop(vm: VMBase, f: Frame, arg: int) -> None:
    if f.stack[-1]:
        f.pc = arg
    else:
        f.stack.pop()


def op_jump_if_not_nil_or_pop(vm: VMBase, f: Frame, arg: int) -> None:
    if f.stack[-1] is not None:
        f.pc = arg
    else:
        f.stack.pop()


_PLAIN_ITERABLES = frozenset({list, dict, str, HarnSet, range})


def op_get_iter(vm: VMBase, f: Frame, arg: Any) -> None:
    v = f.stack[-1]
    f.stack[-1] = ops.iterate(v) if v.__class__ in _PLAIN_ITERABLES else async_iter(vm, v)


def op_for_iter(vm: VMBase, f: Frame, arg: int) -> Any:
    it = f.stack[-1]
    if it.__class__ is AsyncIter:
        return _async_next(f, it, arg)
    v = next(it, END)
    if v is END:
        f.stack.pop()
        f.pc = arg
    else:
        f.stack.append(v)
    return None


async def _async_next(f: Frame, it: AsyncIter, exit_pc: int) -> Any:
    v = await it.pull()
    if v is END:  # a closed and drained channel, a finished generator or iter
        f.stack.pop()
        f.pc = exit_pc
        return NO_PUSH
    return v


# -- containers and access ----------------------------------------------------------


def op_build_list(vm: VMBase, f: Frame, n: int) -> None:
    s = f.stack
    if n:
        items = s[-n:]
        del s[-n:]
        s.append(items)
    else:
        s.append([])


def op_build_dict(vm: VMBase, f: Frame, n: int) -> None:
    s = f.stack
    items = s[len(s) - 2 * n :] if n else []
    if n:
        del s[-2 * n :]
    s.append({items[i]: items[i + 1] for i in range(0, len(items), 2)})


def op_build_string(vm: VMBase, f: Frame, n: int) -> None:
    s = f.stack
    parts = s[-n:]
    del s[-n:]
    s.append("".join(p if p.__class__ is str else to_display(p) for p in parts))


def op_build_range(vm: VMBase, f: Frame, inclusive: bool) -> None:
    end = f.stack.pop()
    f.stack[-1] = ops.make_range(f.stack[-1], end, inclusive)


def op_get_attr(vm: VMBase, f: Frame, arg: tuple[str, bool]) -> None:
    name, optional = arg
    obj = f.stack[-1]
    if optional:
        # `?.` gives nil for a nil receiver and for a field the value lacks (`42?.foo`).
        try:
            f.stack[-1] = None if obj is None else ops.get_attr(obj, name)
        except HarnRuntimeError:
            f.stack[-1] = None
        return
    f.stack[-1] = ops.get_attr(obj, name)


def op_set_attr(vm: VMBase, f: Frame, name: str) -> None:
    value = f.stack.pop()
    obj = f.stack.pop()
    if obj.__class__ is StructInstance:
        if name not in obj.fields:
            raise HarnRuntimeError(f"struct {obj.sdef.name} has no field '{name}'")
        obj.fields[name] = value
        return
    if obj.__class__ is not dict:
        raise HarnRuntimeError(f"cannot set field '{name}' on {type_name(obj)}")
    obj[name] = value


def op_get_index(vm: VMBase, f: Frame, arg: Any) -> None:
    index = f.stack.pop()
    f.stack[-1] = ops.get_index(f.stack[-1], index)


def op_set_index(vm: VMBase, f: Frame, arg: Any) -> None:
    value = f.stack.pop()
    index = f.stack.pop()
    ops.set_index(f.stack.pop(), index, value)


def op_slice(vm: VMBase, f: Frame, arg: tuple[bool, bool]) -> None:
    has_start, has_end = arg
    end = f.stack.pop() if has_end else None
    start = f.stack.pop() if has_start else None
    f.stack[-1] = ops.slice_of(f.stack[-1], start, end)


def op_unpack_list(vm: VMBase, f: Frame, arg: tuple[int, bool]) -> None:
    count, has_rest = arg
    v = f.stack.pop()
    if v.__class__ is range:
        v = list(v)
    if v.__class__ is not list:
        raise HarnRuntimeError(f"cannot destructure {type_name(v)} as a list")
    items = [v[i] if i < len(v) else None for i in range(count)]
    if has_rest:
        f.stack.append(list(v[count:]))
    f.stack.extend(reversed(items))


# -- errors ---------------------------------------------------------------------------


def op_setup_try(vm: VMBase, f: Frame, arg: tuple[int, bool]) -> None:
    f.blocks.append((arg[0], len(f.stack), arg[1]))


def op_pop_block(vm: VMBase, f: Frame, arg: Any) -> None:
    f.blocks.pop()


def op_throw(vm: VMBase, f: Frame, arg: Any) -> None:
    err = HarnRuntimeError(f.stack.pop())
    err.thrown = True
    raise err


def op_reraise(vm: VMBase, f: Frame, arg: Any) -> None:
    value = f.stack.pop()
    exc = f.exc
    if exc is not None and exc.value is value:
        if exc.cancellation is not None:  # a finally ran for a cancellation: resume it
            raise exc.cancellation
        raise exc
    raise HarnRuntimeError(value)


def op_wrap_ok(vm: VMBase, f: Frame, arg: Any) -> None:
    v = f.stack[-1]
    if v.__class__ is not Result:
        f.stack[-1] = Result(True, v)


def op_wrap_err(vm: VMBase, f: Frame, arg: Any) -> None:
    f.stack[-1] = Result(False, f.stack[-1])


def op_import(vm: VMBase, f: Frame, arg: tuple[str, list[str] | None]) -> Any:
    return vm.import_module(f, arg[0], arg[1])


_HANDLERS: dict[Op, Handler] = {
    Op.LOAD_CONST: op_load_const,
    Op.LOAD_NIL: op_load_nil,
    Op.POP: op_pop,
    Op.DUP: op_dup,
    Op.NOP: op_nop,
    Op.LOAD_LOCAL: op_load_local,
    Op.STORE_LOCAL: op_store_local,
    Op.LOAD_CELL: op_load_cell,
    Op.STORE_CELL: op_store_cell,
    Op.MAKE_CELL: op_make_cell,
    Op.LOAD_FREE: op_load_free,
    Op.STORE_FREE: op_store_free,
    Op.LOAD_GLOBAL: op_load_global,
    Op.STORE_GLOBAL: op_store_global,
    Op.DEFINE_GLOBAL: op_define_global,
    Op.LOAD_BUILTIN: op_load_builtin,
    Op.ADD: op_add,
    Op.SUB: op_sub,
    Op.MUL: _binary(ops.mul),
    Op.DIV: _binary(ops.div),
    Op.MOD: _binary(ops.mod),
    Op.EQ: _binary(ops.equal),
    Op.NE: op_ne,
    Op.LT: _cmp("<", lambda a, b: a < b),
    Op.LE: _cmp("<=", lambda a, b: a <= b),
    Op.GT: _cmp(">", lambda a, b: a > b),
    Op.GE: _cmp(">=", lambda a, b: a >= b),
    Op.IN: op_in,
    Op.NOT_IN: op_not_in,
    Op.NOT: op_not,
    Op.NEG: op_neg,
    Op.JUMP: op_jump,
    Op.JUMP_IF_FALSE: op_jump_if_false,
    Op.JUMP_IF_TRUE: op_jump_if_true,
    Op.JUMP_IF_FALSE_OR_POP: op_jump_if_false_or_pop,
    Op.JUMP_IF_TRUE_OR_POP: op_jump_if_true_or_pop,
    Op.JUMP_IF_NOT_NIL_OR_POP: op_jump_if_not_nil_or_pop,
    Op.GET_ITER: op_get_iter,
    Op.FOR_ITER: op_for_iter,
    Op.BUILD_LIST: op_build_list,
    Op.BUILD_DICT: op_build_dict,
    Op.BUILD_STRING: op_build_string,
    Op.BUILD_RANGE: op_build_range,
    Op.GET_ATTR: op_get_attr,
    Op.SET_ATTR: op_set_attr,
    Op.GET_INDEX: op_get_index,
    Op.SET_INDEX: op_set_index,
    Op.SLICE: op_slice,
    Op.UNPACK_LIST: op_unpack_list,
    Op.SETUP_TRY: op_setup_try,
    Op.POP_BLOCK: op_pop_block,
    Op.THROW: op_throw,
    Op.RERAISE: op_reraise,
    Op.WRAP_OK: op_wrap_ok,
    Op.WRAP_ERR: op_wrap_err,
    Op.IMPORT: op_import,
}


def _build_table() -> list[Handler]:
    def bad(vm: VMBase, f: Frame, arg: Any) -> None:
        raise RuntimeError(f"bad opcode at {f.location()}")

    table: list[Handler] = [bad] * (max(Op) + 1)
    handlers = {**_HANDLERS, **CALL_HANDLERS, **EXT_HANDLERS}
    for op, h in handlers.items():
        table[op] = h
    missing = [op.name for op in Op if op not in handlers]
    assert not missing, f"ops without handlers: {missing}"
    return table


TABLE = _build_table()
