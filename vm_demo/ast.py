"""AST node types for the Harn subset (positions are 1-based line/col).

Every node starts with `line, col`; expressions and statements share the
`Node` base so the compiler can report positions uniformly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

__all__ = (
    "Assign", "Attr", "Binary", "Block", "Break", "BuiltinCall", "Call", "Const", "Continue",
    "Deadline", "Defer", "DictLit", "DictPattern", "Duration", "EnumDecl", "ExprStmt", "FnDecl",
    "For", "FuncExpr", "Guard", "IfExpr", "ImplDecl", "Import", "Index", "Interp", "Let",
    "ListLit", "ListPattern", "Logical", "Match", "MatchArm", "MethodCall", "Module", "Name",
    "NamePattern", "Node", "Parallel", "Param", "Pattern", "PipelineDecl", "Range", "Retry",
    "Return", "Select", "SelectCase", "Slice", "Spawn", "Spread", "StructDecl", "StructLit",
    "Ternary", "Throw", "TryExpr", "TuplePattern", "Unary", "Unwrap", "While", "Yield", "walk",
)  # fmt: skip


@dataclass(slots=True)
class Node:
    line: int
    col: int


# -- expressions ---------------------------------------------------------------


@dataclass(slots=True)
class Const(Node):
    """int, float, string without interpolation, bool, nil."""

    value: Any


@dataclass(slots=True)
class Duration(Node):
    ms: int


@dataclass(slots=True)
class Interp(Node):
    """A string with `${}`: literal strings and expressions, in order."""

    parts: list[str | Node]


@dataclass(slots=True)
class Name(Node):
    name: str


@dataclass(slots=True)
class ListLit(Node):
    items: list[Node]


@dataclass(slots=True)
class DictLit(Node):
    entries: list[tuple[Node, Node]]


@dataclass(slots=True)
class Unary(Node):
    op: str  # "-" or "!"
    operand: Node


@dataclass(slots=True)
class Binary(Node):
    op: str  # + - * / % == != < <= > >= in "not in"
    left: Node
    right: Node


@dataclass(slots=True)
class Logical(Node):
    op: str  # && || ??
    left: Node
    right: Node


@dataclass(slots=True)
class Ternary(Node):
    cond: Node
    then: Node
    other: Node


@dataclass(slots=True)
class Range(Node):
    start: Node
    end: Node
    inclusive: bool


@dataclass(slots=True)
class Call(Node):
    func: Node
    args: list[Node]


@dataclass(slots=True)
class MethodCall(Node):
    obj: Node
    name: str
    args: list[Node]
    optional: bool = False


@dataclass(slots=True)
class Attr(Node):
    obj: Node
    name: str
    optional: bool = False


@dataclass(slots=True)
class Index(Node):
    obj: Node
    index: Node


@dataclass(slots=True)
class Slice(Node):
    obj: Node
    start: Node | None
    end: Node | None


@dataclass(slots=True)
class Spread(Node):
    """`...expr` inside call arguments, list literals or dict literals."""

    value: Node


@dataclass(slots=True)
class Param:
    name: str
    rest: bool = False
    default: Node | None = None
    # What the annotation allows, checked at call time (primitive names, or a
    # shape; see parser_base._runtime_types); None: unchecked.
    types: tuple[Any, ...] | None = None


@dataclass(slots=True)
class FuncExpr(Node):
    """A closure `{ x -> ... }`, `fn(x) { }`, or a block run by a builtin."""

    params: list[Param]
    body: list[Node]
    name: str = ""  # empty for anonymous closures (no fn_call span)


@dataclass(slots=True)
class IfExpr(Node):
    cond: Node
    then: list[Node]
    other: list[Node] | None  # an `else if` is a one-statement else block


@dataclass(slots=True)
class TryExpr(Node):
    body: list[Node]
    catch_name: str | None
    # `catch (e: T | U)`: the type names that this handler catches (None: all).
    catch_types: tuple[str, ...] | None
    # No catch and no finally: a bare `try { }`, which evaluates to a Result.
    # No catch but a finally: errors propagate after the finally body runs.
    catch_body: list[Node] | None
    finally_body: list[Node] | None


@dataclass(slots=True)
class Spawn(Node):
    body: FuncExpr


@dataclass(slots=True)
class Parallel(Node):
    mode: str  # "count" | "each" | "settle"
    subject: Node
    options: Node | None
    body: FuncExpr
    stream: bool = False  # `... as stream`: results in completion order, as they come


@dataclass(slots=True)
class Deadline(Node):
    duration: Node
    body: FuncExpr


@dataclass(slots=True)
class MatchArm:
    patterns: list[Node]  # alternatives (`a | b ->`); expressions read as patterns
    guard: Node | None
    body: list[Node]


@dataclass(slots=True)
class Match(Node):
    subject: Node
    arms: list[MatchArm]


@dataclass(slots=True)
class StructLit(Node):
    name: str
    entries: list[tuple[Node, Node]]


@dataclass(slots=True)
class Unwrap(Node):
    """Postfix `expr?`: the Ok value, or return the Err from the enclosing function."""

    value: Node


@dataclass(slots=True)
class Retry(Node):
    count: Node
    body: list[Node]


@dataclass(slots=True)
class BuiltinCall(Node):
    """A call of an intrinsic the compiler relies on (never shadowed by user names)."""

    name: str
    args: list[Node]


@dataclass(slots=True)
class SelectCase:
    name: str | None
    channel: Node
    body: list[Node]


@dataclass(slots=True)
class Select(Node):
    cases: list[SelectCase]
    timeout: Node | None
    timeout_body: list[Node] | None


# -- patterns ------------------------------------------------------------------


@dataclass(slots=True)
class NamePattern(Node):
    name: str  # "_" discards
    default: Node | None = None


@dataclass(slots=True)
class ListPattern(Node):
    items: list[NamePattern]
    rest: str | None


@dataclass(slots=True)
class DictPattern(Node):
    fields: list[tuple[str, str, Node | None]]  # (key, bound name, default)
    rest: str | None = None


@dataclass(slots=True)
class TuplePattern(Node):
    """`(a, b)` in a for head: the two halves of a Pair (or a two-item list)."""

    items: list[NamePattern]


Pattern = NamePattern | ListPattern | DictPattern | TuplePattern


# -- statements ----------------------------------------------------------------


@dataclass(slots=True)
class ExprStmt(Node):
    expr: Node


@dataclass(slots=True)
class Let(Node):
    target: Pattern
    value: Node
    mutable: bool


@dataclass(slots=True)
class Assign(Node):
    target: Node  # Name, Attr or Index
    op: str  # "=", "+=", ...
    value: Node


@dataclass(slots=True)
class For(Node):
    target: Pattern
    iterable: Node
    body: list[Node]


@dataclass(slots=True)
class While(Node):
    cond: Node
    body: list[Node]


@dataclass(slots=True)
class Break(Node):
    pass


@dataclass(slots=True)
class Continue(Node):
    pass


@dataclass(slots=True)
class Return(Node):
    value: Node | None


@dataclass(slots=True)
class Throw(Node):
    value: Node


@dataclass(slots=True)
class Block(Node):
    body: list[Node]


@dataclass(slots=True)
class Guard(Node):
    cond: Node
    body: list[Node]


@dataclass(slots=True)
class Defer(Node):
    body: list[Node]


@dataclass(slots=True)
class Yield(Node):
    value: Node | None


@dataclass(slots=True)
class StructDecl(Node):
    name: str
    fields: list[str]


@dataclass(slots=True)
class EnumDecl(Node):
    name: str
    variants: list[tuple[str, list[str]]]  # (variant, field names)


@dataclass(slots=True)
class ImplDecl(Node):
    target: str
    methods: list[FnDecl]


@dataclass(slots=True)
class FnDecl(Node):
    name: str
    func: FuncExpr
    decorators: list[str] = field(default_factory=list)


@dataclass(slots=True)
class PipelineDecl(Node):
    name: str
    func: FuncExpr


@dataclass(slots=True)
class Import(Node):
    path: str
    names: list[str] | None  # None: import every top-level name


@dataclass(slots=True)
class Module(Node):
    filename: str
    body: list[Node]


def walk(nodes: Any) -> Iterator[Any]:
    """Every AST node under `nodes`, not descending into nested functions.

    A `FuncExpr` is yielded itself (so callers can spot one) but its body is
    skipped: what a closure contains belongs to the closure.
    """
    stack: list[Any] = [nodes]
    while stack:
        n = stack.pop()
        if isinstance(n, list | tuple):
            stack.extend(n)
        elif is_dataclass(n):
            yield n
            if not isinstance(n, FuncExpr):
                stack.extend(getattr(n, f.name) for f in fields(n))
