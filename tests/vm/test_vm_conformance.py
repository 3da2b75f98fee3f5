"""The conformance sample (tests/vm/conformance, chosen by the rule in its RULE.md).

`test_program` runs each program; `test_pass_rate` asserts that at least 80%
of the whole sample passes and prints the ones that fail. A program known to
fail is listed in KNOWN_FAILING (a strict xfail, so fixing it turns the
list red until it is updated); today the list is empty.
"""

from __future__ import annotations

import pytest
from conformance_runner import Outcome, programs, run_program

KNOWN_FAILING: frozenset[str] = frozenset()
PROGRAMS = programs()
_OUTCOMES: dict[str, Outcome] = {}  # each program runs once per session


def outcome_of(name: str) -> Outcome:
    if name not in _OUTCOMES:
        _OUTCOMES[name] = run_program(name)
    return _OUTCOMES[name]


def test_sample_size() -> None:
    """The sample is a real cross-section: 80-150 programs over every listed page."""
    assert 80 <= len(PROGRAMS) <= 150
    pages = {name.split("-")[0] for name in PROGRAMS}
    assert pages == {"basics", "errors", "concurrency", "builtins", "spec"}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(n, marks=pytest.mark.xfail(strict=True, reason="known failure"))
        if n in KNOWN_FAILING
        else n
        for n in PROGRAMS
    ],
)
def test_program(name: str) -> None:
    """The program prints exactly its `.out` (and fails as its `.err` says, if any)."""
    outcome = outcome_of(name)
    assert outcome.passed, outcome.detail


def test_pass_rate() -> None:
    """At least 80% of the sample passes; the failures are printed by name."""
    outcomes = [outcome_of(n) for n in PROGRAMS]
    failed = [o for o in outcomes if not o.passed]
    rate = 1 - len(failed) / len(outcomes)
    print(f"conformance: {len(outcomes) - len(failed)}/{len(outcomes)} pass ({rate:.0%})")
    for o in failed:
        print(f"  FAIL {o.name}: {o.detail}")
    assert rate >= 0.80, [o.name for o in failed]
