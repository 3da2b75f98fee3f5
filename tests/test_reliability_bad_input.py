"""Bad input: fuzzed VM source, wrong-typed API arguments, malformed traceparents, CLI misuse.

The promise: no Python traceback ever escapes; each mistake gets an error
that says what is wrong and where (file:line:col for source, the argument
name for API calls, the flag or path for the CLI).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from cli_support import run_cli as _cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harn_async_trace import (
    MockClock,
    SpanCollector,
    TracedChannel,
    TracedPool,
    extract_traceparent,
    format_summary,
    inject_traceparent,
    install_override,
    mock_time,
    span,
    subscribe,
    subscribe_queued,
    traced_parallel,
    traced_spawn,
    use_collector,
)
from harn_async_trace.export import continue_trace
from harn_async_trace.loop import virtual_loop_factory
from vm_demo.compiler import compile_source
from vm_demo.errors import HarnSyntaxError

_PROFILE = os.environ.get("HARN_RELIABILITY_PROFILE", "ci")
FUZZ = settings(
    max_examples=2000 if _PROFILE == "deep" else 300,
    deadline=None,
    derandomize=_PROFILE != "deep",
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# -- VM front end ------------------------------------------------------------------

# Harn tokens and fragments: a "token soup" gets much deeper into the parser
# than random characters, which mostly die in the lexer.
TOKENS = (
    "pipeline", "fn", "let", "var", "if", "else", "for", "in", "while", "return", "break",
    "continue", "try", "catch", "finally", "throw", "spawn", "await", "parallel", "each",
    "settle", "with", "deadline", "select", "from", "timeout", "import", "@step", "nil",
    "true", "false", "main", "x", "y", "log", "(", ")", "{", "}", "[", "]", ",", ":", ".",
    "->", "=", "+=", "==", "!=", "<", ">", "+", "-", "*", "/", "%", "!", "&&", "||", "??",
    "1", "2.5", "25ms", "5s", '"s"', '"a${x}b"', '"""t"""', '"${', "}", "\n", "#", "//", "'",
)


def _assert_front_end_verdict(source: str) -> None:
    """Compiling ``source`` either works or raises a located HarnSyntaxError, nothing else."""
    error: HarnSyntaxError | None = None
    try:
        compile_source(source, "fuzz.harn")
    except HarnSyntaxError as exc:
        error = exc
    if error is not None:
        assert error.loc.file == "fuzz.harn"
        assert error.loc.line >= 1
        assert error.loc.col >= 1
        assert error.render().startswith("error: ")
        assert "fuzz.harn:" in error.render()


class TestVmFrontEndFuzz:
    @FUZZ
    @given(st.binary(max_size=300))
    def test_random_bytes_give_a_syntax_error_or_compile(self, data: bytes) -> None:
        """Random bytes (as latin-1 text): a located syntax error, never a Python exception."""
        _assert_front_end_verdict(data.decode("latin-1"))

    @FUZZ
    @given(st.text(max_size=200))
    def test_random_text_gives_a_syntax_error_or_compiles(self, text: str) -> None:
        """Random unicode text: a located syntax error, never a Python exception."""
        _assert_front_end_verdict(text)

    @FUZZ
    @given(st.lists(st.sampled_from(TOKENS), max_size=40), st.sampled_from(("", " ", "\n")))
    def test_token_soup_gives_a_syntax_error_or_compiles(self, tokens: list[str], sep: str) -> None:
        """Random sequences of Harn tokens: a located syntax error, never a Python exception."""
        _assert_front_end_verdict(sep.join(tokens))

    @pytest.mark.parametrize("source", ['"${"', '"${"${', '"${"\\', 'log("${ "x'])
    def test_unterminated_string_inside_interpolation_is_a_syntax_error(self, source: str) -> None:
        """Regression: a quote opened inside `${` at end of input used to IndexError (lexer)."""
        with pytest.raises(HarnSyntaxError, match=r"fuzz\.harn:1:\d+: unterminated"):
            compile_source(source, "fuzz.harn")

    @pytest.mark.parametrize("source", ["¹", "let x = 1²", "x = ³"])
    def test_non_ascii_digit_is_a_syntax_error(self, source: str) -> None:
        """A superscript digit gives a located syntax error, not a ValueError."""
        _assert_front_end_verdict(source)

    def test_deep_nesting_is_a_clear_error(self) -> None:
        """A deeply nested (valid) program compiles or fails with a located HarnSyntaxError."""
        depth = 80
        source = "pipeline main() {\n" + "if true {\n" * depth + "}\n" * depth + "}\n"
        _assert_front_end_verdict(source)


# -- API arguments -------------------------------------------------------------------


async def _co() -> int:
    return 1


def _in_loop(make: Callable[[], Any]) -> Callable[[], Any]:
    """Call ``make()`` inside a running loop (for APIs that need one) and await the result."""

    async def main() -> Any:
        result = make()
        if asyncio.iscoroutine(result):
            return await result
        return result

    def call() -> Any:
        with asyncio.Runner(loop_factory=virtual_loop_factory(MockClock())) as runner:
            return runner.run(main())

    return call


_c: Any = SpanCollector()  # Any: these calls are wrong on purpose
_open_id = _c.start("step", "open")
A_span, A_use, A_clock, A_mock, A_override, A_factory = (
    cast(Any, f) for f in (span, use_collector, MockClock, mock_time, install_override,
                           virtual_loop_factory)
)
A_sub, A_queued, A_pool, A_channel, A_spawn, A_par = (
    cast(Any, f) for f in (subscribe, subscribe_queued, TracedPool, TracedChannel, traced_spawn,
                           traced_parallel)
)

# (label, call, exception type, text the message must contain)
BAD_CALLS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("start kind", lambda: _c.start(123, "x"), TypeError, "kind must be a SpanKind"),
    ("start unknown kind", lambda: _c.start("nope", "x"), TypeError, "got 'nope'"),
    ("start name", lambda: _c.start("step", 5), TypeError, "name must be a str"),
    ("span name", lambda: A_span("step", None), TypeError, "name must be a str"),
    ("metadata key", lambda: _c.set_metadata(_open_id, 1, 2), TypeError, "metadata key"),
    ("event name", lambda: _c.record_event(_open_id, 5), TypeError, "event name"),
    ("event attrs", lambda: _c.record_event(_open_id, "e", [1]), TypeError, "event attributes"),
    ("links item", lambda: _c.start_with_links("step", "x", [1]), TypeError, "links[0]"),
    ("links", lambda: _c.start_with_links("step", "x", 5), TypeError, "links must be"),
    ("max_spans", lambda: SpanCollector(max_spans=-1), TypeError, "max_spans"),
    ("use_collector", lambda: A_use("x").__enter__(), TypeError, "use_collector()"),
    ("advance back", lambda: MockClock().advance(-1), ValueError, "backwards"),
    ("advance type", lambda: A_clock().advance("1"), TypeError, "delta"),
    ("clock wall", lambda: A_clock(start_wall_ms="x"), TypeError, "start_wall_ms"),
    ("mock_time wall", lambda: A_mock(start_wall_ms="x"), TypeError, "start_wall_ms"),
    ("install_override", lambda: A_override(5), TypeError, "clock"),
    ("loop factory", lambda: A_factory("c"), TypeError, "clock must be a MockClock"),
    ("subscribe", lambda: A_sub(5), TypeError, "callback must be callable"),
    ("queued maxsize", lambda: A_queued(print, maxsize=0), ValueError, "maxsize"),
    ("pool workers", lambda: A_pool(0, 1), ValueError, "workers must be >= 1"),
    ("pool workers type", lambda: A_pool("2", 1), TypeError, "workers must be an int"),
    ("pool max_queue", lambda: A_pool(1, -1), ValueError, "max_queue"),
    ("channel name", lambda: A_channel(5), TypeError, "name must be a str"),
    ("trigger handler", lambda: A_channel("c").trigger(5), TypeError, "handler"),
    ("trigger batch", lambda: A_channel("c").trigger(print, batch_size=0), ValueError, "batch"),
    ("spawn work", _in_loop(lambda: A_spawn(42)), TypeError, "traced_spawn()"),
    ("spawn name", _in_loop(lambda: A_spawn(_co(), name=5)), TypeError, "name must be a str"),
    ("parallel cap", _in_loop(lambda: A_par([_co()], max_concurrent=0)), ValueError, "max_conc"),
    ("parallel cap type", _in_loop(lambda: A_par([_co()], max_concurrent="2")), TypeError, "max_c"),
    ("parallel settle", _in_loop(lambda: A_par([_co()], settle="y")), TypeError, "settle"),
]


class TestApiArguments:
    @pytest.mark.parametrize(
        ("call", "error", "fragment"),
        [pytest.param(call, err, fragment, id=label) for label, call, err, fragment in BAD_CALLS],
    )
    def test_wrong_argument_gets_an_error_naming_it(
        self, call: Callable[[], Any], error: type[Exception], fragment: str
    ) -> None:
        """Each wrong-typed or out-of-range argument raises TypeError/ValueError naming it."""
        with pytest.raises(error) as info:
            call()
        assert fragment in str(info.value)

    @pytest.mark.parametrize(
        "call",
        [
            pytest.param(_in_loop(lambda: A_par(5)), id="parallel not iterable"),
            pytest.param(_in_loop(lambda: A_par([5])), id="parallel branch not awaitable"),
            pytest.param(lambda: cast(Any, format_summary)(5), id="format_summary not spans"),
            pytest.param(lambda: cast(Any, continue_trace)("00-x"), id="continue_trace not parent"),
        ],
    )
    def test_unchecked_arguments_name_the_argument(self, call: Callable[[], Any]) -> None:
        """Arguments the API does not check yet: the error should still say which one is wrong."""
        with pytest.raises((TypeError, ValueError)) as info:
            call()
        message = str(info.value)
        assert any(word in message for word in ("awaitables", "branch", "spans", "parent"))


# -- traceparent ---------------------------------------------------------------------

MALFORMED = {
    "": "expected",
    "garbage": "expected",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331": "expected",
    "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01": "lower-case",
    "00-00000000000000000000000000000000-b7ad6b7169203331-01": "all-zero trace id",
    "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01": "all-zero span id",
    "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01": "version ff",
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra": "exactly four fields",
    "00-" + "a" * 600: "too long",
}


class TestTraceparent:
    @pytest.mark.parametrize(("header", "why"), list(MALFORMED.items()))
    def test_malformed_header_is_ignored_with_a_warning_saying_why(
        self, header: str, why: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A malformed traceparent gives None and one warning naming the value's problem."""
        with caplog.at_level(logging.WARNING, logger="harn_async_trace.propagation"):
            assert extract_traceparent({"traceparent": header}) is None
        messages = [r.message for r in caplog.records]
        assert any("malformed traceparent" in m and why in m for m in messages)

    @FUZZ
    @given(
        st.one_of(
            st.none(),
            st.text(max_size=120),
            st.dictionaries(st.text(max_size=12), st.text(max_size=80), max_size=3),
            st.dictionaries(st.just("traceparent"), st.one_of(st.integers(), st.binary())),
            st.builds(
                lambda t, s, f, v: f"{v}-{t}-{s}-{f}",
                st.text("0123456789abcdefABCDEF", min_size=30, max_size=34),
                st.text("0123456789abcdef", min_size=15, max_size=17),
                st.text("0123456789abcdef", min_size=1, max_size=3),
                st.sampled_from(("00", "01", "ff", "0", "000")),
            ),
        )
    )
    def test_extract_never_raises_and_valid_headers_round_trip(self, carrier: Any) -> None:
        """Whatever the peer sends, extract returns None or a TraceParent that re-serialises."""
        parsed = extract_traceparent(carrier)
        if parsed is not None:
            assert extract_traceparent(parsed.header()) == parsed

    def test_weird_carrier_object_is_ignored(self) -> None:
        """A carrier whose .get raises is reported as unreadable, not raised."""

        class Hostile(dict[str, str]):
            def get(self, key: str, default: Any = None) -> Any:
                raise RuntimeError("no")

        assert extract_traceparent(Hostile()) is None

    def test_inject_into_a_non_mapping_names_the_carrier(self) -> None:
        """A carrier that is not a mutable mapping gets an error naming ``carrier``."""
        with use_collector(SpanCollector()), span("step", "s"):
            with pytest.raises(TypeError, match="carrier"):
                cast(Any, inject_traceparent)(5)


