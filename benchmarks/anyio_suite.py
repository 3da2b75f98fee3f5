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

``ResourceWarning`` is ignored (``-W``): with the suite's warnings-as-errors a
socket leaked by one test fails whichever test the garbage collector happens
to run in, which differs from run to run and from loop to loop. A test that
exists for the plain loop only (it pins its own backend parameters) is not
compared.

A test that hangs past anyio's own 20 s timeout in a way pytest-timeout's
signal method cannot interrupt (blocked inside libuv) would stop the run:
pytest runs with ``--timeout-method=thread`` (which ends the process), a
small plugin records each outcome as it happens, and the script records the
test that was running as ``hung`` and starts pytest again on the tests not
yet run.

Run: ``make test-extended`` (which creates ``.venv-extended`` with anyio's
test dependencies), or ``.venv-extended/bin/python benchmarks/anyio_suite.py
[-k EXPR] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from pathlib import Path

PLAIN = {"virtual": "asyncio", "virtual+uvloop": "asyncio+uvloop"}

# Tests that pass on a plain loop and are expected not to on virtual time,
# with the reason. Keyed by the test id without its backend parameter.
EXPECTED: dict[str, str] = {
    "tests.test_sockets::TestTCPStream::test_receive_timeout[ipv4]": (
        "measures real elapsed time (time.monotonic(), 0.3 s) and needs its 0.1 s timeout "
        "to fire while the server thread sleeps 1 real second; that sleep is real work the "
        "loop sees, so virtual time holds still through it"
    ),
    "tests.test_to_process::test_cancel_during": (
        "needs a loop timer to fire during real work: wait_all_tasks_blocked() polls with "
        "sleep(0.1) while the worker process sleeps 5 real seconds; on virtual time that "
        "work takes no time, so it finishes before the poll and the cancel finds it done"
    ),
}

_FIXTURE = '''

# --- appended by harn-async-trace benchmarks/anyio_suite.py ------------------
# The same fixture name, defined again: the last definition is the one pytest uses.
from harn_async_trace import MockClock as _HarnMockClock
from harn_async_trace.loop import virtual_loop_factory as _harn_virtual_loop_factory


def _harn_virtual(use_uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop]:
    def factory() -> asyncio.AbstractEventLoop:
        return _harn_virtual_loop_factory(_HarnMockClock(), use_uvloop=use_uvloop)()

    factory.__name__ = f"harn_virtual(use_uvloop={use_uvloop})"
    if use_uvloop:
        # The suite skips uvloop's known bugs by the factory's module, as for
        # uvloop.new_event_loop; this factory makes uvloop loops too.
        factory.__module__ = "uvloop"
    return factory


# In place: test modules that parametrize with conftest's asyncio_params
# (imported after this runs) get the virtual flavours too.
asyncio_params.extend([
    pytest.param(("asyncio", {"debug": True, "loop_factory": _harn_virtual(False)}), id="virtual"),
    pytest.param(
        ("asyncio", {"debug": True, "loop_factory": _harn_virtual(True)}),
        marks=uvloop_marks,
        id="virtual+uvloop",
    ),
])  # fmt: skip
_harn_params = [p for p in asyncio_params if p.id != "asyncio+eager"]


@pytest.fixture(params=_harn_params)
def anyio_backend(request: SubRequest) -> tuple[str, dict[str, Any]]:
    return request.param
'''


