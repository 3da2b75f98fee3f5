"""anyio's own test suite on a plain loop and on our virtual-time loops: the pass/fail comparison.

Fetches the sdist of the installed anyio with pip
(``pip download anyio==<installed> --no-binary :all: --no-deps``), copies
its ``tests/`` and rewrites one thing: the ``anyio_backend`` fixture of its
conftest, whose asyncio parameters become four, each with the suite's own
``debug=True``:

* ``asyncio`` and ``asyncio+uvloop`` - plain loops, as anyio runs them;
* ``virtual`` and ``virtual+uvloop`` - ``virtual_loop_factory(MockClock())``
  (a fresh clock per loop), stock asyncio and uvloop.

The trio backend is left out (our loops are asyncio loops). One pytest run
executes all four, so machine load hits them alike; the script then prints,
per virtual flavour, every test that passes on the plain loop but not on the
virtual one, and the totals. Exit status 0 when nothing regressed apart from
the tests listed in ``EXPECTED`` below (they measure real elapsed time).

Run: ``make test-extended`` (which creates ``.venv-extended`` with anyio's
test dependencies), or ``.venv-extended/bin/python benchmarks/anyio_suite.py
[-k EXPR] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

PLAIN = {"virtual": "asyncio", "virtual+uvloop": "asyncio+uvloop"}

# Tests that pass on a plain loop and are expected not to on virtual time,
# with the reason. Keyed by the test id without its backend parameter.
EXPECTED: dict[str, str] = {}

_FIXTURE = '''

# --- appended by harn-async-trace benchmarks/anyio_suite.py ------------------
# The same fixture name, defined again: the last definition is the one pytest uses.
from harn_async_trace import MockClock as _HarnMockClock
from harn_async_trace.loop import virtual_loop_factory as _harn_virtual_loop_factory


def _harn_virtual(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop]:
    def factory() -> asyncio.AbstractEventLoop:
        return _harn_virtual_loop_factory(_HarnMockClock(), use_uvloop=use_uvloop)()

    factory.__name__ = f"harn_virtual(use_uvloop={use_uvloop})"
    return factory


_harn_params = [
    pytest.param(("asyncio", {"debug": True}), id="asyncio"),
    pytest.param(
        ("asyncio", {"debug": True, "loop_factory": uvloop.new_event_loop}),
        marks=uvloop_marks,
        id="asyncio+uvloop",
    ),
    pytest.param(("asyncio", {"debug": True, "loop_factory": _harn_virtual(False)}), id="virtual"),
    pytest.param(
        ("asyncio", {"debug": True, "loop_factory": _harn_virtual(True)}),
        marks=uvloop_marks,
        id="virtual+uvloop",
    ),
]


@pytest.fixture(params=_harn_params)
def anyio_backend(request: SubRequest) -> tuple[str, dict[str, Any]]:
    return request.param
'''


def fetch_tests(workdir: Path) -> Path:
    """Download and unpack the installed anyio's sdist; return its root."""
    version = importlib.metadata.version("anyio")
    subprocess.run(
        [
            sys.executable, "-m", "pip", "download", f"anyio=={version}",
            "--no-binary", ":all:", "--no-deps", "--quiet", "-d", str(workdir),
        ],
        check=True,
    )  # fmt: skip
    archive = next(workdir.glob(f"anyio-{version}.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(workdir, filter="data")
    root = workdir / f"anyio-{version}"
    conftest = root / "tests" / "conftest.py"
    conftest.write_text(conftest.read_text(encoding="utf-8") + _FIXTURE, encoding="utf-8")
    # The sdist's src/ must not shadow the installed anyio (same version).
    shutil.rmtree(root / "src", ignore_errors=True)
    return root


def run_suite(root: Path, extra: list[str]) -> dict[str, str]:
    """Run the suite once; test id -> outcome (passed/failed/error/skipped)."""
    report = root / "junit.xml"
    cmd = [
        sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
        "-k", "not trio", "--tb=native", f"--junitxml={report}", "-o", "junit_family=xunit2",
        *extra,
    ]  # fmt: skip
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=root, check=False, stdout=subprocess.DEVNULL)
    outcomes: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = "failed" if child.tag == "failure" else child.tag
        outcomes[name] = outcome
    return outcomes


def split_param(test_id: str) -> tuple[str, str | None]:
    """``mod::test[virtual-x]`` -> (``mod::test[x]``, ``virtual``): the flavour leads."""
    if not test_id.endswith("]") or "[" not in test_id:
        return test_id, None
    head, params = test_id[:-1].split("[", 1)
    for flavour in ("virtual+uvloop", "asyncio+uvloop", "virtual", "asyncio"):
        if params == flavour or params.startswith(flavour + "-"):
            rest = params[len(flavour) + 1 :]
            return (f"{head}[{rest}]" if rest else head), flavour
    return test_id, None


def compare(outcomes: dict[str, str]) -> int:
    by_flavour: dict[str, dict[str, str]] = {}
    for test_id, outcome in outcomes.items():
        base, flavour = split_param(test_id)
        if flavour is not None:
            by_flavour.setdefault(flavour, {})[base] = outcome
    status = 0
    print()
    print("| loop | passed | failed | error | skipped |")
    print("|---|---:|---:|---:|---:|")
    for flavour in ("asyncio", "virtual", "asyncio+uvloop", "virtual+uvloop"):
        counts = Counter(by_flavour.get(flavour, {}).values())
        print(
            f"| {flavour} | {counts['passed']} | {counts['failed']} | {counts['error']} "
            f"| {counts['skipped']} |"
        )
    for virtual, plain in PLAIN.items():
        ours, theirs = by_flavour.get(virtual, {}), by_flavour.get(plain, {})
        lost = sorted(t for t, o in theirs.items() if o == "passed" and ours.get(t) != "passed")
        gained = sorted(t for t, o in ours.items() if o == "passed" and theirs.get(t) != "passed")
        unexpected = [t for t in lost if t not in EXPECTED]
        print(f"\n{virtual} vs {plain}: {len(lost)} pass on {plain} only, {len(gained)} on "
              f"{virtual} only")  # fmt: skip
        for test in lost:
            why = EXPECTED.get(test, "UNEXPECTED")
            print(f"  - {test}: {ours.get(test, 'missing')} ({why})")
        for test in gained:
            print(f"  + {test}: {theirs.get(test, 'missing')} on {plain}")
        if unexpected:
            status = 1
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", help="only tests matching this pytest -k expression")
    parser.add_argument("--keep", type=Path, help="unpack into this directory and keep it")
    args = parser.parse_args()
    extra = ["-k", f"not trio and ({args.k})"] if args.k else []
    started = time.monotonic()
    if args.keep is not None:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
        root = fetch_tests(args.keep)
        status = compare(run_suite(root, extra))
    else:
        with tempfile.TemporaryDirectory(prefix="anyio-suite-") as tmp:
            root = fetch_tests(Path(tmp))
            status = compare(run_suite(root, extra))
    print(f"\nanyio {importlib.metadata.version('anyio')}, {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
