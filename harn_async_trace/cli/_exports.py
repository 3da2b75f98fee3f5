"""The export flags of ``harn-trace run`` and the ``summary`` subcommand.

* :func:`add_export_arguments` adds ``--jsonl/--json/--profile-json/--chrome/
  --otlp/--html PATH`` to the ``run`` subcommand (skipping any the parser already has);
  :func:`check_export_paths` refuses one file given twice (or the program);
* :func:`stream_exports` streams ``--jsonl`` while the program runs (so a
  crash loses no ended span), and :func:`write_exports` writes the rest once
  it finished; one output failing never stops the others;
* :func:`live_otlp` sends spans live to ``--otlp-endpoint URL`` (or the
  ``OTEL_EXPORTER_OTLP_*`` endpoint variables) and flushes them before exit;
* :func:`summary_command` is ``harn-trace summary TRACE.jsonl``; :func:`load_trace`
  reads a saved trace for it and the other file subcommands.

Errors are one line on stderr (``error: file:line: ...`` or ``error: cannot
write PATH: reason (errno N, ENAME)``) and exit status 1, never a traceback.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final, TextIO

from ..collector import SpanCollector
from ..export._encoding import write_terminal
from ..export._io import Target
from ..export.causal_text import print_causal_summary
from ..export.chrome import write_chrome_trace
from ..export.html import write_html
from ..export.jsonl import (
    JsonlStreamWriter,
    TraceFileError,
    read_jsonl,
    write_json,
    write_jsonl,
)
from ..export.otlp_json import write_otlp_json
from ..export.profile import write_profile_json
from ..model import Span

__all__ = (
    "EXPORT_DESTS",
    "add_export_arguments",
    "check_export_paths",
    "live_otlp",
    "load_trace",
    "mock_time_ms",
    "stream_exports",
    "stream_problem",
    "summary_command",
    "wants_live_otlp",
    "write_exports",
)

_Writer = Callable[[Sequence[Span], Target], int]

# (flag, dest, help, writer); order is the order files are written in.
_EXPORTS: Final[tuple[tuple[str, str, str, _Writer], ...]] = (
    ("--jsonl", "jsonl", "stream spans to PATH as JSON lines, flushed as each span ends",
     write_jsonl),
    ("--json", "json", "write spans to PATH as one JSON array", write_json),
    ("--profile-json", "profile_json",
     "write spans plus per-kind and LLM token/cost totals to PATH", write_profile_json),
    ("--chrome", "chrome",
     "write a Chrome trace event file to PATH (open it in Perfetto or chrome://tracing)",
     write_chrome_trace),
    ("--otlp", "otlp", "write an OTLP/JSON trace file to PATH", write_otlp_json),
    ("--html", "html", "write a self-contained HTML timeline of the trace to PATH (works offline)",
     write_html),
)
EXPORT_DESTS: Final = tuple(dest for _flag, dest, _text, _writer in _EXPORTS)
_STREAMED: Final = "_harn_jsonl_streamed"
_STREAM_FAILED: Final = "_harn_jsonl_stream_failed"
_STREAM_WRITER: Final = "_harn_jsonl_writer"
# Times are int64 ns in every format (OTLP, Chrome): the latest start that fits.
_MAX_WALL_MS: Final = (2**63 - 1) // 1_000_000 - 1


def mock_time_ms(text: str) -> int:
    """``--mock-time MS``: a whole number of unix ms, 0 or more (argparse ``type``).

    Example:
        >>> mock_time_ms("1700000000000")
        1700000000000
    """
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be a whole number of ms >= 0, got {text!r}")
    if len(text) > 19 or int(text) > _MAX_WALL_MS:
        raise argparse.ArgumentTypeError(
            f"too large: at most {_MAX_WALL_MS} (times are 64-bit ns), got {text[:25]}"
        )
    return int(text)


def _output_path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the path is empty")
    return text


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # not there yet: compare what the names resolve to
        return os.path.realpath(a) == os.path.realpath(b)


def check_export_paths(args: argparse.Namespace, *, program: str | None = None) -> str | None:
    """The usage problem with the output paths (one given twice, the program), or None.

    ``/dev/null`` and the like may be given for several outputs.

    Example:
        >>> check_export_paths(argparse.Namespace(json="a.json", chrome="a.json"))
        'argument --chrome: the same file as --json'
    """
    seen: list[tuple[str, str]] = []
    for flag, dest, _text, _writer in _EXPORTS:
        path = getattr(args, dest, None)
        if not path:
            continue
        if program is not None and _same_file(path, program):
            return f"argument {flag}: {path} is the program itself"
        if not path.startswith("/dev/"):
            for other_flag, other in seen:
                if _same_file(path, other):
                    return f"argument {flag}: the same file as {other_flag}"
        seen.append((flag, path))
    return None


def _os_error(path: str, exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno is not None:
        name = errno.errorcode.get(exc.errno, "")
        reason += f" (errno {exc.errno}, {name})" if name else f" (errno {exc.errno})"
    return f"cannot write {path}: {reason}"
_LIVE_FAILED: Final = "_harn_otlp_endpoint_failed"


def add_export_arguments(run_parser: argparse.ArgumentParser) -> None:
    """Add the export flags to ``harn-trace run`` (flags the parser already has are kept).

    Example:
        >>> p = argparse.ArgumentParser(); add_export_arguments(p)
        >>> p.parse_args(["--chrome", "t.json"]).chrome
        't.json'
    """
    group = run_parser.add_argument_group("trace export")
    existing = run_parser._option_string_actions  # argparse has no public lookup
    for flag, dest, text, _writer in _EXPORTS:
        if flag not in existing:
            group.add_argument(
                flag, dest=dest, metavar="PATH", default=None, type=_output_path, help=text
            )
    if "--otlp-endpoint" not in existing:
        group.add_argument(
            "--otlp-endpoint", dest="otlp_endpoint", metavar="URL", default=None,
            help="send spans live as OTLP/HTTP protobuf to URL (/v1/traces is added when URL "
            "has no path), e.g. http://127.0.0.1:4318; OTEL_EXPORTER_OTLP_ENDPOINT does the same",
        )


def wants_live_otlp(args: argparse.Namespace) -> bool:
    """Whether the run sends spans live (``--otlp-endpoint`` or the OTLP endpoint variables).

    Example:
        >>> wants_live_otlp(argparse.Namespace(otlp_endpoint="http://127.0.0.1:4318"))
        True
    """
    from ..export._otel.http import endpoint_from_environment

    return bool(getattr(args, "otlp_endpoint", None)) or endpoint_from_environment()


@contextmanager
def live_otlp(args: argparse.Namespace, *, stderr: TextIO | None = None) -> Iterator[None]:
    """While the block runs, send spans live over OTLP/HTTP (when asked), flushed at its end.

    The end comes on Ctrl-C too. Without the ``[otel]`` extra, or with a bad
    URL, it is one error line and the run goes on untraced-live; a failing
    endpoint is one warning line after the run, never a traceback, and the
    exit status and the other outputs stay as they are.

    Example:
        >>> with live_otlp(argparse.Namespace(otlp_endpoint=None)):
        ...     pass
    """
    if not wants_live_otlp(args):
        yield
        return
    try:
        from ..export._otel.http import LiveOtlp

        live = LiveOtlp(getattr(args, "otlp_endpoint", None))
    except ImportError:
        _error("--otlp-endpoint needs the OpenTelemetry exporter: "
               "pip install 'harn-async-trace[otel]'", stderr)
        setattr(args, _LIVE_FAILED, True)  # the run goes on; write_exports keeps the status
        yield
        return
    except ValueError as exc:
        _error(str(exc), stderr)
        setattr(args, _LIVE_FAILED, True)
        yield
        return
    try:
        yield
    finally:
        warning = live.finish()
        if warning is not None:
            print(warning, file=stderr if stderr is not None else sys.stderr)


def _error(message: str, stderr: TextIO | None) -> None:
    write_terminal(stderr if stderr is not None else sys.stderr, f"error: {message}\n")


@contextmanager
def stream_exports(
    args: argparse.Namespace,
    *,
    collector: SpanCollector | None = None,
    trace_id: str | None = None,
    stderr: TextIO | None = None,
) -> Iterator[JsonlStreamWriter | None]:
    """While the block runs, append every ending span to ``--jsonl PATH`` (if given).

    Pass the run's ``collector`` to keep other collectors' spans out: the
    filter follows its current trace id, so a program that calls
    ``enable_tracing(true)`` (a reset, hence a new trace id) is still
    streamed. ``trace_id`` pins one fixed trace instead. Yields the writer
    (or None); :func:`write_exports` then skips ``--jsonl``.

    Example:
        >>> with stream_exports(argparse.Namespace(jsonl=None)) as writer:
        ...     writer is None
        True
    """
    path = getattr(args, "jsonl", None)
    if not path:
        yield None
        return
    try:
        writer = JsonlStreamWriter(path, collector=collector, trace_id=trace_id)
    except OSError as exc:
        _error(_os_error(path, exc), stderr)
        setattr(args, _STREAM_FAILED, True)  # reported once; write_exports keeps the status
        yield None
        return
    setattr(args, _STREAMED, True)
    setattr(args, _STREAM_WRITER, writer)
    # The CLI reports a failed stream itself (stream_problem), in one line.
    quiet = logging.NullHandler()
    logger = logging.getLogger("harn_async_trace.export")
    logger.addHandler(quiet)
    try:
        yield writer
    finally:
        writer.close()
        logger.removeHandler(quiet)


def stream_problem(args: argparse.Namespace) -> str | None:
    """Why the ``--jsonl`` stream lost spans (after it closed), or None; sets the failed flag.

    Example:
        >>> stream_problem(argparse.Namespace()) is None
        True
    """
    writer: JsonlStreamWriter | None = getattr(args, _STREAM_WRITER, None)
    if writer is None or writer.error is None:
        return None
    setattr(args, _STREAM_FAILED, True)
    return _os_error(args.jsonl, writer.error)


def write_exports(
    args: argparse.Namespace, spans: Sequence[Span], *, stderr: TextIO | None = None
) -> int:
    """Write every requested export of ``spans``; returns 0, or 1 if any file failed.

    Example:
        >>> write_exports(argparse.Namespace(), [])
        0
    """
    status = 1 if getattr(args, _LIVE_FAILED, False) else 0
    for _flag, dest, _text, writer in _EXPORTS:
        path: Any = getattr(args, dest, None)
        if dest == "jsonl" and getattr(args, _STREAM_FAILED, False):
            status = 1
            continue
        if not path or (dest == "jsonl" and getattr(args, _STREAMED, False)):
            continue
        try:
            writer(spans, path)
        except OSError as exc:
            _error(_os_error(path, exc), stderr)
            status = 1
        except Exception as exc:  # a bug in one exporter must not cost the others
            _error(f"cannot write {path}: internal error: {type(exc).__name__}: {exc}", stderr)
            status = 1
    return status


def summary_command(
    path: str, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """``harn-trace summary TRACE.jsonl``: print the saved trace's causal tree; exit status.

    Example:
        >>> summary_command("/no/such/trace.jsonl", stderr=sys.stdout)
        error: /no/such/trace.jsonl: no such file
        1
    """
    spans = load_trace(path, stderr)
    if spans is None:
        return 1
    print_causal_summary(spans, stdout if stdout is not None else sys.stdout)
    return 0


def load_trace(path: str, stderr: TextIO | None = None) -> list[Span] | None:
    """Read a saved JSONL trace; on failure print one ``error:`` line and return None.

    Example:
        >>> load_trace("/no/such/trace.jsonl", sys.stdout) is None
        error: /no/such/trace.jsonl: no such file
        True
    """
    try:
        return list(read_jsonl(path))
    except TraceFileError as exc:
        _error(str(exc), stderr)
    return None
