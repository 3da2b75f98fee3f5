"""`harn-trace`: run Harn programs on the traced async VM (`vm_demo`).

    harn-trace run FILE.harn [--trace] [--summary] [--mock-time MS] [--uvloop]
                             [--jsonl/--json/--profile-json/--chrome/--otlp PATH]
    harn-trace summary TRACE.jsonl
    harn-trace --version

Exit status: 0 on success, 1 when the program fails (syntax or runtime
error, reported as `error: ...` with file:line:col on stderr) or a file
cannot be read/written, 2 for bad usage (argparse).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TextIO

from . import __version__
from .clock import MockClock
from .collector import SpanCollector
from .context import use_collector
from .export import format_summary, span_to_dict
from .export._cli_support import (
    add_export_arguments,
    stream_exports,
    summary_command,
    write_exports,
)
from .loop import run as loop_run
from .model import Span

__all__ = ["build_parser", "main"]


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """All `harn-trace run` options; append new run flags here."""
    run.add_argument("file", metavar="FILE", help="the .harn program to run")
    run.add_argument(
        "--trace",
        action="store_true",
        help="trace the run and print every span as a JSON line on stderr",
    )
    run.add_argument(
        "--summary",
        action="store_true",
        help="trace the run and print the span tree summary after the program output",
    )
    run.add_argument(
        "--mock-time",
        metavar="MS",
        type=int,
        default=None,
        help="run on virtual time starting at wall-clock MS (unix ms): sleeps take no "
        "real time and the trace is byte-for-byte reproducible",
    )
    run.add_argument(
        "--uvloop", action="store_true", help="run on uvloop instead of the stock asyncio loop"
    )
    add_export_arguments(run)  # --jsonl/--json/--profile-json/--chrome/--otlp PATH


def build_parser() -> argparse.ArgumentParser:
    """The `harn-trace` argument parser (subcommands `run` and `summary`)."""
    parser = argparse.ArgumentParser(
        prog="harn-trace",
        description="Run Harn programs on an async bytecode VM with built-in tracing.",
    )
    parser.add_argument("--version", action="version", version=f"harn-trace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = sub.add_parser("run", help="run a .harn program", description="Run a .harn program.")
    add_run_arguments(run)
    summary = sub.add_parser(
        "summary",
        help="print the span tree of a saved JSONL trace",
        description="Print the span tree of a trace saved with `run --jsonl PATH`.",
    )
    summary.add_argument("trace_file", metavar="TRACE.jsonl")
    return parser


def _wants_tracing(args: argparse.Namespace) -> bool:
    exports = ("jsonl", "json", "profile_json", "chrome", "otlp")
    return bool(args.trace or args.summary or any(getattr(args, e, None) for e in exports))


def _run_loop(main: Coroutine[Any, Any, int], clock: MockClock | None, use_uvloop: bool) -> int:
    """Run on our loop: virtual time driven by `clock`, real time without one."""
    return loop_run(main, clock=clock, use_uvloop=use_uvloop)


def _run_command(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    # Imported here so `harn-trace --help` and `summary` don't load the VM.
    from vm_demo.compiler import compile_source
    from vm_demo.errors import HarnRuntimeError, HarnSyntaxError
    from vm_demo.runtime import VM

    path = args.file
    try:
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
    except FileNotFoundError:
        print(f"error: {path}: no such file", file=stderr)
        return 1
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {path}: {exc}", file=stderr)
        return 1
    try:
        code = compile_source(source, path)
    except HarnSyntaxError as exc:
        print(exc.render(), file=stderr)
        return 1
    tracing = _wants_tracing(args)
    spans: list[Span] = []

    async def main() -> int:
        # Created inside the run so that, under --mock-time, the trace id is
        # derived from the mock clock and replays identically.
        collector = SpanCollector(enabled=tracing)
        status = 0
        with (
            use_collector(collector),
            stream_exports(args, collector=collector, stderr=stderr),
        ):
            try:
                await VM(stdout=stdout).run_code(code)
            except HarnRuntimeError as exc:
                stdout.flush()
                print(exc.render(), file=stderr)
                status = 1
            spans.extend(collector.take_spans())
        return status

    clock = MockClock.at_wall_ms(args.mock_time) if args.mock_time is not None else None
    try:
        status = _run_loop(main(), clock, args.uvloop)
    except RecursionError:
        print(f"error: {path}: program nested too deeply (Python recursion limit)", file=stderr)
        return 1
    if args.trace:
        for span in spans:
            stderr.write(json.dumps(span_to_dict(span), sort_keys=True) + "\n")
    if args.summary:
        text = format_summary(spans)
        stdout.write(text if text.endswith("\n") else text + "\n")
    return write_exports(args, spans, stderr=stderr) or status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `harn-trace` console script; returns the exit status.

    Example:
        >>> main(["run", "examples/mock_time.harn", "--mock-time", "0"])  # doctest: +SKIP
        0
    """
    args = build_parser().parse_args(argv)
    stdout, stderr = sys.stdout, sys.stderr
    try:
        if args.command == "summary":
            return summary_command(args.trace_file, stdout=stdout, stderr=stderr)
        return _run_command(args, stdout, stderr)
    except BrokenPipeError:
        # `harn-trace run x.harn | head`: the reader left; exit quietly, and
        # point stdout at devnull so the interpreter's final flush can't fail.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
