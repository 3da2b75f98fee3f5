"""``harn-trace run FILE.harn``: run a Harn program on the traced async VM."""

from __future__ import annotations

import argparse
from typing import TextIO

from ..clock import MockClock
from ..collector import SpanCollector
from ..context import use_collector
from ..export.causal_text import print_causal_summary
from ..loop import run as loop_run
from ..model import Span
from ._exports import add_export_arguments, stream_exports, write_exports
from ._progress import live_progress

__all__ = ("add_run_arguments", "run_command")


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """All `harn-trace run` options; append new run flags here."""
    run.add_argument("file", metavar="FILE", help="the .harn program to run")
    run.add_argument(
        "--trace",
        action="store_true",
        help="trace the run and print each span as a JSON line on stderr as it ends",
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
    add_export_arguments(run)  # --jsonl/--json/--profile-json/--chrome/--otlp/--html PATH


def _wants_tracing(args: argparse.Namespace) -> bool:
    exports = ("jsonl", "json", "profile_json", "chrome", "otlp", "html")
    return bool(args.trace or args.summary or any(getattr(args, e, None) for e in exports))


def run_command(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``args.file``; print and write what the flags ask for; return the exit status."""
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
            live_progress(collector, stdout, stderr, trace=args.trace, traced=tracing) as streams,
        ):
            out, err = streams  # on a terminal these erase the live status line first
            try:
                await VM(stdout=out).run_code(code)
            except HarnRuntimeError as exc:
                stdout.flush()
                print(exc.render(), file=err)
                status = 1
            spans.extend(collector.take_spans())
        return status

    clock = MockClock.at_wall_ms(args.mock_time) if args.mock_time is not None else None
    try:
        status = loop_run(main(), clock=clock, use_uvloop=args.uvloop)
    except RecursionError:
        print(f"error: {path}: program nested too deeply (Python recursion limit)", file=stderr)
        return 1
    if args.summary:
        print_causal_summary(spans, stdout)
    return write_exports(args, spans, stderr=stderr) or status
