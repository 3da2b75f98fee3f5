"""Calling `harn-trace` in-process from tests (not a test module)."""

from __future__ import annotations

import pytest

from harn_async_trace.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``main(args)`` with argparse's exit turned into a status; returns (status, out, err)."""
    try:
        status = main(args)
    except SystemExit as exc:  # argparse usage errors
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


def restore_sigint() -> None:
    """``preexec_fn`` for a child that a test will Ctrl-C.

    A shell starts background jobs with SIGINT ignored, and Python installs
    no KeyboardInterrupt handler for a signal ignored at start-up: a suite
    run in the background (CI, nohup) would send SIGINT to a child that can
    never hear it. The child gets the default disposition back instead.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
