"""``harn-trace diff A.jsonl B.jsonl``: compare two saved traces structurally.

Exit status: 0 when they are equal, 1 when they differ, 2 when a file
cannot be read (as ``diff`` and ``cmp`` do, so scripts can tell the two apart).
"""

from __future__ import annotations

import argparse
from typing import TextIO

from ..export.trace_diff import diff_traces, format_trace_diff
from ._exports import load_trace

__all__ = ("add_diff_parser", "diff_command")


def diff_command(path_a: str, path_b: str, stdout: TextIO, stderr: TextIO) -> int:
    """Print the diff of two JSONL traces; 0 if equal, 1 if not, 2 on a bad file.

    Example:
        >>> import sys
        >>> diff_command("/no/a.jsonl", "/no/b.jsonl", sys.stdout, sys.stdout)
        error: /no/a.jsonl: no such file
        2
    """
    a = load_trace(path_a, stderr)
    if a is None:
        return 2
    b = load_trace(path_b, stderr)
    if b is None:
        return 2
    diff = diff_traces(a, b)
    stdout.write(format_trace_diff(diff, path_a, path_b))
    return 0 if diff.equal else 1


def add_diff_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``diff`` subcommand (its handler is ``args.handler``)."""
    diff = sub.add_parser(
        "diff",
        help="compare two saved JSONL traces (spans matched by their kind/name path)",
        description="Compare two traces saved with `run --jsonl PATH`: spans are matched by "
        "their path of kind and name from the root; prints added and removed spans and "
        "duration, token and cost changes. Exit 0 when equal, 1 when they differ, 2 when a "
        "file cannot be read. Most useful on two --mock-time runs with one change.",
    )
    diff.add_argument("trace_a", metavar="A.jsonl")
    diff.add_argument("trace_b", metavar="B.jsonl")
    diff.set_defaults(
        handler=lambda args, stdout, stderr: diff_command(
            args.trace_a, args.trace_b, stdout, stderr
        )
    )
