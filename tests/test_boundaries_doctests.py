"""The usage examples in the boundaries' docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ("channels", "parallel", "pool", "spawn", "step", "suspension", "threads")


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module: str) -> None:
    """Every example in the module's docstrings passes."""
    target = importlib.import_module(f"harn_async_trace.boundaries.{module}")
    result = doctest.testmod(target, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
