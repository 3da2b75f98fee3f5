"""Run one conformance program the way `harn-trace run` would, on virtual time.

A program passes when its stdout equals `NAME.out` exactly and it ends the
way `NAME.err` says: with no error if there is no `.err`, else with a Harn
error whose message contains the `.err` text. A watchdog stops a program
that runs longer than `LIMIT_S` of real time (counted as a failure).
"""

from __future__ import annotations

import io
import pathlib
import signal
from dataclasses import dataclass

from harn_async_trace import MockClock, SpanCollector, use_collector
from harn_async_trace.loop import run as loop_run
from vm_demo.errors import HarnError, HarnRuntimeError, HarnSyntaxError
from vm_demo.runtime import VM

DIR = pathlib.Path(__file__).parent / "conformance"
LIMIT_S = 5


class TooSlow(BaseException):
    """Raised by the watchdog; a BaseException so the VM does not turn it into a Harn error."""


@dataclass
class Outcome:
    name: str
    passed: bool
    detail: str


def programs() -> list[str]:
    return sorted(p.stem for p in DIR.glob("*.harn"))


def _alarm(signum: int, frame: object) -> None:
    raise TooSlow


def run_program(name: str) -> Outcome:
    source_path = DIR / f"{name}.harn"
    expected = (DIR / f"{name}.out").read_text(encoding="utf-8")
    err_path = DIR / f"{name}.err"
    want_error = err_path.read_text(encoding="utf-8").strip() if err_path.exists() else None
    out = io.StringIO()
    error: str | None = None

    async def main() -> None:
        with use_collector(SpanCollector(enabled=False)):
            await VM(stdout=out).run_source(
                source_path.read_text(encoding="utf-8"), str(source_path)
            )

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(LIMIT_S)
    try:
        loop_run(main(), clock=MockClock())
    except TooSlow:
        return Outcome(name, False, f"ran longer than {LIMIT_S}s")
    except (HarnSyntaxError, HarnRuntimeError) as e:
        error = e.message
    except HarnError as e:
        error = str(e)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    got = out.getvalue()
    if got != expected:
        return Outcome(name, False, f"stdout {got!r} != expected {expected!r}; error: {error}")
    if want_error is None and error is not None:
        return Outcome(name, False, f"unexpected error: {error}")
    if want_error is not None and (error is None or want_error not in error):
        return Outcome(name, False, f"expected an error containing {want_error!r}, got {error!r}")
    return Outcome(name, True, "")
