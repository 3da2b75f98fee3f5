"""``harn-trace summary TRACE.jsonl``: print the span tree of a saved trace."""

from __future__ import annotations

import argparse

from ._exports import summary_command

__all__ = ("add_summary_parser",)


def add_summary_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``summary`` subcommand (its handler is ``args.handler``)."""
    summary = sub.add_parser(
        "summary",
        help="print the span tree of a saved JSONL trace",
        description="Print the span tree of a trace saved with `run --jsonl PATH`.",
    )
    summary.add_argument("trace_file", metavar="TRACE.jsonl")
    summary.set_defaults(
        handler=lambda args, stdout, stderr: summary_command(
            args.trace_file, stdout=stdout, stderr=stderr
        )
    )
