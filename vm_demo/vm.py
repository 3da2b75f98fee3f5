"""The async dispatch loop.

One `run_frame` call executes a chain of frames (a Harn call does not
recurse into Python: CALL pushes a `Frame`, RETURN pops it), so deep Harn
recursion costs heap, not C stack. Handlers live in `handlers.TABLE`, indexed by
`Op`. A handler returns None (the common case), a `Frame` to switch to,
`FINISHED` when the base frame returns, or an awaitable — an async builtin
or VM operation — which the loop awaits and whose result it pushes (unless
it is `NO_PUSH`). So only instructions that really suspend pay for `await`.

Named functions open an `fn_call` span (`step` for `@step` fns) when the
frame is pushed and close it when the frame returns or unwinds; since the
span API keeps the parent chain per task, spans of interleaved tasks nest
correctly without the VM doing anything special. `bind_collector` is the
one place that decides how call spans start (`trace_calls` thins the
`fn_call` ones, see `trace_calls.py`); they go
straight to the run's collector (looked up once per run, not per call) and
end with its cheap `close`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

from harn_async_trace import SpanCollector, SpanKind, current_collector, span_set_metadata
from vm_demo.errors import HarnRuntimeError, TraceEntry
from vm_demo.frame import FINISHED, NO_PUSH, Frame
from vm_demo.handlers import TABLE
from vm_demo.handlers_ext import UNSET
from vm_demo.iterators import SUSPENDED
from vm_demo.objects import Builtin, Cell, Closure, type_name

__all__ = ("FINISHED", "MAX_DEPTH", "NO_PUSH", "Frame", "VMBase")

# Frames live on the heap, so depth costs memory, not the C stack; the limit
# turns runaway recursion into a Harn error long before memory runs out.
MAX_DEPTH = 25_000
_FN_CALL = SpanKind.FN_CALL
_STEP = SpanKind.STEP


class VMBase:
    """Frame management and the dispatch loop; `vm_demo.runtime.VM` adds the rest."""

    builtins: dict[str, Any]
    _tracing: bool = False
    # Whether fn_call spans are recorded now: 0 no (tracing off or
    # --trace-calls none), 1 every call, 2 sampled (ask take_call()).
    calls_traced: int = 0
    # One fn_call in `trace_calls` is recorded: 1 all, 0 none (see trace_calls.py).
    trace_calls: int = 1
    _collector: SpanCollector | None = None
    # Set by bind_collector: whether this call is traced, how its span starts
    # and its cheap end.
    take_call: Callable[[], bool]
    open_call: Callable[[SpanKind, str], int]
    close_call: Callable[[int], object]

    @property
    def tracing(self) -> bool:
        """Whether this run records spans (the enable_tracing builtin sets it)."""
        return self._tracing

    @tracing.setter
    def tracing(self, on: bool) -> None:
        self._tracing = on
        every = self.trace_calls
        self.calls_traced = 0 if not on or not every else 1 if every == 1 else 2

    def bind_collector(self) -> None:
        """Open this run's call spans in the current collector (call at the start of a run).

        The one place that decides which calls are traced and how their spans
        start: `take_call()` says whether this fn_call is recorded (a C-level
        iterator's `__next__`: every call, none, or one in N, no Python frame
        per call) and `open_call` is the collector's own `start`; `close_call`
        is its cheap `close`.
        """
        collector = self._collector = current_collector()
        every = self.trace_calls
        if every == 1:
            self.take_call = itertools.repeat(True).__next__
        elif every == 0:
            self.take_call = itertools.repeat(False).__next__
        else:
            self.take_call = itertools.cycle([False] * (every - 1) + [True]).__next__
        self.open_call = collector.start
        self.close_call = collector.close

    def make_frame(self, fn: Closure, args: list[Any], caller: Frame | None) -> Frame:
        code = fn.code
        n = len(code.params)
        if len(args) != code.nfast:
            args = self._bind_args(fn, args)
        slots = args
        if code.nslots > n:
            slots.extend([None] * (code.nslots - n))
        for i in code.cell_params:
            slots[i] = Cell(slots[i])
        frame = Frame(code, slots, fn.cells, fn.globals, caller)
        if frame.depth > MAX_DEPTH:
            raise HarnRuntimeError(f"stack overflow: call depth exceeded {MAX_DEPTH} in {fn.name}")
        if code.traced:
            # Tracing off, or --trace-calls none, costs one attribute read per call.
            traced = self.calls_traced
            if code.step:
                if self._tracing:
                    frame.span = self.open_call(_STEP, code.name)
            elif traced and (traced == 1 or self.take_call()):
                frame.span = self.open_call(_FN_CALL, code.name)
        return frame

    def generator_span(self, name: str) -> int:
        """The `fn_call` span of one pull of generator `name` (0 when tracing is off).

        Through open_call, like every fn_call span the VM opens.
        """
        traced = self.calls_traced
        return self.open_call(_FN_CALL, name) if traced and self.take_call() else 0

    def _bind_args(self, fn: Closure, args: list[Any]) -> list[Any]:
        """Slots for a call that needs more than positional binding (rest, defaults)."""
        code = fn.code
        n = len(code.params)
        positional = n - 1 if code.rest_param else n
        if code.nrequired <= len(args) and (code.rest_param or len(args) <= n):
            bound = args[:positional]
            bound.extend([UNSET] * (positional - len(bound)))
            if code.rest_param:
                bound.append(list(args[positional:]))
            return bound
        if code.rest_param or code.nrequired != n:
            want = f"at least {code.nrequired}" if code.rest_param else f"{code.nrequired} to {n}"
        else:
            want = str(n)
        raise HarnRuntimeError(
            f"{fn.name} expects {want} argument{'s' if n != 1 else ''}, got {len(args)}"
        )

    async def call(self, fn: Any, args: list[Any]) -> Any:
        """Call any Harn callable from Python (builtins use this for callbacks)."""
        cls = fn.__class__
        if cls is Closure:
            return await self.run_frame(self.make_frame(fn, list(args), None))
        if cls is Builtin:
            r = fn.fn(self, list(args))
            return (await r) if fn.is_async else r
        call = getattr(fn, "harn_call", None)
        if call is not None:
            return await call(self, list(args))
        raise HarnRuntimeError(f"TypeError: {type_name(fn)} is not callable")

    async def run_frame(self, f: Frame) -> Any:
        table = TABLE
        while True:
            try:
                while True:
                    op, arg = f.instrs[f.pc]
                    f.pc += 1
                    r = table[op](self, f, arg)
                    if r is not None:
                        if r.__class__ is Frame:
                            f = r
                        elif r is FINISHED:
                            return f.retval
                        elif r is SUSPENDED:  # a generator yielded; resume() re-enters
                            return SUSPENDED
                        else:
                            v = await r
                            if v is not NO_PUSH:
                                f.stack.append(v)
            except HarnRuntimeError as e:
                f = self._unwind(f, e)
            except asyncio.CancelledError as e:
                f = self._unwind_cancel(f, e)
            except (KeyboardInterrupt, SystemExit, GeneratorExit):
                self._abandon(f, cancelled=True)
                raise
            except RecursionError:
                # Python-level nesting (callbacks calling back into the VM, very
                # deep values): a Harn error, never a Python traceback.
                f = self._unwind(f, HarnRuntimeError("stack overflow: nesting too deep"))
            except Exception as e:  # a Python error inside an operation
                f = self._unwind(f, HarnRuntimeError(_describe_py_error(e)))

    def _unwind(self, f: Frame, err: HarnRuntimeError) -> Frame:
        """Find the nearest handler for `err`, popping frames; re-raise at the base."""
        if err.loc is None:
            err.loc = f.location()
        while True:
            if f.blocks:
                handler, depth, _ = f.blocks.pop()
                return _enter_handler(f, handler, depth, err)
            if f.span:
                span_set_metadata(f.span, "error", err.message)
                if err.cancelled:
                    span_set_metadata(f.span, "cancelled", True)
                self.close_call(f.span)
            caller = f.caller
            if caller is None:
                raise err
            err.trace.append(
                TraceEntry(caller.code.name, caller.code.filename, caller.location().line)
            )
            f = caller

    def _unwind_cancel(self, f: Frame, cancel: asyncio.CancelledError) -> Frame:
        """Run the nearest `finally` body (or `defer`, `mutex` release) for a cancellation.

        Catch handlers are skipped: a cancellation (`cancel(h)`, a `deadline`)
        is not a Harn error. Frames left behind end their spans as cancelled;
        with no `finally` left the cancellation leaves the VM.
        """
        while True:
            while f.blocks:
                handler, depth, finally_only = f.blocks.pop()
                if finally_only:
                    marker = HarnRuntimeError(object(), "cancelled")
                    marker.cancellation = cancel
                    return _enter_handler(f, handler, depth, marker)
            if f.span:
                span_set_metadata(f.span, "cancelled", True)
                self.close_call(f.span)
                f.span = 0
            caller = f.caller
            if caller is None:
                raise cancel
            f = caller

    def _abandon(self, f: Frame | None, *, cancelled: bool) -> None:
        while f is not None:
            if f.span:
                if cancelled:
                    span_set_metadata(f.span, "cancelled", True)
                self.close_call(f.span)
                f.span = 0
            f = f.caller

    def lookup_method(self, obj: Any, name: str) -> tuple[Callable[..., Any], bool]:
        raise NotImplementedError  # provided by runtime.VM

    async def import_module(self, f: Frame, path: str, names: list[str] | None) -> Any:
        raise NotImplementedError  # provided by runtime.VM


def _enter_handler(f: Frame, handler: int, depth: int, err: HarnRuntimeError) -> Frame:
    """Resume `f` at a try handler with the error value on its trimmed stack."""
    del f.stack[depth:]
    f.stack.append(err.value)
    f.exc = err
    f.pc = handler
    return f


def _describe_py_error(e: Exception) -> str:
    if isinstance(e, ZeroDivisionError):
        return "division by zero"
    return f"{type(e).__name__}: {e}"
