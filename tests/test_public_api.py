"""The public surface: __all__ matches DESIGN.md and what is importable (vm_demo's too)."""

from __future__ import annotations

import harn_async_trace

DESIGN_NAMES = {
    "SpanKind", "meta", "Span", "SpanLink", "SpanEvent", "LlmCallUsage", "SpanCollector",
    "use_collector", "set_tracing_enabled", "is_tracing_enabled", "span_start",
    "span_start_with_links", "span_start_detached_with_links", "span_set_metadata",
    "span_attach_metadata", "span_attach_metadata_if_absent", "span_end",
    "span_start_user_timing", "span_record_event", "current_span_id", "span_link",
    "current_span_link", "take_spans", "peek_spans", "reset_tracing", "format_summary",
    "span_to_dict", "span", "emit_marker_span", "emit_model_route", "emit_tool_mount",
    "emit_deferred_tool_load", "Clock", "SystemClock", "MockClock", "install_override",
    "active_mock_clock", "MockClockError", "subscribe",
}  # fmt: skip


def test_all_is_a_sorted_tuple_of_real_names() -> None:
    """__all__ is a sorted tuple and each name resolves."""
    names = harn_async_trace.__all__
    assert isinstance(names, tuple)
    assert list(names) == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(harn_async_trace, name), name


def test_design_names_exported() -> None:
    """Every DESIGN.md name of the core is exported from the package."""
    assert DESIGN_NAMES - set(harn_async_trace.__all__) == set()


def test_no_public_name_left_out() -> None:
    """Every public attribute that is not a submodule is listed in __all__."""
    import types

    public = {
        name
        for name, value in vars(harn_async_trace).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public - set(harn_async_trace.__all__) == set()


# -- every public module (trio/anyio style) ------------------------------------

import importlib  # noqa: E402
import pkgutil  # noqa: E402
import re  # noqa: E402
import types  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import vm_demo  # noqa: E402

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def _public_modules() -> list[str]:
    names = ["harn_async_trace"]
    for info in pkgutil.walk_packages(harn_async_trace.__path__, "harn_async_trace."):
        if not any(part.startswith("_") for part in info.name.split(".")[1:]):
            names.append(info.name)
    return names


PUBLIC_MODULES = _public_modules()
# vm_demo's modules have no underscore convention, but each says what it offers too.
VM_MODULES = [
    "vm_demo",
    *(f"vm_demo.{info.name}" for info in pkgutil.iter_modules(vm_demo.__path__)),
]
# Package faces re-export their submodules' names; the others are home modules.
FACADES = {"harn_async_trace", "harn_async_trace.export", "harn_async_trace.boundaries"}


@pytest.mark.parametrize("module_name", PUBLIC_MODULES + VM_MODULES)
def test_each_public_module_has_a_tuple_all(module_name: str) -> None:
    """Each public (and vm_demo) module lists its names in a tuple __all__ of unique, real names."""
    module = importlib.import_module(module_name)
    names = getattr(module, "__all__", None)
    assert isinstance(names, tuple), f"{module_name}.__all__ must be a tuple"
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(module, name), f"{module_name}.{name}"


@pytest.mark.parametrize(
    # pytest_plugin's fixtures and hooks are public through pytest, not imports.
    "module_name",
    [m for m in PUBLIC_MODULES if m != "harn_async_trace.pytest_plugin"] + VM_MODULES,
)
def test_names_defined_in_a_public_module_are_in_its_all(module_name: str) -> None:
    """A public function or class defined in a public (or vm_demo) module is in its __all__."""
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


def test_each_symbol_has_one_home() -> None:
    """No object is exported by two home modules; the faces only re-export homes."""
    homes: dict[int, str] = {}
    for module_name in PUBLIC_MODULES:
        if module_name in FACADES:
            continue
        module = importlib.import_module(module_name)
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, str | int | tuple | bool):
                continue
            assert id(value) not in homes, f"{module_name}.{name} also in {homes.get(id(value))}"
            homes[id(value)] = f"{module_name}.{name}"


def _documented_names() -> set[str]:
    text = API_MD.read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \|", text, re.M))


def test_every_name_in_api_md_exists() -> None:
    """Each name docs/api.md lists is importable from the module it names."""
    text = API_MD.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Za-z_][A-Za-z0-9_]*)` \| ([^|]*) \|", text, re.M)
    assert rows
    for name, where in rows:
        modules = re.findall(r"`([a-z_.]+)`", where)
        targets = [f"harn_async_trace.{m}" for m in modules]
        if "root" in where:
            targets.append("harn_async_trace")
        assert targets, f"{name}: no module given"
        for target in targets:
            assert hasattr(importlib.import_module(target), name), f"{target}.{name}"


def test_every_public_name_is_in_api_md() -> None:
    """A newcomer finds any public name in docs/api.md."""
    documented = _documented_names()
    missing = {
        f"{m}.{n}"
        for m in PUBLIC_MODULES
        for n in importlib.import_module(m).__all__
        if n not in documented
    }
    assert missing == set()
