"""Builtin functions and the list/string/dict methods."""

# One line per VM test is the house style (STYLE.md, byterun notes).
# ruff: noqa: E501

from __future__ import annotations

import pytest
from vm_harness import assert_error, assert_runs

from vm_demo.bytecode import Op, disassemble
from vm_demo.compiler import compile_source


class TestListMethods:
    def test_properties(self) -> None:
        """count, first, last, empty."""
        assert_runs(
            "let l = [1, 2, 3]\nprintln(l.count, l.first, l.last, l.empty, [].empty)",
            "3 1 3 false true\n",
        )

    def test_push_returns_new_list(self) -> None:
        """push leaves the original untouched."""
        assert_runs("let a = [1]\nlet b = a.push(2)\nprintln(a, b)", "[1] [1, 2]\n")

    def test_higher_order(self) -> None:
        """map, filter, reduce, find, any, all, flat_map."""
        assert_runs(
            "let n = [1, 2, 3, 4, 5]\nprintln(n.map({ x -> x * 2 }), n.filter({ x -> x > 3 }), n.reduce(0, { a, x -> a + x }), n.find({ x -> x == 3 }), n.any({ x -> x > 4 }), n.all({ x -> x > 0 }), [1, 2].flat_map({ x -> [x, x] }))",
            "[2, 4, 6, 8, 10] [4, 5] 15 3 true true [1, 1, 2, 2]\n",
        )

    def test_sort(self) -> None:
        """sort with and without a key."""
        assert_runs(
            'println([3, 1, 2].sort(), ["bb", "a", "ccc"].sort({ s -> s.count }))',
            "[1, 2, 3] [a, bb, ccc]\n",
        )

    def test_join_contains_index_reverse(self) -> None:
        """join, contains, index_of, reverse."""
        assert_runs(
            'println([1, 2].join(", "), [1, 2].contains(2), ["a", "b"].index_of("b"), [1, 2].reverse())',
            "1, 2 true 1 [2, 1]\n",
        )

    def test_enumerate_zip(self) -> None:
        """enumerate yields {index, value}; zip yields pairs."""
        assert_runs(
            'for {index, value} in ["a", "b"].enumerate() { println(index, value) }\nprintln([1, 2].zip(["x", "y"]))',
            "0 a\n1 b\n[[1, x], [2, y]]\n",
        )

    def test_sum_min_max_unique(self) -> None:
        """Aggregates."""
        assert_runs(
            "println([3, 1, 3].sum(), [3, 1].min(), [3, 1].max(), [3, 1, 3].unique())",
            "7 1 3 [3, 1]\n",
        )


class TestStringMethods:
    def test_common(self) -> None:
        """The documented string methods."""
        assert_runs(
            'let s = "hello"\nprintln(s.count, s.empty, s.contains("ell"), s.replace("l", "r"), s.starts_with("he"), s.ends_with("lo"), s.uppercase(), s.substring(1, 3))',
            "5 false true herro true true HELLO el\n",
        )

    def test_split_and_trim(self) -> None:
        """split and trim."""
        assert_runs(
            'println("a,b,c".split(","), "  x  ".trim(), "a\\nb".lines())',
            "[a, b, c] x [a, b]\n",
        )


class TestDictMethods:
    def test_keys_values_entries(self) -> None:
        """keys/values/entries are sorted by key."""
        assert_runs(
            'let d = {name: "A", age: 30}\nprintln(d.keys(), d.values(), d.entries()[0])',
            "[age, name] [30, A] {key: age, value: 30}\n",
        )

    def test_has_get_merge(self) -> None:
        """has, get with a default, merge."""
        assert_runs(
            'let d = {a: 1}\nprintln(d.has("a"), d.get("b", 0), d.merge({b: 2}))',
            "true 0 {a: 1, b: 2}\n",
        )

    def test_map_values_filter(self) -> None:
        """map_values and filter on values."""
        assert_runs(
            'println({a: 1, b: 2}.map_values({ v -> v * 10 }), {a: 1, b: "x"}.filter({ v -> type_of(v) == "int" }))',
            "{a: 10, b: 20} {a: 1}\n",
        )

    def test_callable_field(self) -> None:
        """A closure stored in a dict is callable as a method."""
        assert_runs('let o = {greet: { n -> "hi " + n }}\nprintln(o.greet("x"))', "hi x\n")


class TestFunctions:
    def test_sets(self) -> None:
        """Set builtins."""
        assert_runs(
            "let a = set(1, 2, 3)\nlet b = set(3, 4)\nprintln(set_contains(a, 2), set_union(a, b), set_intersect(a, b), set_difference(a, b), set_add(a, 9), set_remove(a, 1), to_list(b))",
            "true set(1, 2, 3, 4) set(3) set(1, 2) set(1, 2, 3, 9) set(2, 3) [3, 4]\n",
        )

    def test_json_round_trip(self) -> None:
        """json_stringify sorts keys; json_parse reads it back."""
        assert_runs(
            "let s = json_stringify({b: [1, nil], a: true})\nprintln(s, json_parse(s).b)",
            '{"a":true,"b":[1,null]} [1, nil]\n',
        )

    def test_format(self) -> None:
        """Positional and named placeholders."""
        assert_runs(
            'println(format("{} + {}", 1, 2), format("hi {name}", {name: "A"}))', "1 + 2 hi A\n"
        )

    def test_conversions(self) -> None:
        """to_string, to_int, to_float, len."""
        assert_runs(
            'println(to_string(5) + "!", to_int("42"), to_int("x"), to_float("1.5"), len([1, 2]))',
            "5! 42 nil 1.5 2\n",
        )

    def test_math(self) -> None:
        """abs, min, max, floor, ceil, round, sqrt, pi."""
        assert_runs(
            "println(abs(-2), min(3, 1), max([1, 9]), floor(1.7), ceil(1.2), round(2.5), sqrt(16), pi > 3)",
            "2 1 9 1 2 3 4.0 true\n",
        )

    def test_builtin_type_errors(self) -> None:
        """Builtins check argument types."""
        assert_error("set_union(1, 2)", "set_union() expected a set, got int (1)")


class TestDisassembler:
    def test_lists_ops_with_names_and_lines(self) -> None:
        """disassemble() shows ops, slot names and nested code objects."""
        text = disassemble(
            compile_source("fn add(a, b) {\n  return a + b\n}\nprintln(add(1, 2))", "d.harn")
        )
        assert "== <module> (d.harn)" in text
        assert "== add (d.harn) slots=2 ==" in text
        assert "LOAD_LOCAL             0 (a)" in text
        assert "ADD" in text

    def test_assert_runs_prints_disassembly_on_failure(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A failing assert_runs shows the bytecode of the snippet."""
        with pytest.raises(AssertionError):
            assert_runs("println(1)", "2\n")
        assert "LOAD_GLOBAL" in capsys.readouterr().out

    def test_every_op_has_a_handler(self) -> None:
        """The dispatch table covers every opcode."""
        from vm_demo.handlers import TABLE

        assert [op.name for op in Op if TABLE[op].__name__ == "bad"] == []
