"""JSON Pointer (RFC 6901) and a jq-like query subset: `json_pointer`,
`json_pointer_set`, `json_pointer_delete`, `jq`, `jq_first`.

The jq subset: identity `.`, fields `.a` / `."k"`, `.[n]`, `.[]`, `.[a:b]`,
`..`, pipes `|`, commas `,`, literals, `==` `!=` `<` `<=` `>` `>=`, `and`,
`or`, `not`, `length`, `keys`, `values`, `type`, `map(f)`, `select(f)`,
object construction `{a: f, b}` and parentheses. A query maps one input to
a stream of outputs; `jq` returns the stream as a list.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import sorted_keys
from vm_demo.operators import equal
from vm_demo.registry import arity, builtin, want

__all__ = ("Query",)

# -- JSON Pointer ------------------------------------------------------------------------------


def _tokens(ptr: str) -> list[str]:
    if ptr == "":
        return []
    if not ptr.startswith("/"):
        raise HarnRuntimeError(f"a JSON Pointer starts with '/', got {ptr!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in ptr[1:].split("/")]


def _step(v: Any, tok: str) -> Any:
    if isinstance(v, dict):
        return v.get(tok)
    if isinstance(v, list) and tok.isdigit() and int(tok) < len(v):
        return v[int(tok)]
    return None


@builtin("json_pointer")
def _json_pointer(vm: Any, args: list[Any]) -> Any:
    arity("json_pointer", args, 2)
    v = args[0]
    for tok in _tokens(want("json_pointer", args[1], str)):
        v = _step(v, tok)
        if v is None:
            return None
    return v


def _parent(root: Any, ptr: str, name: str) -> tuple[Any, str]:
    toks = _tokens(want(name, ptr, str))
    if not toks:
        raise HarnRuntimeError(f"{name}() needs a pointer below the root")
    parent = root
    for tok in toks[:-1]:
        parent = _step(parent, tok)
        if parent is None:
            raise HarnRuntimeError(f"{name}(): no value at {ptr!r}")
    return parent, toks[-1]


@builtin("json_pointer_set")
def _json_pointer_set(vm: Any, args: list[Any]) -> Any:
    arity("json_pointer_set", args, 3)
    root = copy.deepcopy(args[0])
    parent, last = _parent(root, args[1], "json_pointer_set")
    if isinstance(parent, dict):
        parent[last] = args[2]
    elif isinstance(parent, list) and last == "-":
        parent.append(args[2])
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        parent[int(last)] = args[2]
    else:
        raise HarnRuntimeError(f"json_pointer_set(): cannot set {args[1]!r}")
    return root


@builtin("json_pointer_delete")
def _json_pointer_delete(vm: Any, args: list[Any]) -> Any:
    arity("json_pointer_delete", args, 2)
    root = copy.deepcopy(args[0])
    try:
        parent, last = _parent(root, args[1], "json_pointer_delete")
    except HarnRuntimeError:
        return root  # a missing path leaves the value unchanged
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    return root


# -- jq ------------------------------------------------------------------------------------------

Query = Callable[[Any], list[Any]]
_TOKEN = re.compile(
    r'\s*(?:(\.\.)|("(?:[^"\\]|\\.)*")|(-?\d+(?:\.\d+)?)|(==|!=|<=|>=|[.|,()\[\]{}:<>])|([A-Za-z_]\w*))'
)


class _JqParser:
    def __init__(self, text: str) -> None:
        self.toks: list[str] = []
        pos = 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise HarnRuntimeError(f"jq: cannot read {text[pos:]!r}")
            self.toks.append(next(g for g in m.groups() if g is not None))
            pos = m.end()
        self.i = 0

    def peek(self) -> str | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, want_tok: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (want_tok is not None and tok != want_tok):
            raise HarnRuntimeError(f"jq: expected {want_tok or 'more'}, found {tok or 'the end'}")
        self.i += 1
        return tok

    def parse(self) -> Query:
        q = self.pipe()
        if self.peek() is not None:
            raise HarnRuntimeError(f"jq: unexpected {self.peek()!r}")
        return q

    def pipe(self) -> Query:
        left = self.comma()
        while self.peek() == "|":
            self.take()
            right, first = self.comma(), left
            left = _compose(first, right)
        return left

    def comma(self) -> Query:
        parts = [self.logic()]
        while self.peek() == ",":
            self.take()
            parts.append(self.logic())
        if len(parts) == 1:
            return parts[0]
        return lambda v: [x for p in parts for x in p(v)]

    def logic(self) -> Query:
        left = self.compare()
        while self.peek() in ("and", "or"):
            op = self.take()
            right, first = self.compare(), left
            if op == "and":
                left = _both(first, right, lambda a, b: _truthy(a) and _truthy(b))
            else:
                left = _both(first, right, lambda a, b: _truthy(a) or _truthy(b))
        return left

    def compare(self) -> Query:
        left = self.postfix()
        ops: dict[str, Callable[[Any, Any], bool]] = {
            "==": equal,
            "!=": lambda a, b: not equal(a, b),
            "<": lambda a, b: a < b,
            "<=": lambda a, b: a <= b,
            ">": lambda a, b: a > b,
            ">=": lambda a, b: a >= b,
        }
        tok = self.peek()
        if tok in ops:
            self.take()
            return _both(left, self.postfix(), ops[tok])
        return left

    def postfix(self) -> Query:
        q = self.primary()
        while True:
            tok = self.peek()
            if tok == "[":
                q = _compose(q, self.bracket())
            elif tok == "." and self.i + 1 < len(self.toks) and _is_name(self.toks[self.i + 1]):
                self.take()
                q = _compose(q, _field(self.take()))
            else:
                return q

    def bracket(self) -> Query:
        self.take("[")
        if self.peek() == "]":
            self.take()
            return _iterate
        start = self.take()
        if self.peek() == ":":
            self.take()
            end = self.take()
            self.take("]")
            return lambda v: [v[int(start) : int(end)]] if isinstance(v, list | str) else [None]
        self.take("]")
        if start.startswith('"'):
            return _field(start[1:-1])
        n = int(start)
        return lambda v: [v[n] if isinstance(v, list) and -len(v) <= n < len(v) else None]

    def primary(self) -> Query:
        tok = self.take()
        if tok == "..":
            return _recurse
        if tok == ".":
            nxt = self.peek()
            if nxt is not None and (_is_name(nxt) or nxt.startswith('"')):
                name = self.take()
                return _field(name.strip('"'))
            if nxt == "[":
                return self.bracket()
            return lambda v: [v]
        if tok == "(":
            q = self.pipe()
            self.take(")")
            return q
        if tok == "{":
            return self.object()
        if tok == "[":  # array construction: collect the inner stream
            if self.peek() == "]":
                self.take()
                return lambda v: [[]]
            inner = self.pipe()
            self.take("]")
            return lambda v: [inner(v)]
        if tok.startswith('"'):
            return _const(tok[1:-1])
        if re.fullmatch(r"-?\d+(\.\d+)?", tok):
            return _const(float(tok) if "." in tok else int(tok))
        return self.named(tok)

    def named(self, tok: str) -> Query:
        simple: dict[str, Query] = {
            "true": _const(True),
            "false": _const(False),
            "null": _const(None),
            "length": lambda v: [len(v) if v is not None else 0],
            "keys": lambda v: [sorted_keys(v) if isinstance(v, dict) else list(range(len(v)))],
            "values": lambda v: [
                [v[k] for k in sorted_keys(v)] if isinstance(v, dict) else list(v)
            ],
            "type": lambda v: [_jq_type(v)],
            "not": lambda v: [not _truthy(v)],
        }
        if tok in simple:
            return simple[tok]
        if tok in ("map", "select"):
            self.take("(")
            inner = self.pipe()
            self.take(")")
            if tok == "map":
                return lambda v: [[y for x in (v or []) for y in inner(x)]]
            return lambda v: [v] if any(_truthy(r) for r in inner(v)) else []
        raise HarnRuntimeError(f"jq: unknown function {tok!r}")

    def object(self) -> Query:
        entries: list[tuple[str, Query]] = []
        while self.peek() != "}":
            key = self.take().strip('"')
            if self.peek() == ":":
                self.take()
                value = self.logic()
                while self.peek() == "|":  # `{n: .xs | length}`: a pipe, but no comma
                    self.take()
                    value = _compose(value, self.logic())
                entries.append((key, value))
            else:
                entries.append((key, _field(key)))
            if self.peek() == ",":
                self.take()
        self.take("}")

        def build(v: Any) -> list[Any]:
            out: dict[str, Any] = {}
            for key, q in entries:
                got = q(v)
                out[key] = got[0] if got else None
            return [out]

        return build


def _is_name(tok: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_]\w*", tok))


def _truthy(v: Any) -> bool:
    return v is not None and v is not False


def _jq_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    names: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return names.get(type(v), "unknown")


def _const(c: Any) -> Query:
    return lambda v: [c]


def _field(name: str) -> Query:
    return lambda v: [v.get(name) if isinstance(v, dict) else None]


def _iterate(v: Any) -> list[Any]:
    if isinstance(v, dict):
        return [v[k] for k in sorted_keys(v)]
    if isinstance(v, list):
        return list(v)
    raise HarnRuntimeError("jq: cannot iterate over a non-collection with []")


def _recurse(v: Any) -> list[Any]:
    out = [v]
    if isinstance(v, dict):
        out += [x for k in sorted_keys(v) for x in _recurse(v[k])]
    elif isinstance(v, list):
        out += [x for item in v for x in _recurse(item)]
    return out


def _compose(a: Query, b: Query) -> Query:
    return lambda v: [y for x in a(v) for y in b(x)]


def _both(a: Query, b: Query, op: Callable[[Any, Any], Any]) -> Query:
    return lambda v: [op(x, y) for x in a(v) for y in b(v)]


def _run(name: str, args: list[Any]) -> list[Any]:
    arity(name, args, 2)
    try:
        return _JqParser(want(name, args[1], str)).parse()(args[0])
    except (TypeError, ValueError) as e:
        raise HarnRuntimeError(f"{name}: {e}") from None


@builtin("jq")
def _jq(vm: Any, args: list[Any]) -> list[Any]:
    return _run("jq", args)


@builtin("jq_first")
def _jq_first(vm: Any, args: list[Any]) -> Any:
    out = _run("jq_first", args)
    return out[0] if out else None
