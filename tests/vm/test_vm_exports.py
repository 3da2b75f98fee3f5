"""vm_demo's modules each say what they offer in a tuple __all__, like the runtime's."""

from __future__ import annotations

import importlib
import pkgutil
import types

import pytest

import vm_demo

MODULES = sorted(
    ["vm_demo", *(f"vm_demo.{info.name}" for info in pkgutil.iter_modules(vm_demo.__path__))]
)


@pytest.mark.parametrize("module_name", MODULES)
def test_all_is_a_tuple_of_unique_real_names(module_name: str) -> None:
    """Each vm_demo module has a tuple __all__ whose names are unique and exist."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert isinstance(names, tuple), f"{module_name}.__all__ must be a tuple"
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(module, name), f"{module_name}.{name}"


@pytest.mark.parametrize("module_name", MODULES)
def test_public_functions_and_classes_are_listed(module_name: str) -> None:
    """A function or class a vm_demo module defines without a leading underscore is in __all__."""
    module = importlib.import_module(module_name)
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", None) == module_name
        and callable(value)
    }
    assert defined - set(module.__all__) == set()
