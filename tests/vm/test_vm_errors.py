"""Error paths: syntax errors with line:col and runtime errors with messages."""

from __future__ import annotations

from vm_harness import assert_error, assert_runs

from vm_demo.errors import HarnRuntimeError, HarnSyntaxError


class TestSyntaxErrors:
    def test_unexpected_token_position(self) -> None:
        """A stray token names its line and column."""
        err = assert_error("let x = 1\nlet y = * 2", "unexpected '*'", line=2)
        assert isinstance(err, HarnSyntaxError)
        assert err.loc.col == 9

    def test_caret_rendering(self) -> None:
        """render() shows the source line and a caret under the column."""
        err = assert_error("let y = )", "unexpected ')'")
        assert isinstance(err, HarnSyntaxError)
        assert err.render().splitlines()[-1] == "  |         ^"

    def test_unterminated_string(self) -> None:
        """An unterminated string is reported where it starts."""
        assert_error('let s = "abc', "unterminated string literal", line=1)

    def test_missing_brace(self) -> None:
        """A missing } is reported at end of file."""
        assert_error("fn f() {\n  1\n", "expected '}' before end of file")

    def test_immutable_assignment(self) -> None:
        """Assigning a let binding is a compile error."""
        assert_error(
            'let name = "a"\nname = "b"', "cannot assign to immutable binding 'name'", line=2
        )

    def test_break_outside_loop(self) -> None:
        """break outside a loop is rejected."""
        assert_error("break", "'break' outside of a loop", line=1)

    def test_unknown_decorator(self) -> None:
        """Only @step is a known decorator."""
        assert_error("@cache\nfn f() { 1 }", "unknown decorator '@cache'")

    def test_unterminated_interpolation_at_eof(self) -> None:
        """`"${` at end of input is a syntax error, not a crash."""
        assert_error('"${', "unterminated ${ in string", line=1)

    def test_unclosed_decorator_arguments(self) -> None:
        """An unclosed decorator argument list fails instead of looping forever."""
        assert_error("@step(a", "expected ')' to close the decorator arguments")

    def test_non_ascii_digit(self) -> None:
        """Superscript digits are rejected as characters, not crash int()."""
        assert_error("let x = 1²", "unexpected character '²'", line=1)

    def test_deep_nesting_compiles(self) -> None:
        """Hundreds of nested blocks compile (the recursion limit is raised)."""
        depth = 400
        assert_runs("if true {\n" * depth + "println(1)\n" + "}\n" * depth, "1\n")

    def test_absurd_nesting_is_a_syntax_error(self) -> None:
        """Nesting past what the parser can recurse is a located syntax error."""
        assert_error("x = " + "(" * 3000 + "1" + ")" * 3000, "program is nested too deeply", line=1)

    def test_bad_character(self) -> None:
        """Unknown characters are lexing errors."""
        assert_error("let x = 1 # 2", "unexpected character '#'", line=1)


class TestRuntimeErrors:
    def test_undefined_variable(self) -> None:
        """Reading an unknown name fails with its name and line."""
        assert_error("println(1)\nprintln(nope)", "undefined variable 'nope'", line=2)

    def test_type_error_on_add(self) -> None:
        """Mismatched + operands are a TypeError."""
        assert_error('let x = "a" + 1', "TypeError: cannot apply '+' to string and int", line=1)

    def test_uncaught_throw(self) -> None:
        """An uncaught throw reports the thrown value."""
        err = assert_error('fn f() { throw "kaput" }\nf()', "error: kaput", line=1)
        assert isinstance(err, HarnRuntimeError)
        assert err.value == "kaput"

    def test_call_chain_notes(self) -> None:
        """The call chain is listed innermost first."""
        err = assert_error(
            "fn inner() { throw 1 }\nfn outer() { inner() }\nouter()",
            "called from outer at test.harn:2",
        )
        assert "called from <module> at test.harn:3" in err.render()

    def test_index_out_of_bounds(self) -> None:
        """List indexes are bounds-checked."""
        assert_error("let l = [1]\nl[3]", "index 3 out of bounds for list of length 1", line=2)

    def test_wrong_arity(self) -> None:
        """Calling a fn with the wrong number of arguments fails."""
        assert_error("fn f(a, b) { a }\nf(1)", "f expects 2 arguments, got 1", line=2)

    def test_not_callable(self) -> None:
        """Calling a non-function fails."""
        assert_error("let x = 3\nx(1)", "int 3 is not callable", line=2)

    def test_no_such_method(self) -> None:
        """Unknown methods name the receiver type."""
        assert_error("[1].frobnicate()", "list has no method 'frobnicate'")

    def test_assert_eq_message(self) -> None:
        """assert_eq shows both values."""
        assert_error('assert_eq([1], [2], "lists")', "assertion failed: [1] != [2]: lists")

    def test_assert(self) -> None:
        """assert fails with its message."""
        assert_error('assert(1 > 2, "math is broken")', "math is broken")

    def test_stack_overflow(self) -> None:
        """Unbounded recursion stops with a clear error, not a Python crash."""
        assert_error("fn f(n) { f(n + 1) }\nf(0)", "stack overflow")

    def test_missing_import(self) -> None:
        """Importing a missing file fails clearly."""
        assert_error('import "does_not_exist"', "cannot import 'does_not_exist'")
