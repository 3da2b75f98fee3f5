"""Trace goldens: one file per test id, the update flags, and the end-of-run report."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_support import needs_syrupy, write_ini

from harn_async_trace._snapshot import golden_stem, owner_stem


@pytest.fixture(autouse=True)
def _inner_ini(pytester: pytest.Pytester) -> None:
    write_ini(pytester)


FLOW = """
from harn_async_trace import SpanKind, span

def test_flow(trace_collector, mock_clock, trace_snapshot):
    with span(SpanKind.PIPELINE, "main", user="ann"):
        mock_clock.advance(0.25)
        with span(SpanKind.TOOL_CALL, "NAME"):
            mock_clock.advance(0.5)
    trace_snapshot.assert_match()
"""

# One golden per test, each with its own tool name so that sharing one would fail.
TWO_TESTS = """
from harn_async_trace import SpanKind, span

def test_a(trace_collector, trace_snapshot):
    with span(SpanKind.TOOL_CALL, "a"):
        pass
    trace_snapshot.assert_match()

def test_b(trace_collector, trace_snapshot):
    with span(SpanKind.TOOL_CALL, "b"):
        pass
    trace_snapshot.assert_match()
"""


def _goldens(pytester: pytest.Pytester, module: str) -> dict[str, str]:
    folder = Path(pytester.path, "__snapshots__", module)
    return {p.name: p.read_text() for p in sorted(folder.glob("*.trace"))}


class TestOneGoldenPerTestId:
    def test_classes_do_not_share_a_golden(self, pytester: pytest.Pytester) -> None:
        """Two classes with a test_run each, and a nested class, get three distinct goldens."""
        pytester.makepyfile(
            test_collide="""
            from harn_async_trace import SpanKind, span

            def traced(trace_snapshot, name):
                with span(SpanKind.STEP, name):
                    pass
                trace_snapshot.assert_match()

            class TestA:
                def test_run(self, trace_collector, trace_snapshot):
                    traced(trace_snapshot, "a")

            class TestB:
                def test_run(self, trace_collector, trace_snapshot):
                    traced(trace_snapshot, "b")

                class TestInner:
                    def test_run(self, trace_collector, trace_snapshot):
                        traced(trace_snapshot, "inner")
            """
        )
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=3)
        assert _goldens(pytester, "test_collide") == {
            "TestA.test_run.trace": "#1 step a\n",
            "TestB.TestInner.test_run.trace": "#1 step inner\n",
            "TestB.test_run.trace": "#1 step b\n",
        }
        pytester.runpytest().assert_outcomes(passed=3)

    def test_parametrized_ids_become_safe_file_names(self, pytester: pytest.Pytester) -> None:
        """Each parameter set has its golden; unsafe characters are percent-encoded."""
        pytester.makepyfile(
            test_params="""
            import pytest
            from harn_async_trace import SpanKind, span

            @pytest.mark.parametrize("who", ["ann", "bob b", "x/y", "x_y", "50%"])
            @pytest.mark.parametrize("fast", [True, False])
            def test_greet(who, fast, trace_collector, trace_snapshot):
                with span(SpanKind.STEP, f"{who} {fast}"):
                    pass
                trace_snapshot.assert_match()
            """
        )
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=10)
        goldens = _goldens(pytester, "test_params")
        assert goldens["test_greet[True-ann].trace"] == "#1 step ann True\n"
        assert goldens["test_greet[False-bob%20b].trace"] == "#1 step bob b False\n"
        assert goldens["test_greet[True-x%2Fy].trace"] == "#1 step x/y True\n"
        assert goldens["test_greet[True-x_y].trace"] == "#1 step x_y True\n"
        assert goldens["test_greet[False-50%25].trace"] == "#1 step 50% False\n"
        assert len(goldens) == 10

    def test_named_goldens_and_replay(self, pytester: pytest.Pytester) -> None:
        """name= adds a suffix; the same program replayed in two tests gives identical files."""
        pytester.makepyfile(
            test_replay="""
            import pytest
            from harn_async_trace import SpanKind, span, span_start, span_end

            def program(clock):
                with span(SpanKind.PIPELINE, "p"):
                    for i in range(3):
                        s = span_start(SpanKind.FN_CALL, f"f{i}")
                        clock.advance(i)
                        span_end(s)

            @pytest.mark.parametrize("run", [1, 2])
            def test_replay(run, trace_collector, mock_clock, trace_snapshot):
                program(mock_clock)
                trace_snapshot.assert_match(name=f"run{run}")
            """
        )
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=2)
        goldens = _goldens(pytester, "test_replay")
        assert set(goldens) == {"test_replay[1]-run1.trace", "test_replay[2]-run2.trace"}
        assert goldens["test_replay[1]-run1.trace"] == goldens["test_replay[2]-run2.trace"]
        assert "#4 fn_call f2 @1000ms +2000ms" in goldens["test_replay[1]-run1.trace"]

    def test_one_golden_twice_in_a_test_fails(self, pytester: pytest.Pytester) -> None:
        """Two assert_match calls on one golden would overwrite each other: the second fails."""
        pytester.makepyfile(
            """
            def test_twice(trace_collector, trace_snapshot):
                trace_snapshot.assert_match()
                trace_snapshot.assert_match()
            """
        )
        result = pytester.runpytest("--snapshot-update")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*already compared a trace with test_twice.trace*name=*"])

    def test_stems_stay_distinct(self) -> None:
        """Ids that a simple replacement would merge, and over-long ids, keep distinct stems."""
        ids = ["a b", "a_b", "a%20b", "a/b", "a\\b", "a:b", "é", "x" * 400, "x" * 401]
        stems = {golden_stem(["test", f"test_x[{i}]"]) for i in ids}
        assert len(stems) == len(ids)
        assert max(len(s) for s in stems) < 200
        assert golden_stem(["test_x[1]"], name="a b") == "test_x[1]-a%20b"

    def test_owner_is_the_longest_matching_test(self) -> None:
        """A named golden belongs to its test; a stray one to none."""
        stems = ["test_a", "test_a[1]", "TestK.test_a"]
        assert owner_stem(Path("test_a-x.trace"), stems) == "test_a"
        assert owner_stem(Path("test_a[1]-x.trace"), stems) == "test_a[1]"
        assert owner_stem(Path("TestK.test_a.trace"), stems) == "TestK.test_a"
        assert owner_stem(Path("test_ab.trace"), stems) is None


class TestUpdateAndReport:
    def test_missing_golden_fails_with_hint(self, pytester: pytest.Pytester) -> None:
        """Without a golden file the test fails and says how to create one."""
        pytester.makepyfile(test_snap=FLOW.replace("NAME", "grep"))
        result = pytester.runpytest()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "no trace snapshot at __snapshots__/test_snap/test_flow.trace; "
                "run pytest --snapshot-update to create it",
                "*= trace snapshots =*",
                "1 failed",
            ]
        )

    @pytest.mark.parametrize("flag", ["--snapshot-update", "--update-trace-snapshots"])
    def test_update_reports_written_then_updated(
        self, pytester: pytest.Pytester, flag: str
    ) -> None:
        """Either flag writes goldens and the run says how many it wrote, updated, matched."""
        pytester.makepyfile(test_snap=FLOW.replace("NAME", "grep"))
        result = pytester.runpytest(flag)
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*= trace snapshots =*", "1 written"])
        assert _goldens(pytester, "test_snap") == {
            "test_flow.trace": (
                "#1 pipeline main @0ms +750ms\n"
                '    meta: user="ann"\n'
                "  #2 tool_call grep @250ms +500ms\n"
            )
        }
        pytester.makepyfile(test_snap=FLOW.replace("NAME", "find"), test_more=TWO_TESTS)
        result = pytester.runpytest(flag)
        result.stdout.fnmatch_lines(["*= trace snapshots =*", "2 written, 1 updated"])
        assert "tool_call find" in _goldens(pytester, "test_snap")["test_flow.trace"]
        result = pytester.runpytest()
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(["*= trace snapshots =*", "3 matched"])

    def test_mismatch_shows_unified_diff(self, pytester: pytest.Pytester) -> None:
        """A changed trace fails with a readable unified diff of the two trees."""
        pytester.makepyfile(test_snap=FLOW.replace("NAME", "grep"))
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=1)
        pytester.makepyfile(test_snap=FLOW.replace("NAME", "find"))
        result = pytester.runpytest()
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "trace differs from snapshot __snapshots__/test_snap/test_flow.trace",
                "--- test_flow.trace (golden)",
                "+++ test_flow.trace (this run)",
                "-  #2 tool_call grep @250ms +500ms",
                "+  #2 tool_call find @250ms +500ms",
                "(run pytest --snapshot-update to accept the new trace)",
            ]
        )

    def test_no_report_when_no_golden_was_touched(self, pytester: pytest.Pytester) -> None:
        """A run that used no golden prints no trace-snapshot section."""
        pytester.makepyfile("def test_plain():\n    pass\n")
        result = pytester.runpytest("--snapshot-update")
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line("*trace snapshots*")


class TestUnusedGoldens:
    def _two_goldens_then_drop_b(self, pytester: pytest.Pytester) -> Path:
        pytester.makepyfile(test_m=TWO_TESTS)
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=2)
        pytester.makepyfile(test_m=TWO_TESTS.split("def test_b")[0])
        return Path(pytester.path, "__snapshots__", "test_m", "test_b.trace")

    def test_listed_then_deleted_by_update(self, pytester: pytest.Pytester) -> None:
        """The golden of a removed test is listed as unused; --snapshot-update deletes it."""
        stale = self._two_goldens_then_drop_b(pytester)
        result = pytester.runpytest()
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(
            [
                "1 matched",
                "1 unused golden (no test of this run used it; "
                "pytest --snapshot-update deletes it):",
                "  __snapshots__/test_m/test_b.trace",
            ]
        )
        assert stale.exists()
        result = pytester.runpytest("--snapshot-update")
        result.stdout.fnmatch_lines(
            ["1 unused golden (no test of this run used it; deleted):", "  __snapshots__/test_m/*"]
        )
        assert not stale.exists()
        assert _goldens(pytester, "test_m") == {"test_a.trace": "#1 tool_call a\n"}

    def test_a_name_no_longer_asserted(self, pytester: pytest.Pytester) -> None:
        """A passing test that stopped asserting one of its named goldens leaves it unused."""
        pytester.makepyfile(
            test_n="""
            def test_phases(trace_collector, trace_snapshot):
                trace_snapshot.assert_match(name="one")
                trace_snapshot.assert_match(name="two")
            """
        )
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=1)
        pytester.makepyfile(
            test_n="""
            def test_phases(trace_collector, trace_snapshot):
                trace_snapshot.assert_match(name="one")
            """
        )
        result = pytester.runpytest()
        result.stdout.fnmatch_lines(["1 unused*", "  __snapshots__/test_n/test_phases-two.trace"])

    def test_goldens_of_a_deleted_module(self, pytester: pytest.Pytester) -> None:
        """When a test module is gone, its goldens beside a module that ran are unused."""
        pytester.makepyfile(test_m=TWO_TESTS)
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=2)
        pytester.makepyfile(test_other="def test_x():\n    pass\n")
        Path(pytester.path, "test_m.py").unlink()
        result = pytester.runpytest("--snapshot-update")
        result.stdout.fnmatch_lines(["2 unused goldens (no test of this run used them; deleted):"])
        assert not Path(pytester.path, "__snapshots__", "test_m").exists()

    @pytest.mark.parametrize(
        "args",
        [("-k", "test_a"), ("test_m.py::test_a",), ("--deselect", "test_m.py::test_b")],
        ids=["keyword", "node-id", "deselect"],
    )
    def test_partial_runs_leave_goldens_alone(
        self, pytester: pytest.Pytester, args: tuple[str, ...]
    ) -> None:
        """A run narrowed to some tests of a module neither lists nor deletes the others'."""
        pytester.makepyfile(test_m=TWO_TESTS)
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=2)
        result = pytester.runpytest("--snapshot-update", *args)
        result.assert_outcomes(passed=1)
        result.stdout.no_fnmatch_line("*unused*")
        assert set(_goldens(pytester, "test_m")) == {"test_a.trace", "test_b.trace"}

    def test_goldens_of_tests_that_did_not_pass_are_kept(
        self, pytester: pytest.Pytester
    ) -> None:
        """A test that failed or was skipped before asserting does not make its golden unused."""
        pytester.makepyfile(test_m=TWO_TESTS)
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=2)
        pytester.makepyfile(
            test_m=TWO_TESTS.replace(
                "def test_a(trace_collector, trace_snapshot):",
                "def test_a(trace_collector, trace_snapshot):\n    assert False, 'broken'",
            ).replace(
                "def test_b(trace_collector, trace_snapshot):",
                "def test_b(trace_collector, trace_snapshot):\n    import pytest; pytest.skip()",
            )
        )
        result = pytester.runpytest("--snapshot-update")
        result.assert_outcomes(failed=1, skipped=1)
        result.stdout.no_fnmatch_line("*unused*")
        assert set(_goldens(pytester, "test_m")) == {"test_a.trace", "test_b.trace"}

    def test_a_module_that_failed_to_collect(self, pytester: pytest.Pytester) -> None:
        """Goldens of a module that does not import are not judged (the run errors anyway)."""
        pytester.makepyfile(test_m=TWO_TESTS)
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=2)
        pytester.makepyfile(test_m="import no_such_module\n", test_ok="def test_ok(): pass\n")
        result = pytester.runpytest("--snapshot-update", "--continue-on-collection-errors")
        result.assert_outcomes(passed=1, errors=1)
        assert set(_goldens(pytester, "test_m")) == {"test_a.trace", "test_b.trace"}


