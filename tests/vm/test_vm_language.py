"""One-line tests for every language construct of the Harn subset."""

# One line per VM test is the house style (STYLE.md, byterun notes), so long
# lines are expected here.
# ruff: noqa: E501

from __future__ import annotations

from vm_harness import assert_runs


class TestValues:
    def test_println_int(self) -> None:
        """println prints a value and a newline."""
        assert_runs("println(42)", "42\n")

    def test_log_prefix(self) -> None:
        """log prefixes its line with [harn]."""
        assert_runs('log("hi")', "[harn] hi\n")

    def test_float_and_bool_and_nil(self) -> None:
        """Floats, bools and nil print in Harn form."""
        assert_runs("println(1.5, true, false, nil)", "1.5 true false nil\n")

    def test_string_escapes(self) -> None:
        """Escape sequences decode."""
        assert_runs('println("a\\tb\\\\c\\"d\\$")', 'a\tb\\c"d$\n')

    def test_interpolation(self) -> None:
        """${} evaluates any expression."""
        assert_runs('let n = "w"\nprintln("hi ${n}! ${1 + 2}")', "hi w! 3\n")

    def test_nested_interpolation_with_string(self) -> None:
        """Strings inside ${} are allowed."""
        assert_runs('println("x${"-" + "y"}z")', "x-yz\n")

    def test_raw_string(self) -> None:
        """r"..." takes backslashes literally."""
        assert_runs('println(r"\\d+")', "\\d+\n")

    def test_multiline_string_dedent(self) -> None:
        """Triple-quoted strings strip common indentation."""
        assert_runs('let s = """\n  a\n    b\n"""\nprintln(s)', "a\n  b\n")

    def test_list_display(self) -> None:
        """Strings inside lists print bare, as Harn prints them."""
        assert_runs('println([1, "a", [nil]])', "[1, a, [nil]]\n")

    def test_dict_display_sorted(self) -> None:
        """Dicts print with keys in sorted order."""
        assert_runs('println({b: 1, a: "x"})', "{a: x, b: 1}\n")

    def test_duration_literals(self) -> None:
        """Duration literals are milliseconds."""
        assert_runs("println(25ms, 5s, 2m, 1h, 5s + 1)", "25ms 5s 2m 1h 5001\n")

    def test_set(self) -> None:
        """set() deduplicates."""
        assert_runs("println(set(1, 2, 2, 3))", "set(1, 2, 3)\n")

    def test_type_of(self) -> None:
        """type_of names every value type."""
        assert_runs(
            'println([1, 1.0, "s", true, nil, [], {}, 5s, set(), { -> 1 }].map(type_of))',
            "[int, float, string, bool, nil, list, dict, duration, set, closure]\n",
        )


class TestOperators:
    def test_precedence(self) -> None:
        """* binds tighter than +."""
        assert_runs("println(1 + 2 * 3 - 4)", "3\n")

    def test_integer_division_truncates(self) -> None:
        """int / int truncates toward zero."""
        assert_runs("println(7 / 2, -7 / 2, 7 % 3, -7 % 3)", "3 -3 1 -1\n")

    def test_float_division(self) -> None:
        """A float operand gives float division."""
        assert_runs("println(7 / 2.0)", "3.5\n")

    def test_division_by_zero_is_nil(self) -> None:
        """Division by zero yields nil."""
        assert_runs("println(1 / 0)", "nil\n")

    def test_comparison(self) -> None:
        """Comparisons of ints and strings."""
        assert_runs(
            'println(1 < 2, 2 <= 1, "a" < "b", 3 == 3.0, 1 != 2)', "true false true true true\n"
        )

    def test_bool_is_not_int(self) -> None:
        """true does not equal 1."""
        assert_runs("println(true == 1)", "false\n")

    def test_logical_short_circuit(self) -> None:
        """&& and || short-circuit and return an operand."""
        assert_runs("println(false && x, true || x, nil || 3, 1 && 2)", "false true 3 2\n")

    def test_not_and_negate(self) -> None:
        """! and unary minus."""
        assert_runs("let x = 3\nprintln(!true, -x, !nil)", "false -3 true\n")

    def test_nil_coalescing(self) -> None:
        """?? picks the right side only for nil."""
        assert_runs('println(nil ?? "d", 0 ?? "d")', "d 0\n")

    def test_in_and_not_in(self) -> None:
        """in / not in for lists, strings, dicts and sets."""
        assert_runs(
            'println(2 in [1, 2], "ell" in "hello", "a" in {a: 1}, 5 not in set(1), 1 not in [1])',
            "true true true true false\n",
        )

    def test_string_and_list_concat(self) -> None:
        """+ concatenates strings and lists."""
        assert_runs('println("a" + "b", [1] + [2])', "ab [1, 2]\n")

    def test_ternary(self) -> None:
        """cond ? a : b."""
        assert_runs('println(1 > 2 ? "y" : "n")', "n\n")

    def test_pipe(self) -> None:
        """|> passes the left side to the right."""
        assert_runs("println([3, 1] |> len)", "2\n")

    def test_range_inclusive_and_exclusive(self) -> None:
        """`to` is inclusive unless marked exclusive."""
        assert_runs("println(1 to 3, 0 to 3 exclusive, range(2))", "[1, 2, 3] [0, 1, 2] [0, 1]\n")

    def test_multiline_continuation(self) -> None:
        """A leading operator or dot continues the previous line."""
        assert_runs(
            'let s = "a"\n  + "b"\nprintln([1, 2]\n  .map({ x -> x * 2 })\n  .count)', "2\n"
        )


