"""``harn-trace run FILE.harn``: run a program and trace it.

The language (Harn, on ``vm_demo``'s VM) is plugged in through
``_language.py``; this module is the tracing around it. One function per
phase: :func:`_load` and :func:`_compile` the program,
:meth:`_Run.execute` runs it and closes what it left open (``_Run.main`` in
the loop, ``_Run.finish`` after it, ``_Run.report`` says what happened),
then the summary and ``write_exports`` produce the outputs. Nothing is
written before every span has ended: tasks still running at the end are
cancelled (their spans end ``cancelled``), spans still open after that are
ended by the collector, and Ctrl-C does the same before the outputs are
written (exit status 130). The live listeners (``--jsonl`` stream, ``--trace``
lines, the status line) stay subscribed until then.
"""

from __future__ import annotations

import argparse
import asyncio
from contextlib import ExitStack
from typing import Any, Final, TextIO

from ..clock import MockClock
from ..collector import SpanCollector
from ..context import use_collector
from ..export._encoding import write_terminal
from ..export.causal_text import print_causal_summary
from ..loop import run as loop_run
from ..model import Span
from ._exports import (
    EXPORT_DESTS,
    add_export_arguments,
    check_export_paths,
    live_otlp,
    mock_time_ms,
    stream_exports,
    stream_problem,
    wants_live_otlp,
    write_exports,
)
from ._language import Language, LanguageMissingError, ProgramError, load_language
from ._progress import live_progress
from ._shutdown import Interrupts, TaskOrder, cancel_leftovers

__all__ = ("add_run_arguments", "check_run_arguments", "run_command")

INTERRUPTED: Final = 130  # 128 + SIGINT, what shells report for Ctrl-C


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
        type=mock_time_ms,
        default=None,
        help="run on virtual time starting at wall-clock MS (unix ms): sleeps take no "
        "real time and the trace is byte-for-byte reproducible",
    )
    run.add_argument(
        "--uvloop", action="store_true", help="run on uvloop instead of the stock asyncio loop"
    )
    add_export_arguments(run)  # --jsonl/--json/--profile-json/--chrome/--otlp/--html PATH
    try:
        load_language().add_arguments(run)
    except LanguageMissingError:
        pass  # `run` itself says so, once, when it is used


def check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors argparse cannot see flag by flag (exit 2 via ``parser.error``)."""
    problem = check_export_paths(args, program=args.file)
    if problem is not None:
        parser.error(problem)


def _wants_tracing(args: argparse.Namespace) -> bool:
    return bool(
        args.trace or args.summary or any(getattr(args, e, None) for e in EXPORT_DESTS)
        or wants_live_otlp(args)
    )


def _load(path: str, stderr: TextIO) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        print(f"error: {path}: no such file", file=stderr)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: cannot read {path}: {exc}", file=stderr)
    return None


def _compile(language: Language, source: str, path: str, stderr: TextIO) -> object | None:
    try:
        return language.compile(source, path)
    except ProgramError as exc:
        print(exc, file=stderr)
        return None


class _Run:
    """One execution of a compiled program and what it leaves for the outputs."""

    def __init__(
        self,
        args: argparse.Namespace,
        language: Language,
        program: object,
        stdout: TextIO,
        stderr: TextIO,
    ) -> None:
        self.args, self.stdout, self.stderr = args, stdout, stderr
        self.language, self.program = language, program
        self.status = 0
        self.spans: list[Span] = []
        self.collector: SpanCollector | None = None
        self.interrupted = False
        self.left_open = 0  # spans the CLI had to close for the program
        self.task: asyncio.Task[Any] | None = None
        # The --jsonl stream and the live progress, closed once every span ended.
        self.outputs = ExitStack()
        self.interrupts = Interrupts(self._on_interrupt)
        self.err = stderr  # the program's error report (erases the status line first)

    def execute(self) -> None:
        """Run the program, then close everything it left open (Ctrl-C included)."""
        args = self.args
        clock = MockClock.at_wall_ms(args.mock_time) if args.mock_time is not None else None
        # live_otlp outermost: it flushes after finish() ended what was left open.
        with live_otlp(args, stderr=self.stderr), self.outputs, self.interrupts:
            try:
                self.status = loop_run(self.main(), clock=clock, use_uvloop=args.uvloop)
            except KeyboardInterrupt:  # a second Ctrl-C, or one before the loop ran
                self.interrupted = True
            except RecursionError:
                print(
                    f"error: {args.file}: program nested too deeply (Python recursion limit)",
                    file=self.stderr,
                )
                self.status = 1
            self.finish()
        self.report()

    async def main(self) -> int:
        order = TaskOrder.install()
        self.task = asyncio.current_task()
        # Created inside the run so that, under --mock-time, the trace id is
        # derived from the mock clock and replays identically.
        collector = self.collector = SpanCollector(enabled=_wants_tracing(self.args))
        args = self.args
        self.outputs.enter_context(stream_exports(args, collector=collector, stderr=self.stderr))
        out, self.err = self.outputs.enter_context(
            live_progress(collector, self.stdout, self.stderr, trace=args.trace,
                          traced=collector.enabled)
        )  # fmt: skip
        self.interrupts.attach(asyncio.get_running_loop())
        status = 0
        with use_collector(collector):
            try:
                await self.language.run(self.program, out, args)
            except ProgramError as exc:
                self.stdout.flush()
                print(exc, file=self.err)
                status = 1
            except asyncio.CancelledError:
                if not self.interrupted:
                    raise
                if self.task is not None:
                    self.task.uncancel()  # ours: the program stopped, the cleanup goes on
            if not self.interrupted:
                self.left_open = collector.open_span_count()
            await cancel_leftovers(order)
        return status

    def _on_interrupt(self) -> None:
        # In the loop (see Interrupts): every span open now ends here, as
        # cancelled, the pipeline too; then the program is unwound.
        self.interrupted = True
        if self.collector is not None:
            self.collector.end_open_spans(cancelled=True)
        if self.task is not None:
            self.task.cancel()

    def finish(self) -> None:
        """End what is still open and take the spans (the live listeners still listen)."""
        collector = self.collector
        if collector is None:
            return
        closed = collector.end_open_spans(cancelled=True)
        if not self.interrupted:
            self.left_open = max(self.left_open, closed)
        self.spans = collector.take_spans()

    def report(self) -> None:
        """One line each for Ctrl-C, spans closed for the program, a failed stream."""
        if self.interrupted:
            self.status = INTERRUPTED
            print("interrupted", file=self.stderr)
        elif self.left_open:
            were = "span was" if self.left_open == 1 else "spans were"
            print(
                f"note: {self.left_open} {were} still open when the program ended; "
                "closed as cancelled",
                file=self.stderr,
            )
        problem = stream_problem(self.args)
        if problem is not None:
            write_terminal(self.stderr, f"error: {problem}\n")
            if self.status != INTERRUPTED:
                self.status = 1


def run_command(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """Run ``args.file``; print and write what the flags ask for; return the exit status."""
    source = _load(args.file, stderr)
    if source is None:
        return 1
    try:
        language = load_language()
    except LanguageMissingError as exc:
        print(f"error: {exc}", file=stderr)
        return 1
    program = _compile(language, source, args.file, stderr)
    if program is None:
        return 1
    run = _Run(args, language, program, stdout, stderr)
    run.execute()
    if args.summary:
        print_causal_summary(run.spans, stdout)
    failed = write_exports(args, run.spans, stderr=stderr)
    if run.status == INTERRUPTED:
        return INTERRUPTED
    return failed or run.status
