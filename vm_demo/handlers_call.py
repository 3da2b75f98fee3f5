"""Handlers of the call instructions: closures, calls (plain, method, spread)
and return. `handlers.TABLE` merges `CALL_HANDLERS`.

CALL is the hot path: a Harn closure becomes a pushed `Frame`, a sync
builtin runs in place, and anything else awaitable is returned to the loop.
The spread forms put their argument list on the stack and reuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vm_demo.bytecode import Op
from vm_demo.errors import HarnRuntimeError
from vm_demo.frame import FINISHED, Frame
from vm_demo.iterators import GeneratorFn
from vm_demo.objects import Builtin, Closure, to_display, type_name

if TYPE_CHECKING:
    from vm_demo.vm import VMBase

__all__ = (
    "CALL_HANDLERS",
    "op_call",
    "op_call_method",
    "op_call_method_spread",
    "op_call_spread",
    "op_make_closure",
    "op_return",
)


def op_make_closure(vm: VMBase, f: Frame, code: Any) -> None:
    cells = tuple(f.slots[i] if from_slot else f.cells[i] for from_slot, i in code.captures)
    f.stack.append((GeneratorFn if code.generator else Closure)(code, cells, f.globals))


def op_call(vm: VMBase, f: Frame, argc: int) -> Any:
    s = f.stack
    fn = s[-argc - 1]
    args = s[-argc:] if argc else []
    del s[-argc - 1 :]
    cls = fn.__class__
    if cls is Closure:
        return vm.make_frame(fn, args, f)
    if cls is Builtin:
        if fn.is_async:
            return fn.fn(vm, args)
        s.append(fn.fn(vm, args))
        return None
    call = getattr(fn, "harn_call", None)
    if call is None:
        raise HarnRuntimeError(f"TypeError: {type_name(fn)} {to_display(fn, True)} is not callable")
    return call(vm, args)


def op_call_method(vm: VMBase, f: Frame, arg: tuple[str, int, bool]) -> Any:
    name, argc, optional = arg
    s = f.stack
    obj = s[-argc - 1]
    args = s[-argc:] if argc else []
    del s[-argc - 1 :]
    if obj is None and optional:
        s.append(None)
        return None
    if optional:
        try:
            fn, is_async = vm.lookup_method(obj, name)
        except HarnRuntimeError:
            s.append(None)
            return None
    else:
        fn, is_async = vm.lookup_method(obj, name)
    if is_async:
        return fn(vm, obj, args)
    s.append(fn(vm, obj, args))
    return None


def op_return(vm: VMBase, f: Frame, arg: Any) -> Any:
    value = f.stack.pop()
    if f.span:
        vm.close_call(f.span)
    caller = f.caller
    if caller is None:
        f.retval = value
        return FINISHED
    caller.stack.append(value)
    return caller


def op_call_spread(vm: VMBase, f: Frame, arg: Any) -> Any:
    """`f(...xs)`: the callee and one argument list (BUILD_LIST_SPREAD) on the stack."""
    args = f.stack.pop()
    f.stack.extend(args)
    return op_call(vm, f, len(args))


def op_call_method_spread(vm: VMBase, f: Frame, arg: tuple[str, bool]) -> Any:
    name, optional = arg
    args = f.stack.pop()
    f.stack.extend(args)
    return op_call_method(vm, f, (name, len(args), optional))


CALL_HANDLERS: dict[Op, Callable[..., Any]] = {
    Op.MAKE_CLOSURE: op_make_closure,
    Op.CALL: op_call,
    Op.CALL_METHOD: op_call_method,
    Op.RETURN: op_return,
    Op.CALL_SPREAD: op_call_spread,
    Op.CALL_METHOD_SPREAD: op_call_method_spread,
}
