"""One-line tests for the constructs of issue 21 and its "wrong today" list."""

# One line per VM test is the house style (STYLE.md, byterun notes), so long
# lines are expected here.
# ruff: noqa: E501

from __future__ import annotations

from vm_harness import assert_error, assert_runs


class TestWrongToday:
    def test_rest_param_with_one_argument_is_a_list(self) -> None:
        """A rest parameter given exactly one argument still collects it into a list."""
        assert_runs("fn f(...xs) { return xs }\nprintln(f(1), f(), f(1, 2))", "[1] [] [1, 2]\n")

    def test_set_of_lists_keeps_each_list(self) -> None:
        """Lists (and dicts) in a set are members by identity: no Python 'unhashable' leak."""
        assert_runs("println(len(set([[1], [1]])), len(set([{a: 1}, {a: 1}])))", "2 2\n")

    def test_typed_catch_lets_other_types_through(self) -> None:
        """`catch (e: string)` does not handle a thrown int; an outer catch does."""
        assert_runs(
            'try { try { throw 1 } catch (e: string) { println("wrong") } } catch (e) { println("outer", e) }',
            "outer 1\n",
        )

    def test_typed_catch_takes_its_type(self) -> None:
        """A typed catch runs for a value of its type (and of a union member)."""
        assert_runs('try { throw "x" } catch (e: int | string) { println("got", e) }', "got x\n")

    def test_optional_chain_on_a_non_dict_is_nil(self) -> None:
        """`42?.foo` is nil, as is an optional call of a missing method."""
        assert_runs("println(42?.foo, 42?.bar())", "nil nil\n")

    def test_int_times_string_repeats(self) -> None:
        """`4 * "xy"` repeats like `"xy" * 4`; a negative count gives ""."""
        assert_runs('println(4 * "xy", "ab" * 2, "[" + "x" * -1 + "]")', "xyxyxyxy abab []\n")

    def test_dict_get_without_key_is_nil(self) -> None:
        """`{a: 1}.get()` is nil, not an arity error."""
        assert_runs("println({a: 1}.get())", "nil\n")

    def test_send_on_closed_channel_is_false(self) -> None:
        """send() on a closed channel returns false instead of throwing."""
        assert_runs('let ch = channel("c", 1)\nclose_channel(ch)\nprintln(send(ch, 1))', "false\n")

    def test_ten_thousand_deep_tail_calls(self) -> None:
        """Recursion 10,000 deep works (frames are on the heap)."""
        assert_runs(
            "fn down(n) { if n == 0 { return 0 }\nreturn down(n - 1) }\nprintln(down(10000))", "0\n"
        )

    def test_deep_recursion_is_a_harn_error(self) -> None:
        """Runaway non-tail recursion is a Harn stack-overflow error, not a Python RecursionError."""
        assert_error("fn f(n) { return 1 + f(n + 1) }\nf(0)", "stack overflow")

    def test_deep_callback_recursion_is_a_harn_error(self) -> None:
        """Recursion through builtin callbacks (Python-level nesting) is a Harn error too."""
        assert_error("fn f(n) { return [n].map({ x -> f(x + 1) }) }\nf(0)", "stack overflow")

    def test_settle_reports_thrown_string(self) -> None:
        """parallel settle reports a thrown string as `Thrown: boom`."""
        assert_runs(
            'let s = parallel settle [1, 2] { x -> if x == 2 { throw "boom" }\nx }\nprintln(unwrap_err(s.results[1]))',
            "Thrown: boom\n",
        )

    def test_atomic_add_returns_new_value(self) -> None:
        """atomic_add returns the new value; the atomic itself is shared and updated."""
        assert_runs("let c = atomic(1)\nprintln(atomic_add(c, 5), atomic_get(c))", "6 6\n")

    def test_strings_print_bare_in_collections(self) -> None:
        """Strings inside lists and dicts print unquoted, as Harn prints them."""
        assert_runs('println(["a", "b"], {k: "v"}, Ok("x"))', "[a, b] {k: v} Result.Ok(x)\n")