# -- CLI -------------------------------------------------------------------------------


@pytest.fixture
def programs_dir(tmp_path: Path) -> Path:
    """A directory with a good program, a binary file, a syntax error and a bad trace."""
    (tmp_path / "ok.harn").write_text('pipeline main() {\n  log("hi")\n}\n')
    (tmp_path / "bin.harn").write_bytes(b"\xff\xfe\x00bad")
    (tmp_path / "syn.harn").write_text("pipeline main() {\n  let x = (1 +\n}\n")
    (tmp_path / "bad.jsonl").write_text('{"trace_id": 1}\nnot json\n')
    return tmp_path


class TestCli:
    @pytest.mark.parametrize(
        ("args", "status", "message"),
        [
            (["run", "{d}/ok.harn", "--bogus"], 2, "unrecognized arguments: --bogus"),
            (["frobnicate"], 2, "invalid choice: 'frobnicate'"),
            (["run"], 2, "the following arguments are required: FILE"),
            (["run", "{d}/ok.harn", "--mock-time", "abc"], 2,
             "argument --mock-time: must be a whole number of ms >= 0"),
            (["run", "{d}/missing.harn"], 1, "error: {d}/missing.harn: no such file"),
            (["run", "{d}"], 1, "error: cannot read {d}: "),
            (["run", "{d}/bin.harn"], 1, "error: cannot read {d}/bin.harn: 'utf-8' codec"),
            (["run", "{d}/syn.harn"], 1, "--> {d}/syn.harn:3:1"),
            (["run", "{d}/ok.harn", "--chrome", "{d}/no/dir/t.json"], 1,
             "error: cannot write {d}/no/dir/t.json: No such file or directory"),
            (["summary", "{d}/missing.jsonl"], 1, "error: {d}/missing.jsonl: no such file"),
            (["summary", "{d}/bad.jsonl"], 1,
             "error: {d}/bad.jsonl:1: trace_id must be a string, got int 1"),
            (["summary", "{d}/bin.harn"], 1, "error: {d}/bin.harn: not a UTF-8 text file"),
        ],
        ids=[
            "unknown flag", "unknown command", "missing FILE", "bad --mock-time", "missing file",
            "directory", "binary file", "syntax error", "unwritable export", "summary missing",
            "summary malformed", "summary binary",
        ],
    )
    def test_misuse_gets_a_clear_error_and_status(
        self,
        args: list[str],
        status: int,
        message: str,
        programs_dir: Path,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Each misuse exits 1 (program/file) or 2 (usage) naming the flag, file or line."""
        d = str(programs_dir)
        code, _out, err = _cli([a.format(d=d) for a in args], capsys)
        assert code == status
        assert message.format(d=d) in err
        assert "Traceback" not in err

    def test_failed_export_still_prints_the_program_output(
        self, programs_dir: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unwritable --chrome path does not lose the run: output and other exports happen."""
        d = programs_dir
        code, out, _err = _cli(
            ["run", f"{d}/ok.harn", "--chrome", f"{d}/no/t.json", "--json", f"{d}/t.json"], capsys
        )
        assert code == 1
        assert out == "[harn] hi\n"
        assert (d / "t.json").read_text().startswith("[")

    def test_deeply_nested_program_gets_an_error_not_a_traceback(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`harn-trace run` on nested parens: 200 levels run; 3000 give a located error."""
        for depth, expected_code in ((200, 0), (3000, 1)):
            (tmp_path / "deep.harn").write_text(
                "pipeline main() {\n  log(" + "(" * depth + "1" + ")" * depth + ")\n}\n"
            )
            code, out, err = _cli(["run", str(tmp_path / "deep.harn")], capsys)
            assert code == expected_code
            if expected_code:
                assert "deep.harn:2:" in err
                assert "nested too deeply" in err
                assert "Traceback" not in err
            else:
                assert out == "[harn] 1\n"
