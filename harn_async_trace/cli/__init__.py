"""`harn-trace`: run Harn programs on the traced async VM (`vm_demo`).

    harn-trace run FILE.harn [--trace] [--summary] [--mock-time MS] [--uvloop]
                             [--jsonl/--json/--profile-json/--chrome/--otlp/--html PATH]
    harn-trace summary TRACE.jsonl
    harn-trace view TRACE.jsonl [-o OUT.html]
    harn-trace diff A.jsonl B.jsonl
    harn-trace --version

Exit status: 0 on success, 1 when the program fails (syntax or runtime
error, reported as `error: ...` with file:line:col on stderr) or a file
cannot be read/written, 2 for bad usage (argparse, naming the flag), 130
when interrupted by Ctrl-C (every output is still written). ``diff`` exits
0 when the traces are equal, 1 when they differ, 2 when a file cannot be read.

One module per subcommand (``_run``, ``_summary``, ...); each registers its
parser and sets ``handler(args, stdout, stderr) -> int``, and may set
``validate(args)`` for usage checks across flags. ``_exports`` holds the
export flags that ``run`` shares.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ._diff import add_diff_parser
from ._run import add_run_arguments, check_run_arguments, run_command
from ._summary import add_summary_parser
from ._view import add_view_parser

__all__ = ("build_parser", "main")


def build_parser() -> argparse.ArgumentParser:
    """The `harn-trace` argument parser, one subparser per subcommand.

    Example:
        >>> build_parser().parse_args(["summary", "t.jsonl"]).trace_file
        't.jsonl'
    """
    parser = argparse.ArgumentParser(
        prog="harn-trace",
        description="Run Harn programs on an async bytecode VM with built-in tracing.",
    )
    parser.add_argument("--version", action="version", version=f"harn-trace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run = sub.add_parser("run", help="run a .harn program", description="Run a .harn program.")
    add_run_arguments(run)
    run.set_defaults(handler=run_command, validate=functools.partial(check_run_arguments, run))
    add_summary_parser(sub)
    add_view_parser(sub)
    add_diff_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `harn-trace` console script; returns the exit status.

    Example:
        >>> main(["run", "examples/mock_time.harn", "--mock-time", "0"])  # doctest: +SKIP
        0
    """
    args = build_parser().parse_args(argv)
    validate = getattr(args, "validate", None)
    if validate is not None:
        validate(args)
    stdout, stderr = sys.stdout, sys.stderr
    try:
        status: int = args.handler(args, stdout, stderr)
        return status
    except KeyboardInterrupt:  # Ctrl-C outside a run's own handling (reading, writing)
        print("interrupted", file=stderr)
        return 130
    except BrokenPipeError:
        # `harn-trace run x.harn | head`: the reader left; exit quietly, and
        # point stdout at devnull so the interpreter's final flush can't fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug of ours: one line, not a traceback
        if os.environ.get("HARN_TRACE_DEBUG"):
            raise
        print(
            f"error: internal error: {type(exc).__name__}: {exc} "
            "(set HARN_TRACE_DEBUG=1 for the traceback)",
            file=stderr,
        )
        return 1