_PLUGIN = '''"""Records each test's outcome as it happens (harn-async-trace anyio_suite.py)."""
import json, os

_PATH = os.environ["HARN_SUITE_RESULTS"]


def _write(nodeid, outcome):
    with open(_PATH, "a", encoding="utf-8") as out:
        out.write(json.dumps({"nodeid": nodeid, "outcome": outcome}) + "\\n")


def pytest_collection_modifyitems(session, config, items):
    done = set()
    if os.path.exists(_PATH):
        with open(_PATH, encoding="utf-8") as lines:
            done = {json.loads(line)["nodeid"] for line in lines if line.strip()}
    kept = [item for item in items if item.nodeid not in done]
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid in done])
    items[:] = kept


def pytest_runtest_logstart(nodeid, location):
    _write(nodeid, "started")


def pytest_runtest_logreport(report):
    if report.when == "call" or report.outcome != "passed":
        if report.when == "teardown" and report.outcome == "passed":
            return
        outcome = report.outcome
        if report.when != "call" and outcome == "failed":
            outcome = "error"
        _write(report.nodeid, outcome)
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
    """Run the suite (again after a hang); pytest node id -> passed/failed/error/skipped/hung."""
    (root / "harn_suite_plugin.py").write_text(_PLUGIN, encoding="utf-8")
    results = root / "outcomes.jsonl"
    results.unlink(missing_ok=True)
    cmd = [
        sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
        "-p", "harn_suite_plugin", "--timeout-method=thread", "--tb=native",
        "-W", "ignore::ResourceWarning", "-k", "not trio", *extra,
    ]  # fmt: skip
    path = os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "HARN_SUITE_RESULTS": str(results), "PYTHONPATH": path}
    outcomes: dict[str, str] = {}
    for _ in range(50):  # each pass either finishes or marks one hung test
        print("$", " ".join(cmd), flush=True)
        done = subprocess.run(cmd, cwd=root, env=env, check=False, stdout=subprocess.DEVNULL)
        started: list[str] = []
        outcomes.clear()
        for line in results.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if record["outcome"] == "started":
                started.append(record["nodeid"])
            elif record["nodeid"] not in outcomes or record["outcome"] != "passed":
                outcomes[record["nodeid"]] = record["outcome"]
        hung = [nodeid for nodeid in started if nodeid not in outcomes]
        if not hung:
            break
        print(f"  hung: {hung[-1]} (pytest exited {done.returncode}); running the rest", flush=True)
        with results.open("a", encoding="utf-8") as out:
            out.write(json.dumps({"nodeid": hung[-1], "outcome": "hung"}) + "\n")
    return dict(outcomes)


def test_key(nodeid: str) -> str:
    """``tests/test_x.py::t[p]`` -> ``tests.test_x::t[p]``, the form ``EXPECTED`` uses."""
    return nodeid.replace("/", ".").replace(".py::", "::")


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


def compare(outcomes: dict[str, str]) -> list[str]:
    """Print the table and the differences; return the node ids of unexpected losses.

    Each unexpected loss comes with its plain-loop twin, so both can be run again.
    """
    by_flavour: dict[str, dict[str, str]] = {}
    node_of: dict[tuple[str, str], str] = {}
    for nodeid, outcome in outcomes.items():
        base, flavour = split_param(test_key(nodeid))
        if flavour is not None:
            by_flavour.setdefault(flavour, {})[base] = outcome
            node_of[flavour, base] = nodeid
    unexpected_nodes: list[str] = []
    print()
    print("| loop | passed | failed | error | hung | skipped |")
    print("|---|---:|---:|---:|---:|---:|")
    for flavour in ("asyncio", "virtual", "asyncio+uvloop", "virtual+uvloop"):
        counts = Counter(by_flavour.get(flavour, {}).values())
        print(
            f"| {flavour} | {counts['passed']} | {counts['failed']} | {counts['error']} "
            f"| {counts['hung']} | {counts['skipped']} |"
        )
    for virtual, plain in PLAIN.items():
        ours, theirs = by_flavour.get(virtual, {}), by_flavour.get(plain, {})
        lost = sorted(
            t for t, o in theirs.items() if o == "passed" and t in ours and ours[t] != "passed"
        )
        gained = sorted(t for t, o in ours.items() if o == "passed" and theirs.get(t) != "passed")
        unexpected = [t for t in lost if t not in EXPECTED]
        print(f"\n{virtual} vs {plain}: {len(lost)} pass on {plain} only, {len(gained)} on "
              f"{virtual} only")  # fmt: skip
        for test in lost:
            why = EXPECTED.get(test, "UNEXPECTED")
            print(f"  - {test}: {ours.get(test, 'missing')} ({why})")
        for test in gained:
            print(f"  + {test}: {theirs.get(test, 'missing')} on {plain}")
        for test in unexpected:
            unexpected_nodes += [node_of[virtual, test], node_of[plain, test]]
    return unexpected_nodes


def check(root: Path, extra: list[str]) -> int:
    """Run the suite and compare; unexpected losses get one more run, alone, before failing.

    A loaded machine (CI's two shared cores) can fail a timing test once on
    either loop; a test that loses again when run alone is a real regression.
    """
    unexpected = compare(run_suite(root, extra))
    if not unexpected:
        return 0
    print(f"\n{len(unexpected) // 2} unexpected: running them and their plain-loop twins again")
    again = run_suite(root, unexpected)
    still = [
        virtual
        for virtual, plain in zip(unexpected[::2], unexpected[1::2], strict=True)
        if again.get(plain) == "passed" and again.get(virtual) != "passed"
    ]
    for nodeid in still:
        print(f"  still lost on virtual time: {nodeid} ({again.get(nodeid, 'missing')})")
    if not still:
        print("  all of them pass on the second run (load, not a regression)")
    return 1 if still else 0


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
        status = check(root, extra)
    else:
        with tempfile.TemporaryDirectory(prefix="anyio-suite-") as tmp:
            root = fetch_tests(Path(tmp))
            status = check(root, extra)
    print(f"\nanyio {importlib.metadata.version('anyio')}, {time.monotonic() - started:.0f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