class TestVariables:
    def test_let_and_var(self) -> None:
        """var bindings can be reassigned."""
        assert_runs("var x = 1\nx = x + 1\nprintln(x)", "2\n")

    def test_compound_assignment(self) -> None:
        """+= and friends."""
        assert_runs("var x = 10\nx += 5\nx -= 1\nx *= 2\nx /= 4\nprintln(x)", "7\n")

    def test_block_scope_shadowing(self) -> None:
        """Inner blocks shadow without touching the outer binding."""
        assert_runs(
            'let s = "outer"\nif true { let s = "inner"\nprintln(s) }\nprintln(s)', "inner\nouter\n"
        )

    def test_subscripts(self) -> None:
        """Index lists (negative too), strings and dicts."""
        assert_runs('let l = [1, 2, 3]\nprintln(l[0], l[-1], "abc"[1], {a: 5}["a"])', "1 3 b 5\n")

    def test_slices(self) -> None:
        """[a:b] slices lists and strings."""
        assert_runs('println([1, 2, 3, 4][1:3], "hello"[:2], "hello"[-3:])', "[2, 3] he llo\n")

    def test_index_assignment(self) -> None:
        """Assign into lists and dicts."""
        assert_runs(
            'var l = [1, 2]\nl[0] = 9\nvar d = {}\nd.a = 1\nd["b"] = 2\nprintln(l, d)',
            "[9, 2] {a: 1, b: 2}\n",
        )

    def test_field_access_and_missing(self) -> None:
        """.field reads dict keys; missing keys are nil."""
        assert_runs("let d = {a: 1}\nprintln(d.a, d.missing)", "1 nil\n")

    def test_optional_chaining(self) -> None:
        """?. returns nil on a nil receiver."""
        assert_runs("let u = nil\nprintln(u?.name, u?.greet(1))", "nil nil\n")

    def test_list_destructuring(self) -> None:
        """let [a, ...rest] = list."""
        assert_runs("let [a, _, ...rest] = [1, 2, 3, 4]\nprintln(a, rest)", "1 [3, 4]\n")

    def test_dict_destructuring_with_rename(self) -> None:
        """let {a, b: c} = dict."""
        assert_runs("let {a, b: c} = {a: 1, b: 2}\nprintln(a, c)", "1 2\n")


