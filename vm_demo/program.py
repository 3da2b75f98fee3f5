"""The Harn language as ``harn-trace run`` sees it (registered as an entry point).

``harn_async_trace``'s CLI is generic and never imports the VM; it finds this
object through the ``harn_async_trace.languages`` entry-point group and calls
``compile`` and ``run``. Errors come back as ``ProgramError`` carrying the
rendered Harn error (``error: ...`` with file:line:col, the source line and a
caret). The VM is imported when a program is compiled, not when the CLI
builds its parser, so ``harn-trace --help`` and ``summary`` stay light.
"""

from __future__ import annotations

import argparse
from typing import Final, TextIO, final

from harn_async_trace.cli._language import ProgramError

__all__ = ("LANGUAGE", "HarnLanguage")


@final
class HarnLanguage:
    """Compile and run ``.harn`` programs on the async VM.

    Example:
        >>> import asyncio, io
        >>> out = io.StringIO()
        >>> code = LANGUAGE.compile('println("hi")', "x.harn")
        >>> asyncio.run(LANGUAGE.run(code, out, argparse.Namespace()))
        >>> out.getvalue()
        'hi\\n'
    """

    name = "harn"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """``--trace-calls all|none|sample:N``: which fn_call spans a run records."""
        parser.add_argument(
            "--trace-calls",
            metavar="all|none|sample:N",
            type=_trace_calls,
            default=1,
            help="which fn_call spans to record: every call (all, the default), none, or "
            "one call in N (pipeline, step, llm_call and tool_call spans are always recorded)",
        )

    def compile(self, source: str, path: str) -> object:
        """Compile a Harn program; a syntax error becomes ProgramError."""
        from .compiler import compile_source
        from .errors import HarnSyntaxError

        try:
            return compile_source(source, path)
        except HarnSyntaxError as exc:
            raise ProgramError(exc.render()) from None

    async def run(self, program: object, stdout: TextIO, args: argparse.Namespace) -> None:
        """Run compiled code on a fresh VM writing to ``stdout``."""
        from .compiler_scope import ModuleCode
        from .errors import HarnRuntimeError
        from .runtime import VM

        if not isinstance(program, ModuleCode):
            raise TypeError(f"run() needs code from compile(), got {program!r}")
        try:
            await VM(stdout=stdout, trace_calls=getattr(args, "trace_calls", 1)).run_code(program)
        except HarnRuntimeError as exc:
            raise ProgramError(exc.render()) from None


def _trace_calls(text: str) -> int:
    from .trace_calls import parse_trace_calls

    try:
        return parse_trace_calls(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


LANGUAGE: Final = HarnLanguage()
