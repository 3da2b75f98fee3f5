"""The compiled and the pure core write byte-identical exports of the same programs.

Each core runs in its own interpreter (``HARN_TRACE_PURE=1`` for the pure
one), under a mock clock: the library programs of ``core_parity_program.py``
and the example ``.harn`` programs through the CLI, each exported as JSONL,
Chrome trace and OTLP/JSON.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harn_async_trace._core import _ccore

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.harn"))

pytestmark = pytest.mark.skipif(_ccore is None, reason="the compiled core is not built")


def _env(pure: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HARN_TRACE_PURE"}
    if pure:
        env["HARN_TRACE_PURE"] = "1"
    return env


def _run(args: list[str], pure: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=_env(pure), capture_output=True, text=True, timeout=300,
        cwd=ROOT, check=False,
    )


def _exports(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_library_programs_export_the_same_bytes(tmp_path: Path) -> None:
    """The service and builder programs: same JSONL, Chrome and OTLP bytes on both cores."""
    results = {}
    for pure in (False, True):
        out = tmp_path / ("pure" if pure else "compiled")
        done = _run([str(ROOT / "tests" / "core_parity_program.py"), str(out)], pure)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["pure" if pure else "compiled"]
        results[pure] = _exports(out)
    assert len(results[False]) == 6
    assert results[False]["service.jsonl"].count(b"\n") > 40  # a real trace, not an empty file
    for kind in ("jsonl", "chrome.json", "otlp.json"):  # the span renamed while open
        assert b"foreign-root (renamed)" in results[False][f"service.{kind}"], kind
    for name, data in results[False].items():
        assert data == results[True][name], name


@pytest.mark.parametrize("program", EXAMPLES, ids=lambda p: p.name)
def test_cli_runs_export_the_same_bytes(program: Path, tmp_path: Path) -> None:
    """``harn-trace run --mock-time`` writes the same exports of an example on both cores."""
    results = {}
    for pure in (False, True):
        out = tmp_path / ("pure" if pure else "compiled")
        out.mkdir()
        done = _run(
            [
                "-m", "harn_async_trace.cli", "run", str(program), "--mock-time", "1700000000000",
                "--jsonl", str(out / "t.jsonl"), "--chrome", str(out / "t.chrome.json"),
                "--otlp", str(out / "t.otlp.json"),
            ],
            pure,
        )
        results[pure] = (done.returncode, done.stdout, _exports(out))
    assert results[False][2]["t.jsonl"]  # the run traced something
    assert results[False] == results[True]
