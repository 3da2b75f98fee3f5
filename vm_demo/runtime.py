"""`VM`: running programs — modules, imports, pipelines, method lookup.

Entry points: `await VM().run_source(text, filename)` and `run_file(path)`.
A program runs under one `pipeline` span named after the pipeline it runs
(`default` if declared, else the first one; a file without pipelines is an
implicit `default` pipeline made of its top-level code).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from harn_async_trace import SpanKind, is_tracing_enabled, span_end, span_start

# Importing the builtins modules registers their functions.
from vm_demo import (
    builtins_concurrency,
    builtins_core,  # noqa: F401
    builtins_extra,  # noqa: F401
    builtins_iter,
    builtins_jq,  # noqa: F401
    builtins_lang,  # noqa: F401
    builtins_methods,
    builtins_schema,  # noqa: F401
    builtins_sets,  # noqa: F401
    builtins_shared,  # noqa: F401
    builtins_supervisor,  # noqa: F401
    builtins_sync,  # noqa: F401
    builtins_tracing,  # noqa: F401
    llm,  # noqa: F401
)
from vm_demo.compiler import ModuleCode, compile_source
from vm_demo.errors import HarnRuntimeError, ending_span
from vm_demo.objects import Closure, to_display
from vm_demo.registry import BUILTINS, METHODS
from vm_demo.vm import NO_PUSH, Frame, VMBase

builtins_iter.adopt_list_methods()

_IMPORTING = object()


def new_globals() -> dict[str, Any]:
    """A fresh module namespace (the `" consts"` entry tracks `let` globals)."""
    return {" consts": set()}


class VM(VMBase):
    """A Harn virtual machine; one per program run.

    >>> import asyncio, io
    >>> out = io.StringIO()
    >>> _ = asyncio.run(VM(stdout=out).run_source('println(1 + 2)'))
    >>> out.getvalue()
    '3\\n'
    """

    def __init__(self, *, stdout: TextIO | None = None, trace_calls: int = 1) -> None:
        """``trace_calls``: record one fn_call span in N (1 all, 0 none; see trace_calls.py)."""
        if isinstance(trace_calls, bool) or not isinstance(trace_calls, int) or trace_calls < 0:
            raise ValueError(f"trace_calls must be an int >= 0, got {trace_calls!r}")
        self.trace_calls = trace_calls
        self.bind_collector()  # again at each run_code: the collector current then
        self.out = stdout if stdout is not None else sys.stdout
        self.builtins = BUILTINS
        self.tracing = is_tracing_enabled()
        self.modules: dict[str, Any] = {}
        # State used by builtins modules (llm model routing, tools, clocks).
        self.state: dict[str, Any] = {}

    def write(self, text: str) -> None:
        self.out.write(text)

    # -- running -------------------------------------------------------------------------

    async def run_file(self, path: str) -> Any:
        return await self.run_source(_read_text(path), path)

    async def run_source(self, source: str, filename: str = "<input>") -> Any:
        """Compile and run a program; returns the pipeline's value."""
        code = compile_source(source, filename)
        return await self.run_code(code)

    async def run_code(self, code: ModuleCode) -> Any:
        """Run compiled code under the current collector (read now, not at __init__)."""
        self.tracing = is_tracing_enabled()
        self.bind_collector()
        globals_ = new_globals()
        self.modules[_abspath(code.filename)] = globals_
        name = "default" if "default" in code.pipelines or not code.pipelines else code.pipelines[0]
        sid = span_start(SpanKind.PIPELINE, name) if self.tracing else 0
        try:
            with ending_span(sid):
                result = await self.run_frame(Frame(code, [None] * code.nslots, (), globals_, None))
                if code.pipelines:
                    pipeline = globals_[name]
                    args = [None] * len(pipeline.code.params)
                    result = await self.run_frame(self.make_frame(pipeline, args, None))
                return result
        finally:
            builtins_concurrency.release_mock_time(self)

    # -- imports ----------------------------------------------------------------------------

    async def import_module(self, f: Frame, path: str, names: list[str] | None) -> Any:
        resolved = _resolve_import(f.code.filename, path)
        key = _abspath(resolved)
        module = self.modules.get(key)
        if module is _IMPORTING:
            raise HarnRuntimeError(f"circular import of '{path}'")
        if module is None:
            module = await self._load_module(key, resolved, path)
        if names is None:
            exported = {k: v for k, v in module.items() if k != " consts"}
        else:
            exported = {}
            for n in names:
                if n not in module:
                    raise HarnRuntimeError(f"module '{path}' has no top-level name '{n}'")
                exported[n] = module[n]
        f.globals.update(exported)
        f.globals[" consts"].update(exported)
        return NO_PUSH

    async def _load_module(self, key: str, resolved: str, path: str) -> dict[str, Any]:
        try:
            source = _read_text(resolved)
        except OSError as e:
            raise HarnRuntimeError(f"cannot import '{path}': {e.strerror or e}") from None
        self.modules[key] = _IMPORTING
        sid = span_start(SpanKind.IMPORT, path) if self.tracing else 0
        try:
            code = compile_source(source, resolved)
            globals_ = new_globals()
            await self.run_frame(Frame(code, [None] * code.nslots, (), globals_, None))
            self.modules[key] = globals_
            return globals_
        except BaseException:
            self.modules.pop(key, None)
            raise
        finally:
            if sid:
                span_end(sid)

    # -- methods ----------------------------------------------------------------------------

    def lookup_method(self, obj: Any, name: str) -> tuple[Callable[..., Any], bool]:
        table = METHODS.get(obj.__class__)
        if table is not None:
            entry = table.get(name)
            if entry is not None:
                return entry
        if obj.__class__ is dict and name in obj:
            return _call_field(name), True
        hook = getattr(obj, "harn_method", None)
        if hook is not None:
            found = hook(name)
            if found is not None:
                return found, True
        raise builtins_methods.no_such_method(obj, name)


# Module files are small and read once per run; a blocking read is simpler
# than a thread hop and keeps span timings deterministic.
def _read_text(path: str) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


def _abspath(path: str) -> str:
    return os.path.abspath(path)


def _resolve_import(importer: str, path: str) -> str:
    """Resolve `path` relative to the importing file; `.harn` is implied."""
    resolved = path if os.path.isabs(path) else os.path.join(os.path.dirname(importer), path)
    if not os.path.splitext(resolved)[1]:
        resolved += ".harn"
    return resolved


def _call_field(name: str) -> Callable[..., Any]:
    async def call(vm: VM, obj: dict[str, Any], args: list[Any]) -> Any:
        return await vm.call(obj[name], args)

    return call


def describe(value: Any) -> str:
    """Display form of a value (re-exported for the CLI and tests)."""
    return to_display(value)


__all__ = ("VM", "Closure", "describe", "new_globals")