class TestTypes:
    def test_union_annotations_and_aliases(self) -> None:
        """`A | B` annotations and `type` aliases parse and do not change behaviour."""
        assert_runs(
            'type Id = int | string\ntype V = "a" | "b"\nlet x: string | nil = nil\nfn f(a: Id) -> int | nil { return nil }\nprintln(x, f(1))',
            "nil nil\n",
        )

    def test_generic_fn_and_where_clause(self) -> None:
        """Generic parameters and `where` clauses are accepted."""
        assert_runs(
            "fn first<T>(xs: list<T>) -> T where T: Show { return xs[0] }\nprintln(first([4, 5]))",
            "4\n",
        )

    def test_interface_declaration(self) -> None:
        """An interface declares methods and is dropped at run time."""
        assert_runs(
            "interface Show {\n  fn show(self) -> string\n  type Item\n}\nprintln(1)", "1\n"
        )

    def test_primitive_param_type_enforced(self) -> None:
        """An annotated primitive parameter is checked when the function is called."""
        assert_error(
            'fn add(a: int, b: int) { return a + b }\nadd("x", 1)',
            "TypeError: parameter 'a' expected int, got string (x)",
        )

    def test_int_and_float_params_accept_each_other(self) -> None:
        """int and float annotations are compatible."""
        assert_runs("fn half(x: float) { return x / 2 }\nprintln(half(3))", "1\n")


class TestMatch:
    def test_literals_guards_and_wildcard(self) -> None:
        """Arms are tried in order; a name binds, a guard filters, `_` matches anything."""
        assert_runs(
            'fn k(x) { return match x { 1 -> { "one" } n if n > 3 -> { "big ${n}" } _ -> { "other" } } }\nprintln(k(1), k(5), k(2))',
            "one big 5 other\n",
        )

    def test_or_patterns(self) -> None:
        """`a | b ->` matches either alternative."""
        assert_runs(
            'println(match "fail" { "pass" -> { "ok" } "fail" | "unclear" -> { "not ok" } })',
            "not ok\n",
        )

    def test_no_arm_is_an_error(self) -> None:
        """A match with no matching arm fails."""
        assert_error("match 3 { 1 -> { 1 } }", "no matching arm in match expression")

    def test_result_patterns(self) -> None:
        """`Result.Ok(v)` / `Err(e)` patterns destructure Results."""
        assert_runs(
            'fn show(r) { return match r { Result.Ok(v) -> { "ok ${v}" } Err(e) -> { "err ${e}" } } }\nprintln(show(Ok(1)), show(Err("x")))',
            "ok 1 err x\n",
        )

    def test_list_and_dict_patterns(self) -> None:
        """List and dict shapes match by content and bind their names."""
        assert_runs(
            'fn k(v) { return match v { [a, b] -> { a + b } {kind: "x", n: n} -> { n } _ -> { 0 } } }\nprintln(k([1, 2]), k({kind: "x", n: 7}), k(3))',
            "3 7 0\n",
        )

    def test_match_as_statement(self) -> None:
        """match works as a statement with block bodies."""
        assert_runs(
            'let s = "active"\nmatch s {\n  "active" -> { println("Running") }\n  "stopped" -> { println("Halted") }\n}',
            "Running\n",
        )


class TestStructsEnums:
    def test_struct_literal_and_methods(self) -> None:
        """Struct literals, field access, impl methods with self, and printing."""
        assert_runs(
            "struct P { x: int\n y: int }\nimpl P { fn sum(self) { return self.x + self.y }\nfn moved(self, d) { return P { x: self.x + d, y: self.y } } }\nlet p = P { x: 1, y: 2 }\nprintln(p.x, p.sum(), p.moved(10))",
            "1 3 P({x: 11, y: 2})\n",
        )

    def test_struct_constructor_call_and_equality(self) -> None:
        """`P({x: 1})` also constructs; instances compare by content."""
        assert_runs(
            "struct P { x: int }\nprintln(P({x: 1}) == P { x: 1 }, type_of(P { x: 1 }))",
            "true struct\n",
        )

    def test_struct_unknown_field(self) -> None:
        """An unknown field in a struct literal is an error naming it."""
        assert_error("struct P { x: int }\nP { y: 1 }", "struct P has no field 'y'")

    def test_enum_variants(self) -> None:
        """Enum variants with and without fields, .variant/.fields, printing and matching."""
        assert_runs(
            'enum S { Active\n Pending(reason) }\nlet s = S.Pending("wait")\nprintln(S.Active, s, s.variant, s.fields[0], match s { S.Pending(r) -> { r } S.Active -> { "a" } })',
            "S.Active S.Pending(wait) Pending wait wait\n",
        )

    def test_typed_catch_on_enum(self) -> None:
        """`catch (e: AppError)` catches a thrown enum value of that enum."""
        assert_runs(
            'enum AppError { NotFound(what) }\ntry { throw AppError.NotFound("u1") } catch (e: AppError) { println(e.variant, e.fields[0]) }',
            "NotFound u1\n",
        )


