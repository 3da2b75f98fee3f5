"""The usage examples in the exporters' and the CLI's docstrings run and give what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "harn_async_trace.export._encoding",
    "harn_async_trace.export._io",
    "harn_async_trace.export._trace_file",
    "harn_async_trace.export.chrome",
    "harn_async_trace.export.dicts",
    "harn_async_trace.export.jsonl",
    "harn_async_trace.export.otlp",
    "harn_async_trace.export.otlp_json",
    "harn_async_trace.export.profile",
    "harn_async_trace.export.propagation",
    "harn_async_trace.export.summary",
    "harn_async_trace.cli",
    "harn_async_trace.cli._exports",
    "harn_async_trace.cli._shutdown",
    "harn_async_trace.cli._text",
)


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples(module: str) -> None:
    """Every example in the module's docstrings passes."""
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