class TestControlFlow:
    def test_if_else_chain(self) -> None:
        """else if chains pick the first true branch."""
        assert_runs(
            'let s = 85\nif s > 90 { println("A") } else if s > 80 { println("B") } else { println("C") }',
            "B\n",
        )

    def test_if_expression(self) -> None:
        """if/else is an expression."""
        assert_runs('let g = if 3 > 2 { "yes" } else { "no" }\nprintln(g)', "yes\n")

    def test_for_over_list(self) -> None:
        """for x in list."""
        assert_runs("for x in [1, 2] { println(x) }", "1\n2\n")

    def test_for_over_dict_entries(self) -> None:
        """Dict iteration yields sorted {key, value} entries."""
        assert_runs('for {key, value} in {b: 2, a: 1} { println("${key}=${value}") }', "a=1\nb=2\n")

    def test_while_break_continue(self) -> None:
        """break and continue inside while."""
        assert_runs(
            "var i = 0\nwhile true { i += 1\nif i == 2 { continue }\nif i > 3 { break }\nprintln(i) }",
            "1\n3\n",
        )

    def test_break_in_for(self) -> None:
        """break leaves a for loop."""
        assert_runs(
            'for x in [1, 2, 3] { if x == 2 { break }\nprintln(x) }\nprintln("done")', "1\ndone\n"
        )

    def test_nested_loops_continue(self) -> None:
        """continue applies to the innermost loop."""
        assert_runs(
            "for a in [1, 2] { for b in [1, 2] { if b == 1 { continue }\nprintln(a * 10 + b) } }",
            "12\n22\n",
        )


class TestFunctions:
    def test_fn_and_return(self) -> None:
        """Named functions with return."""
        assert_runs("fn add(a, b) { return a + b }\nprintln(add(2, 3))", "5\n")

    def test_implicit_tail_value(self) -> None:
        """A function returns its last expression."""
        assert_runs("fn sq(x) { x * x }\nprintln(sq(4))", "16\n")

    def test_recursion(self) -> None:
        """Recursive fib."""
        assert_runs(
            "fn fib(n) { if n < 2 { return n }\nreturn fib(n - 1) + fib(n - 2) }\nprintln(fib(20))",
            "6765\n",
        )

    def test_hoisting(self) -> None:
        """Top-level fns can be called before their declaration."""
        assert_runs("println(later())\nfn later() { 7 }", "7\n")

    def test_closure_arrow(self) -> None:
        """{ a, b -> a + b }."""
        assert_runs("let add = { a, b -> a + b }\nprintln(add(2, 3))", "5\n")

    def test_fn_expression(self) -> None:
        """fn(x) { } as a value."""
        assert_runs("let f = fn(x) { return x + 1 }\nprintln(f(1))", "2\n")

    def test_closure_captures_and_mutates(self) -> None:
        """Closures share captured var bindings."""
        assert_runs("var n = 0\nlet inc = { -> n = n + 1 }\ninc()\ninc()\nprintln(n)", "2\n")

    def test_counter_factory(self) -> None:
        """Each closure gets its own captured cell."""
        assert_runs(
            "fn counter() { var c = 0\nreturn { -> c += 1\nc } }\nlet a = counter()\nlet b = counter()\na()\nprintln(a(), b())",
            "2 1\n",
        )

    def test_loop_closures_capture_per_iteration(self) -> None:
        """Closures made in a loop capture that iteration's variable."""
        assert_runs(
            "var fs = []\nfor i in [1, 2, 3] { fs = fs.push({ -> i }) }\nprintln(fs.map({ f -> f() }))",
            "[1, 2, 3]\n",
        )

    def test_nested_closure_capture(self) -> None:
        """Free variables pass through intermediate closures."""
        assert_runs(
            "fn outer() { let x = 5\nreturn { -> { -> x * 2 } } }\nprintln(outer()()())", "10\n"
        )

    def test_local_recursive_fn(self) -> None:
        """A fn declared in a body can call itself."""
        assert_runs(
            "pipeline default() { fn f(n) { if n == 0 { return 0 }\nreturn n + f(n - 1) }\nprintln(f(4)) }",
            "10\n",
        )

    def test_rest_parameters(self) -> None:
        """...rest collects extra arguments."""
        assert_runs(
            "fn sum(...ns) { return ns.reduce(0, { a, b -> a + b }) }\nprintln(sum(1, 2, 3), sum())",
            "6 0\n",
        )

    def test_type_annotations_ignored(self) -> None:
        """Type annotations parse and are ignored."""
        assert_runs(
            "fn add(a: int, b: int) -> int { return a + b }\nlet x: list<int> = [add(1, 2)]\nprintln(x)",
            "[3]\n",
        )


