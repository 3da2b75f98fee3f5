"""``harn-trace view TRACE.jsonl [-o OUT.html]``: write the offline HTML viewer of a saved trace."""

from __future__ import annotations

import argparse
import os
from typing import TextIO

from ..export.html import write_html
from ._exports import load_trace

__all__ = ("add_view_parser", "view_command")


def view_command(trace_file: str, output: str | None, stdout: TextIO, stderr: TextIO) -> int:
    """Write the page (default: TRACE.html beside the trace); print its path; exit status.

    Example:
        >>> import sys
        >>> view_command("/no/such.jsonl", None, sys.stdout, sys.stdout)
        error: /no/such.jsonl: no such file
        1
    """
    spans = load_trace(trace_file, stderr)
    if spans is None:
        return 1
    if output is None:
        root, ext = os.path.splitext(trace_file)
        output = (root if ext.lower() in (".jsonl", ".json") else trace_file) + ".html"
    try:
        write_html(spans, output, title=os.path.basename(trace_file))
    except OSError as exc:
        print(f"error: cannot write {output}: {exc.strerror or exc}", file=stderr)
        return 1
    print(f"wrote {output} ({len(spans)} spans); open it in a browser, no network needed",
          file=stdout)
    return 0


def add_view_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``view`` subcommand (its handler is ``args.handler``)."""
    view = sub.add_parser(
        "view",
        help="write a saved JSONL trace as a self-contained HTML timeline",
        description="Write a trace saved with `run --jsonl PATH` as one HTML file that works "
        "offline: a lane per task, link arrows, zoom, filter, search and span details.",
    )
    view.add_argument("trace_file", metavar="TRACE.jsonl")
    view.add_argument("-o", "--output", metavar="OUT.html", default=None,
                      help="where to write the page (default: TRACE.html beside the trace)")
    view.set_defaults(
        handler=lambda args, stdout, stderr: view_command(
            args.trace_file, args.output, stdout, stderr
        )
    )
