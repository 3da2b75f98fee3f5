"""What a run did with trace goldens: written, updated, matched, failed, and which went unused.

A golden is *unused* when no test of the run used it although the run shows
it should have: its test is gone (or its module file is), or its test passed
without asserting it. Everything the run cannot judge is left alone: modules
narrowed by ``path::test`` or with deselected tests (``-k``, ``-m``, ``--lf``
...), modules that failed to collect, goldens of tests that did not pass or
did not run in this process (pytest-xdist), and runs that stopped early.
With ``--snapshot-update`` unused goldens are deleted, as syrupy does.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pytest

from .._snapshot import GOLDEN_SUFFIX, Outcome, golden_stem, owner_stem

__all__ = ("GoldenLedger", "item_path")

_ORDER: Final = (Outcome.WRITTEN, Outcome.UPDATED, Outcome.MATCHED)


def item_path(item: pytest.Item) -> list[str]:
    """The enclosing classes of ``item``, outermost first, then its name with parameters."""
    return [node.name for node in item.listchain() if isinstance(node, pytest.Class)] + [
        item.name
    ]


def _module_key(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@dataclass(eq=False)  # registered as a plugin: hashed by identity
class GoldenLedger:
    """A per-run plugin: collects what the run did with goldens and reports it at the end."""

    update: bool
    delete_unused: bool
    outcomes: Counter[Outcome] = field(default_factory=Counter)
    used: set[Path] = field(default_factory=set)
    items: list[pytest.Item] = field(default_factory=list)
    # Modules the run cannot judge (see the module docstring), by node-id file part.
    partial_modules: set[str] = field(default_factory=set)
    ran_here: set[str] = field(default_factory=set)
    passed: set[str] = field(default_factory=set)
    not_passed: set[str] = field(default_factory=set)
    unused: list[Path] = field(default_factory=list)
    deleted: bool = False

    def record(self, path: Path, outcome: Outcome) -> None:
        """Note that a test compared (or wrote) the golden at ``path``."""
        self.used.add(path)
        self.outcomes[outcome] += 1

    # -- pytest hooks ------------------------------------------------------------

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed and report.nodeid:
            self.partial_modules.add(_module_key(report.nodeid))

    def pytest_deselected(self, items: Sequence[pytest.Item]) -> None:
        self.partial_modules.update(_module_key(item.nodeid) for item in items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = list(session.items)

    def pytest_runtest_call(self, item: pytest.Item) -> None:
        self.ran_here.add(item.nodeid)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.passed:
            self.passed.add(report.nodeid)
        elif not report.passed:
            self.not_passed.add(report.nodeid)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Find (and with ``delete_unused``, delete) the unused goldens of this run."""
        stopped = session.shouldstop or session.shouldfail or session.config.option.collectonly
        if stopped or session.exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            return
        if hasattr(session.config, "workerinput"):
            return  # a pytest-xdist worker runs part of the session and reports nothing
        self.partial_modules.update(_narrowed_modules(session.config))
        self.unused = sorted(self._unused())
        if self.delete_unused and self.unused:
            for path in self.unused:
                path.unlink(missing_ok=True)
                _remove_if_empty(path.parent)
            self.deleted = True

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        lines = self._summary(terminalreporter.config.invocation_params.dir)
        if lines:
            terminalreporter.section("trace snapshots")
            for line in lines:
                terminalreporter.line(line)

    # -- judging -------------------------------------------------------------------

    def _unused(self) -> Iterator[Path]:
        by_module: dict[str, list[pytest.Item]] = {}
        for item in self.items:
            by_module.setdefault(_module_key(item.nodeid), []).append(item)
        site_dirs: set[Path] = set()
        for key, items in by_module.items():
            test_file = Path(items[0].path)
            site_dirs.add(test_file.parent / "__snapshots__")
            if key in self.partial_modules:
                continue
            stems = {golden_stem(item_path(item)): item.nodeid for item in items}
            folder = test_file.parent / "__snapshots__" / test_file.stem
            for golden in folder.glob(f"*{GOLDEN_SUFFIX}"):
                if golden in self.used:
                    continue
                owner = owner_stem(golden, stems)
                if owner is None or self._passed_without_it(stems[owner]):
                    yield golden
        for snapshots in site_dirs:
            # A module folder whose test file is gone: all its goldens are orphans.
            for folder in snapshots.glob("*/"):
                if not (snapshots.parent / f"{folder.name}.py").exists():
                    yield from folder.glob(f"*{GOLDEN_SUFFIX}")

    def _passed_without_it(self, nodeid: str) -> bool:
        # Ran here: under pytest-xdist the controller hears of passes it
        # cannot see the assertions of.
        return nodeid in self.ran_here and nodeid in self.passed and nodeid not in self.not_passed

    def _summary(self, root: Path) -> list[str]:
        lines = []
        counts = [f"{self.outcomes[o]} {o.value}" for o in _ORDER if self.outcomes[o]]
        failed = self.outcomes[Outcome.MISSING] + self.outcomes[Outcome.DIFFERS]
        if failed:
            counts.append(f"{failed} failed")
        if counts:
            lines.append(", ".join(counts))
        if self.unused:
            one = len(self.unused) == 1
            it, s = ("it", "") if one else ("them", "s")
            what = "deleted" if self.deleted else f"pytest --snapshot-update deletes {it}"
            lines.append(
                f"{len(self.unused)} unused golden{s} (no test of this run used {it}; {what}):"
            )
            lines.extend(f"  {os.path.relpath(path, root)}" for path in self.unused)
        return lines


def _narrowed_modules(config: pytest.Config) -> Iterator[str]:
    """Node-id file parts of the modules the command line narrowed to some of their tests."""
    for arg in config.args:
        if "::" in arg:
            path = Path(config.invocation_params.dir, arg.split("::", 1)[0]).resolve()
            try:
                yield path.relative_to(config.rootpath).as_posix()
            except ValueError:
                yield path.as_posix()


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty (or already gone): nothing to tidy
