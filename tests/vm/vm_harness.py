"""Helpers for VM tests: run a snippet, compare its output, show the bytecode on failure."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import uvloop

from harn_async_trace import MockClock, Span, SpanCollector, use_collector
from harn_async_trace.loop import run as loop_run
from vm_demo.bytecode import disassemble
from vm_demo.compiler import compile_source
from vm_demo.errors import HarnError, HarnRuntimeError, HarnSyntaxError
from vm_demo.runtime import VM

LOOPS = ("asyncio", "uvloop")


def run_on(loop: str, main: Callable[[], Coroutine[Any, Any, Any]], *, virtual: bool = True) -> Any:
    """Run `main()` on a fresh stock asyncio or uvloop loop, on virtual time by default.

    Virtual time (a MockClock driving the loop) makes sleeps instant and
    span durations exact, so no test waits for real.
    """
    if virtual:
        return loop_run(main(), clock=MockClock(), use_uvloop=loop == "uvloop")
    if loop == "uvloop":
        return uvloop.run(main())
    return asyncio.run(main())


def run(
    source: str, *, loop: str = "asyncio", tracing: bool = False, virtual: bool = True
) -> tuple[str, list[Span]]:
    """Run a program; return (stdout, finished spans)."""
    out = io.StringIO()
    collector = SpanCollector(enabled=tracing)

    async def main() -> None:
        with use_collector(collector):
            await VM(stdout=out).run_source(source, "test.harn")

    run_on(loop, main, virtual=virtual)
    return out.getvalue(), collector.spans()


def assert_runs(source: str, expected_output: str, *, loop: str = "asyncio") -> None:
    """Run `source` (wrapped in a pipeline if it has none) and compare stdout."""
    try:
        out, _ = run(source, loop=loop)
    except HarnError as e:
        print(disassemble(compile_source(source, "test.harn")))
        text = e.render() if isinstance(e, HarnSyntaxError | HarnRuntimeError) else str(e)
        pytest.fail(f"program failed: {text}")
    if out != expected_output:
        print(disassemble(compile_source(source, "test.harn")))
    assert out == expected_output


def assert_error(
    source: str, message: str, *, line: int | None = None
) -> HarnSyntaxError | HarnRuntimeError:
    """Run `source` and check it fails with `message` (a substring) at `line`."""
    with pytest.raises((HarnSyntaxError, HarnRuntimeError)) as info:
        run(source)
    err = info.value
    assert isinstance(err, HarnSyntaxError | HarnRuntimeError)
    text = err.render()
    if message not in text:
        print(disassemble(compile_source(source, "test.harn")))
    assert message in text
    if line is not None:
        loc = err.loc
        assert loc is not None
        assert loc.line == line, text
    return err