class TestFunctions:
    def test_default_params(self) -> None:
        """Defaults fill missing trailing arguments; an explicit nil is an argument."""
        assert_runs(
            'fn g(name, greeting = "hello") { return "${greeting}, ${name}" }\nprintln(g("w"), g("w", "hi"), g("w", nil))',
            "hello, w hi, w nil, w\n",
        )

    def test_closure_default_params(self) -> None:
        """Closures take defaults too."""
        assert_runs("let add = { x, y = 10 -> x + y }\nprintln(add(1), add(1, 2))", "11 3\n")

    def test_defaults_are_fresh_per_call(self) -> None:
        """A default expression is evaluated at each call."""
        assert_runs("fn f(xs = []) { return xs.push(1) }\nprintln(f(), f())", "[1] [1]\n")

    def test_spread_arguments_and_literals(self) -> None:
        """`...` spreads into calls, list literals and dict literals."""
        assert_runs(
            "fn add(a, b, c) { return a + b + c }\nprintln(add(...[1, 2, 3]), add(1, ...[2], 3), [0, ...[1]], {...{a: 1}, b: 2})",
            "6 6 [0, 1] {a: 1, b: 2}\n",
        )

    def test_try_operator(self) -> None:
        """`?` unwraps Ok and returns an Err from the enclosing function."""
        assert_runs(
            'fn d(a, b) { if b == 0 { return Err("div0") }\nreturn Ok(a / b) }\nfn c(x, y) { let r = d(x, y)?\nreturn Ok(r + 1) }\nprintln(c(4, 2), c(4, 0))',
            "Result.Ok(3) Result.Err(div0)\n",
        )


class TestControl:
    def test_guard(self) -> None:
        """guard runs its else block when the condition fails."""
        assert_runs(
            'fn f(x) { guard x > 0 else { return "neg" }\nreturn "pos" }\nprintln(f(1), f(-1))',
            "pos neg\n",
        )

    def test_require(self) -> None:
        """`require cond, msg` throws the message when cond is falsy."""
        assert_runs('try { require 1 > 2, "bad" } catch (e) { println(e) }', "bad\n")

    def test_retry(self) -> None:
        """retry runs the body until it succeeds, nil after the last failure."""
        assert_runs(
            'var n = 0\nlet v = retry 3 { n += 1\nif n < 2 { throw "again" }\nn }\nprintln(v, retry 2 { throw "x" })',
            "2 nil\n",
        )

    def test_defer_lifo_on_any_exit(self) -> None:
        """defer blocks run at scope exit, last first, on return and on throw."""
        assert_runs(
            'fn f() { defer { println("a") }\ndefer { println("b") }\nthrow "x" }\ntry { f() } catch (e) { println("caught", e) }',
            "b\na\ncaught x\n",
        )

    def test_for_tuple_pattern(self) -> None:
        """`for (k, v) in` destructures pairs (dict iters, zip)."""
        assert_runs("for (k, v) in {a: 1, b: 2}.iter() { println(k, v) }", "a 1\nb 2\n")

    def test_pattern_defaults_and_rest(self) -> None:
        """Destructuring defaults replace nil; `...rest` collects the other keys."""
        assert_runs(
            'let {name = "anon", ...rest} = {age: 3}\nlet [a = 0, b = 0, c = 9] = [1, 2]\nprintln(name, rest, a, b, c)',
            "anon {age: 3} 1 2 9\n",
        )

    def test_power_and_coalescing_precedence(self) -> None:
        """`**` is right-associative; `??` binds tighter than `+` and comparisons."""
        assert_runs("println(2 ** 3 ** 2, nil ?? 1 + 2, nil ?? 0 > -1)", "512 3 true\n")