class TestPipelines:
    def test_default_pipeline_runs(self) -> None:
        """pipeline default is the entry point."""
        assert_runs(
            'pipeline other() { println("no") }\npipeline default(task) { println("yes") }', "yes\n"
        )

    def test_first_pipeline_when_no_default(self) -> None:
        """Without default, the first pipeline runs."""
        assert_runs('pipeline first() { println("1") }\npipeline second() { println("2") }', "1\n")

    def test_pipeline_can_call_fns(self) -> None:
        """Top-level fns are visible in the pipeline."""
        assert_runs(
            'fn greet(n) { "hi " + n }\npipeline main(task) { println(greet("x")) }', "hi x\n"
        )


class TestErrorsHandled:
    def test_try_catch_binds_thrown_value(self) -> None:
        """catch (e) binds the thrown value itself."""
        assert_runs("try { throw {code: 404} } catch (e) { println(e.code) }", "404\n")

    def test_catch_without_binding(self) -> None:
        """catch without (e)."""
        assert_runs('try { throw "x" } catch { println("caught") }', "caught\n")

    def test_finally_runs_on_success_and_error(self) -> None:
        """finally runs on both paths."""
        assert_runs(
            'try { println("a") } catch (e) { } finally { println("f1") }\ntry { throw 1 } catch (e) { println("c") } finally { println("f2") }',
            "a\nf1\nc\nf2\n",
        )

    def test_finally_on_return(self) -> None:
        """return crosses finally and still runs it."""
        assert_runs(
            'fn f() { try { return 1 } finally { println("fin") } }\nprintln(f())', "fin\n1\n"
        )

    def test_finally_on_break(self) -> None:
        """break crosses finally and still runs it."""
        assert_runs(
            'for x in [1, 2] { try { break } finally { println("fin") } }\nprintln("out")',
            "fin\nout\n",
        )

    def test_try_finally_propagates(self) -> None:
        """try/finally without catch re-raises after finally."""
        assert_runs(
            'try { try { throw "in" } finally { println("f") } } catch (e) { println("got ${e}") }',
            "f\ngot in\n",
        )

    def test_error_in_catch_runs_finally(self) -> None:
        """A throw inside catch still runs finally, then propagates."""
        assert_runs(
            'try { try { throw 1 } catch (e) { throw 2 } finally { println("f") } } catch (e) { println(e) }',
            "f\n2\n",
        )

    def test_internal_error_is_catchable_as_string(self) -> None:
        """Runtime errors are caught as their message."""
        assert_runs("try { let x = nil\nx.y } catch (e) { println(type_of(e)) }", "string\n")

    def test_error_crosses_function_frames(self) -> None:
        """A throw in a callee is caught by the caller."""
        assert_runs(
            'fn bad() { throw "deep" }\nfn mid() { bad() }\ntry { mid() } catch (e) { println(e) }',
            "deep\n",
        )

    def test_try_catch_expression(self) -> None:
        """try/catch yields a value."""
        assert_runs('let v = try { throw "x" } catch (e) { "fallback" }\nprintln(v)', "fallback\n")

    def test_bare_try_is_result(self) -> None:
        """A bare try wraps the outcome in a Result."""
        assert_runs('println(try { 1 }, try { throw "no" })', "Result.Ok(1) Result.Err(no)\n")

    def test_results(self) -> None:
        """Ok/Err helpers."""
        assert_runs(
            'let r = Ok(2)\nprintln(is_ok(r), is_err(Err(1)), unwrap(r), unwrap_or(Err(1), 9), unwrap_err(Err("e")))',
            "true true 2 9 e\n",
        )


class TestImports:
    def test_import_all(self, tmp_path: object) -> None:
        """import "lib" brings in top-level fns (relative to the importer)."""
        import os
        import pathlib

        d = pathlib.Path(str(tmp_path))
        (d / "lib.harn").write_text('fn twice(x) { x * 2 }\nlet NAME = "lib"\n')
        (d / "main.harn").write_text(
            'import "lib"\nimport { twice } from "lib.harn"\nprintln(twice(4), NAME)\n'
        )
        import asyncio
        import io

        from vm_demo.runtime import VM

        out = io.StringIO()
        asyncio.run(VM(stdout=out).run_file(os.path.join(d, "main.harn")))
        assert out.getvalue() == "8 lib\n"
