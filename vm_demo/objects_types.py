"""Values of user-declared types: structs, enums, and the `Pair` of the iterator protocol.

A `struct` declaration makes a `StructDef` (callable: `Point({x: 1})`, or the
literal `Point { x: 1 }`); its instances are `StructInstance`s with named
fields. An `enum` makes an `EnumDef` whose attributes are its variants:
`Color.Red` is an `EnumValue`, `Shape.Circle` a constructor. `impl` blocks
add methods to either kind of definition.

"""

from __future__ import annotations

from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import freeze_content as freeze
from vm_demo.objects import to_display

__all__ = (
    "EnumDef",
    "EnumValue",
    "Pair",
    "StructDef",
    "StructInstance",
    "VariantConstructor",
    "impl",
)


class StructDef:
    """A declared struct: its name, field names and `impl` methods."""

    __slots__ = ("fields", "methods", "name")

    def __init__(self, name: str, fields: list[str]) -> None:
        self.name = name
        self.fields = fields
        self.methods: dict[str, Any] = {}

    def harn_display(self) -> str:
        return f"<struct {self.name}>"

    def harn_type(self) -> str:
        return "struct"

    async def harn_call(self, vm: Any, args: list[Any]) -> StructInstance:
        """`Point({x: 1, y: 2})`: an instance from a dict of fields."""
        if len(args) != 1 or not isinstance(args[0], dict):
            raise HarnRuntimeError(f"{self.name}(...) expects one dict of fields")
        return self.instance(args[0])

    def instance(self, fields: dict[str, Any]) -> StructInstance:
        unknown = [k for k in fields if k not in self.fields]
        if unknown:
            raise HarnRuntimeError(f"struct {self.name} has no field '{unknown[0]}'")
        return StructInstance(self, {k: fields.get(k) for k in self.fields})

    def harn_method(self, name: str) -> Any:
        """`Point.origin()`: a method without `self`, called on the type."""
        fn = self.methods.get(name)
        if fn is None:
            return None

        async def call(vm: Any, obj: StructDef, args: list[Any]) -> Any:
            return await vm.call(fn, args)

        return call


class StructInstance:
    """One value of a struct type; fields print in declaration order."""

    __slots__ = ("fields", "sdef")

    def __init__(self, sdef: StructDef, fields: dict[str, Any]) -> None:
        self.sdef = sdef
        self.fields = fields

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, StructInstance)
            and other.sdef is self.sdef
            and freeze(other.fields) == freeze(self.fields)
        )

    def __hash__(self) -> int:
        return hash((self.sdef.name, freeze(self.fields)))

    def harn_display(self) -> str:
        inner = ", ".join(f"{k}: {to_display(v, True)}" for k, v in self.fields.items())
        return f"{self.sdef.name}({{{inner}}})"

    def harn_type(self) -> str:
        return "struct"

    def harn_attr(self, name: str) -> Any:
        if name in self.fields:
            return self.fields[name]
        raise HarnRuntimeError(f"struct {self.sdef.name} has no field '{name}'")

    def harn_method(self, name: str) -> Any:
        fn = self.sdef.methods.get(name)
        if fn is None:
            return None

        async def call(vm: Any, obj: StructInstance, args: list[Any]) -> Any:
            return await vm.call(fn, [obj, *args])

        return call


class EnumDef:
    """A declared enum: variant name -> its positional field names."""

    __slots__ = ("methods", "name", "variants")

    def __init__(self, name: str, variants: list[tuple[str, list[str]]]) -> None:
        self.name = name
        self.variants = dict(variants)
        self.methods: dict[str, Any] = {}

    def harn_display(self) -> str:
        return f"<enum {self.name}>"

    def harn_type(self) -> str:
        return "enum"

    def harn_attr(self, name: str) -> Any:
        fields = self.variants.get(name)
        if fields is None:
            raise HarnRuntimeError(f"enum {self.name} has no variant '{name}'")
        if not fields:
            return EnumValue(self.name, name, [], self)
        return VariantConstructor(self, name)

    def harn_method(self, name: str) -> Any:
        if name in self.variants:

            async def construct(vm: Any, obj: EnumDef, args: list[Any]) -> EnumValue:
                return VariantConstructor(obj, name).build(args)

            return construct
        fn = self.methods.get(name)
        if fn is None:
            return None

        async def call(vm: Any, obj: EnumDef, args: list[Any]) -> Any:
            return await vm.call(fn, args)

        return call