class TestIterators:
    def test_lazy_chain(self) -> None:
        """iter() combinators run lazily until a sink drains them."""
        assert_runs(
            "println([1, 2, 3, 4, 5, 6].iter().filter({ x -> x % 2 == 0 }).map({ x -> x * 2 }).take(2).to_list())",
            "[4, 8]\n",
        )

    def test_to_list_on_ranges(self) -> None:
        """Ranges support .to_list() and .iter()."""
        assert_runs(
            "println((1 to 3).to_list(), (0 to 10).iter().skip(8).to_list())",
            "[1, 2, 3] [8, 9, 10]\n",
        )

    def test_laziness(self) -> None:
        """A combinator does no work until pulled, and stops pulling when done."""
        assert_runs(
            "var n = 0\nlet it = [1, 2, 3].iter().map({ x -> n += 1\nx })\nprintln(n, it)\nprintln(it.first(), n)",
            "0 <iter>\n1 1\n",
        )

    def test_sinks(self) -> None:
        """Sinks: count, sum, min, max, reduce, any, all, find, to_dict, enumerate."""
        assert_runs(
            'let xs = [3, 1, 2]\nprintln(xs.iter().count(), xs.iter().sum(), xs.iter().min(), xs.iter().max(), xs.iter().reduce(0, { a, b -> a + b }), xs.iter().any({ x -> x > 2 }), xs.iter().find({ x -> x < 3 }), {a: 1}.iter().to_dict(), ["x"].iter().enumerate().to_list())',
            "3 6 1 3 6 true 1 {a: 1} [(0, x)]\n",
        )

    def test_chunks_windows_chain_zip(self) -> None:
        """chunks, windows, chain and zip."""
        assert_runs(
            'let it = [1, 2, 3].iter()\nprintln([1, 2, 3].iter().chunks(2).to_list(), [1, 2, 3].iter().windows(2).to_list(), [1].iter().chain([2].iter()).to_list(), [1, 2].iter().zip(["a"].iter()).to_list())',
            "[[1, 2], [3]] [[1, 2], [2, 3]] [1, 2] [(1, a)]\n",
        )

    def test_generator(self) -> None:
        """A fn with yield is a generator: for loops and .next() pull from it."""
        assert_runs(
            "fn gen(n) { var i = 0\nwhile i < n { yield i\ni += 1 } }\nfor v in gen(2) { println(v) }\nlet g = gen(1)\nprintln(g.next(), g.next())",
            "0\n1\n{done: false, value: 0} {done: true, value: nil}\n",
        )

    def test_generator_with_iter(self) -> None:
        """Generators feed the lazy iterator protocol."""
        assert_runs(
            "fn nat() { var i = 0\nwhile true { yield i\ni += 1 } }\nprintln(nat().iter().map({ x -> x * x }).take(4).to_list())",
            "[0, 1, 4, 9]\n",
        )


class TestBuiltins:
    def test_free_string_functions(self) -> None:
        """split/replace/contains/lowercase also exist as free functions."""
        assert_runs(
            'println(split("a,b", ","), replace("aa", "a", "b"), contains("hey", "e"), contains([1], 2), lowercase("AB"), uppercase("ab"), trim(" x "))',
            "[a, b] bb true false ab AB x\n",
        )

    def test_schema_builtins(self) -> None:
        """schema_check/parse/is and json_validate follow the canonical schema format."""
        assert_runs(
            'let s = {type: "dict", required: ["n"], properties: {n: {type: "int", min: 0}, r: {type: "string", default: "u"}}}\nprintln(is_ok(schema_check({n: 1}, s)), schema_is({n: -1}, s), unwrap(schema_parse({n: 2}, s)).r, json_validate({n: 1}, s), unwrap_err(schema_check({}, s)).errors)',
            "true false u true [$.n: required field is missing]\n",
        )

    def test_json_extract(self) -> None:
        """json_extract strips code fences and finds JSON inside prose."""
        assert_runs(
            'println(json_extract("```json\\n{\\"a\\": 1}\\n```").a, json_extract("see [1, 2] here"), json_extract("x {\\"k\\": 5} y", "k"))',
            "1 [1, 2] 5\n",
        )

    def test_sync_primitives(self) -> None:
        """A semaphore grants up to its capacity; another acquire times out to nil."""
        assert_runs(
            'let a = sync_semaphore_acquire("k", 2, 2, 5ms)\nprintln(sync_semaphore_acquire("k", 2, 1, 5ms), sync_release(a), sync_release(a), sync_metrics("semaphore", "k").timeout_count)',
            "nil true false 1\n",
        )

    def test_mutex_block_serialises(self) -> None:
        """Only one task at a time runs a mutex block."""
        assert_runs(
            "var inside = 0\nvar most = 0\nparallel 4 { i ->\n  mutex {\n    inside += 1\n    most = max(most, inside)\n    sleep(1ms)\n    inside -= 1\n  }\n}\nprintln(most)",
            "1\n",
        )

    def test_supervisor_restarts(self) -> None:
        """A failing child is restarted up to max_restarts, then suppressed."""
        assert_runs(
            'let s = supervisor_start({name: "s", children: [{name: "c", restart: {mode: "on_failure", max_restarts: 2}, task: { ctx -> throw "x" }}]})\nsleep(5ms)\nprintln(supervisor_state(s).children[0].status, supervisor_metrics(s).restarted)',
            "suppressed 2\n",
        )