@needs_syrupy
class TestBesideSyrupy:
    def test_one_flag_updates_both(self, pytester: pytest.Pytester) -> None:
        """With syrupy installed, --snapshot-update writes its snapshots and trace goldens."""
        pytester.makepyfile(
            test_both="""
            from harn_async_trace import SpanKind, span

            def test_both(snapshot, trace_collector, trace_snapshot):
                assert snapshot == {"answer": 42}
                with span(SpanKind.STEP, "s"):
                    pass
                trace_snapshot.assert_match()
            """
        )
        result = pytester.runpytest("--snapshot-update")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*1 snapshot generated*"])
        assert _goldens(pytester, "test_both") == {"test_both.trace": "#1 step s\n"}
        assert Path(pytester.path, "__snapshots__", "test_both.ambr").exists()
        result = pytester.runpytest()
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["1 matched"])

    def test_no_cleanup_keeps_unused_goldens(self, pytester: pytest.Pytester) -> None:
        """syrupy's --snapshot-no-cleanup also keeps unused trace goldens."""
        pytester.makepyfile(test_m=TWO_TESTS)
        pytester.runpytest("--snapshot-update").assert_outcomes(passed=2)
        pytester.makepyfile(test_m=TWO_TESTS.split("def test_b")[0])
        result = pytester.runpytest("--snapshot-update", "--snapshot-no-cleanup")
        result.stdout.fnmatch_lines(["1 unused golden (*pytest --snapshot-update deletes it):"])
        assert set(_goldens(pytester, "test_m")) == {"test_a.trace", "test_b.trace"}
