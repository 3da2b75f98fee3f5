"""Declarations that define types: `struct`, `enum`, `impl`, `interface`, `type`.

Types are not checked by this subset, so `interface` and `type` aliases are
parsed (to reject malformed ones) and dropped; generic parameters and
`where` clauses are skipped. Structs and enums become runtime values.
"""

from __future__ import annotations

from vm_demo import ast as A
from vm_demo.lexer import T
from vm_demo.parser_base import ParserBase

__all__ = ("DeclParser",)


class DeclParser(ParserBase):
    """Parsing of type declarations; mixed into `parser.Parser`."""

    def fn_decl(self) -> A.Node:
        raise NotImplementedError  # Parser.fn_decl

    def _members(self) -> None:
        """Skip newlines and commas between the members of a declaration body."""
        while self.tok.type is T.NEWLINE or self.tok.is_op(",") or self.tok.is_op(";"):
            self.advance()

    def struct_decl(self) -> A.Node:
        t = self.advance()
        name = self.expect_name()
        self.skip_generics()
        self.expect_op("{")
        fields: list[str] = []
        self._members()
        while not self.tok.is_op("}"):
            fields.append(self.expect_name())
            if self.tok.is_op("?"):
                self.advance()
            self.expect_op(":")
            self.skip_type()
            self._members()
        self.advance()
        return A.StructDecl(t.line, t.col, name, fields)

    def enum_decl(self) -> A.Node:
        t = self.advance()
        name = self.expect_name()
        self.skip_generics()
        self.expect_op("{")
        variants: list[tuple[str, list[str]]] = []
        self._members()
        while not self.tok.is_op("}"):
            variant = self.expect_name()
            fields: list[str] = []
            if self.tok.is_op("("):
                fields = [p.name for p in self._variant_fields()]
            variants.append((variant, fields))
            self._members()
        self.advance()
        return A.EnumDecl(t.line, t.col, name, variants)

    def _variant_fields(self) -> list[A.Param]:
        """`(a, b: int)` or bare types `(float, float)`: one entry per positional field."""
        self.expect_op("(")
        out: list[A.Param] = []
        while not self.tok.is_op(")"):
            t = self.tok
            if t.type is T.IDENT and self.peek().is_op(":"):
                self.advance()
                self.advance()
                self.skip_type()
                out.append(A.Param(str(t.value)))
            else:
                self.skip_type()
                out.append(A.Param(f"_{len(out)}"))
            if not self.tok.is_op(")"):
                self.expect_op(",")
        self.advance()
        return out

    def impl_decl(self) -> A.Node:
        t = self.advance()
        target = self.expect_name()
        self.skip_generics()
        if self.tok.type is T.IDENT and self.tok.value == "for":
            raise self.error("`impl Interface for Type` is not Harn: write `impl Type { ... }`")
        self.expect_op("{")
        methods: list[A.FnDecl] = []
        self._members()
        while not self.tok.is_op("}"):
            if self.tok.is_kw("pub"):
                self.advance()
            if not (self.tok.is_kw("fn") or self.tok.is_op("@")):
                raise self.error(f"expected a method (fn) in impl {target}")
            decl = self.fn_decl()
            assert isinstance(decl, A.FnDecl)
            methods.append(decl)
            self._members()
        self.advance()
        return A.ImplDecl(t.line, t.col, target, methods)

    def interface_decl(self) -> A.Node:
        """`interface Name<T> { fn m(self) -> T  type Item }`: checked for shape, then dropped."""
        t = self.advance()
        self.expect_name()
        self.skip_generics()
        self.expect_op("{")
        self._members()
        while not self.tok.is_op("}"):
            if self.tok.is_kw("fn"):
                self.advance()
                self.expect_name()
                self.skip_generics()
                self.params()
            elif self.tok.type is T.IDENT and self.tok.value == "type":
                self.advance()
                self.expect_name()
                if self.tok.is_op("="):
                    self.advance()
                    self.skip_type()
            else:
                raise self.error("expected `fn` or `type` in an interface")
            self._members()
        self.advance()
        return A.Block(t.line, t.col, [])

    def type_alias(self) -> A.Node:
        """`type Name<T> = type-expression` (aliases only name types; nothing runs)."""
        t = self.advance()
        self.expect_name()
        self.skip_generics()
        self.expect_op("=")
        self.skip_newlines()
        if self.tok.is_op("|"):
            self.advance()
        if not self.skip_type():
            raise self.error("expected a type after '='")
        return A.Block(t.line, t.col, [])

    def is_type_alias(self) -> bool:
        """At an IDENT `type`: is this `type Name =` / `type Name<...> =`?"""
        t = self.tok
        return (
            t.type is T.IDENT
            and t.value == "type"
            and self.peek().type is T.IDENT
            and (self.peek(2).is_op("=") or self.peek(2).is_op("<"))
        )
