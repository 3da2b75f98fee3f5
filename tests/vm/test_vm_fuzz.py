"""No Python traceback reaches the user from the new syntax either.

Token soups built from the constructs added for issue 21 (match, structs,
enums, impl, generics, defaults, spreads, `?`, generators, guard/retry/
defer/mutex...) must compile or fail with a located `HarnSyntaxError`; the
ones that compile must run to completion or fail with a `HarnRuntimeError`.
"""

from __future__ import annotations

import io
import signal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harn_async_trace import MockClock, SpanCollector, use_collector
from harn_async_trace.loop import run as loop_run
from vm_demo.compiler import compile_source
from vm_demo.errors import HarnRuntimeError, HarnSyntaxError
from vm_demo.runtime import VM

FUZZ = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

TOKENS = (
    "match", "struct", "enum", "impl", "interface", "type", "guard", "else", "require", "retry",
    "defer", "mutex", "yield", "fn", "let", "var", "for", "in", "if", "return", "throw", "try",
    "catch", "finally", "Point", "Shape", "Ok", "Err", "Result", "x", "y", "_", "self", "T",
    "where", "as", "stream", "parallel", "each", "spawn", "(", ")", "{", "}", "[", "]", "<", ">",
    ",", ":", ".", "?.", "?", "|", "|>", "->", "=", "...", "**", "??", "+", "*", "==", "1",
    "2.0", '"s"', "nil", "true", "\n", ";",
)  # fmt: skip

SNIPPETS = (
    "struct P { x: int }\n",
    "enum E { A, B(v) }\n",
    "impl P { fn m(self) { self.x } }\n",
    "fn g() { yield 1 }\n",
    "fn f(a = 1, ...r) { a }\n",
    "let p = P { x: 1 }\n",
    "match 1 { 1 -> { 2 } _ -> { 3 } }\n",
    "for (a, b) in {k: 1}.iter() { a }\n",
    "[1, 2].iter().map({ v -> v }).to_list()\n",
)


class _Slow(BaseException):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Slow


def _verdict(source: str) -> None:
    """Compile, then run what compiles: only Harn errors (or a timeout) may come out."""
    error: HarnSyntaxError | None = None
    try:
        code = compile_source(source, "fuzz.harn")
    except HarnSyntaxError as e:
        error = e
    if error is not None:
        assert error.loc.file == "fuzz.harn"
        assert error.render().startswith("error: ")
        return

    async def main() -> None:
        with use_collector(SpanCollector(enabled=True)):
            await VM(stdout=io.StringIO()).run_code(code)

    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(2)
    try:
        loop_run(main(), clock=MockClock())
    except (HarnRuntimeError, _Slow):
        pass
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.sampled_from(("", " ", "\n")))
def test_new_syntax_token_soup(tokens: list[str], sep: str) -> None:
    """Random sequences of the new syntax's tokens: located errors, never a Python exception."""
    _verdict(sep.join(tokens))


@FUZZ
@given(
    st.lists(st.sampled_from(SNIPPETS), min_size=1, max_size=4),
    st.lists(st.sampled_from(TOKENS), max_size=12),
)
def test_valid_snippets_with_noise(snippets: list[str], noise: list[str]) -> None:
    """Valid declarations followed by noise: compile errors are located, runs end in Harn errors."""
    _verdict("".join(snippets) + " ".join(noise))


@pytest.mark.parametrize(
    "source",
    [
        "match",
        "match x {",
        "match 1 { 1 -> }",
        "struct",
        "struct P {",
        "struct P { x }",
        "enum E { A(",
        "impl",
        "impl P { let x = 1 }",
        "fn f<T(x) {}",
        "fn f(a = ) {}",
        "fn f(...a = 1) {}",
        "type X =",
        "let {a = } = {}",
        "for (a, in [1] {}",
        "x?",
        "1 |> _",
        "yield 1",
        "pipeline default() { yield 1 }",
        "match 1 { 1 | y -> { 1 } }",
        "[...1]",
        "f(...)",
        "P { x: 1 } { y }",
        "guard 1 else",
        "retry { ",
        "defer",
        "mutex",
        "catch (e: ) {}",
        "try {} catch (e: ) {}",
        "interface I { let x }",
    ],
)
def test_malformed_new_syntax_is_a_harn_error(source: str) -> None:
    """Each half-written new construct gives a Harn error with a position, never a traceback."""
    _verdict(source)