class VariantConstructor:
    """`Shape.Circle` before it is called: a function making that variant."""

    __slots__ = ("edef", "variant")

    def __init__(self, edef: EnumDef, variant: str) -> None:
        self.edef = edef
        self.variant = variant

    @property
    def name(self) -> str:
        return f"{self.edef.name}.{self.variant}"

    def harn_display(self) -> str:
        return f"<fn {self.name}>"

    def harn_type(self) -> str:
        return "closure"

    def build(self, args: list[Any]) -> EnumValue:
        want = self.edef.variants[self.variant]
        if len(args) != len(want):
            raise HarnRuntimeError(
                f"{self.name} expects {len(want)} field{'s' if len(want) != 1 else ''}, "
                f"got {len(args)}"
            )
        return EnumValue(self.edef.name, self.variant, list(args), self.edef)

    async def harn_call(self, vm: Any, args: list[Any]) -> EnumValue:
        return self.build(args)


class EnumValue:
    """`Color.Red`, `Shape.Circle(2.0)`: `.variant`, `.fields`, `.enum_name`."""

    __slots__ = ("edef", "enum_name", "fields", "variant")

    def __init__(
        self, enum_name: str, variant: str, fields: list[Any], edef: EnumDef | None
    ) -> None:
        self.enum_name = enum_name
        self.variant = variant
        self.fields = fields
        self.edef = edef

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EnumValue)
            and (other.enum_name, other.variant) == (self.enum_name, self.variant)
            and freeze(other.fields) == freeze(self.fields)
        )

    def __hash__(self) -> int:
        return hash((self.enum_name, self.variant, freeze(self.fields)))

    def harn_display(self) -> str:
        head = f"{self.enum_name}.{self.variant}"
        if not self.fields:
            return head
        return head + "(" + ", ".join(to_display(x, True) for x in self.fields) + ")"

    def harn_type(self) -> str:
        return "enum"

    def harn_attr(self, name: str) -> Any:
        if name == "variant":
            return self.variant
        if name == "fields":
            return list(self.fields)
        if name in ("enum", "enum_name"):
            return self.enum_name
        names = self.edef.variants.get(self.variant, []) if self.edef is not None else []
        if name in names:
            return self.fields[names.index(name)]
        raise HarnRuntimeError(f"{self.enum_name}.{self.variant} has no field '{name}'")

    def harn_method(self, name: str) -> Any:
        fn = self.edef.methods.get(name) if self.edef is not None else None
        if fn is None:
            return None

        async def call(vm: Any, obj: EnumValue, args: list[Any]) -> Any:
            return await vm.call(fn, [obj, *args])

        return call


class Pair:
    """Two values (`pair(a, b)`, dict iters, `.enumerate()`); prints `(a, b)`."""

    __slots__ = ("first", "second")

    def __init__(self, first: Any, second: Any) -> None:
        self.first = first
        self.second = second

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pair) and (freeze(other.first), freeze(other.second)) == (
            freeze(self.first),
            freeze(self.second),
        )

    def __hash__(self) -> int:
        return hash(("pair", freeze(self.first), freeze(self.second)))

    def harn_display(self) -> str:
        return f"({to_display(self.first, True)}, {to_display(self.second, True)})"

    def harn_type(self) -> str:
        return "pair"

    def harn_attr(self, name: str) -> Any:
        if name == "first":
            return self.first
        if name == "second":
            return self.second
        raise HarnRuntimeError(f"pair has no field '{name}' (use .first or .second)")


def impl(target: Any, methods: dict[str, Any]) -> None:
    """Attach the methods of an `impl` block to a struct or enum."""
    if not isinstance(target, StructDef | EnumDef):
        raise HarnRuntimeError(f"impl needs a struct or enum, got {to_display(target)}")
    target.methods.update(methods)
