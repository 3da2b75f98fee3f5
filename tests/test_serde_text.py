"""serde_json-compatible JSON text used by the summary tree."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harn_async_trace.export._serde_text import serde_json_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.245e-05, "0.00001245"),
        (1e30, "1e30"),
        (1.5e-7, "1.5e-7"),
        (3.0, "3.0"),
        (1e16, "1e16"),
        (1e15, "1000000000000000.0"),
        (0.00001, "0.00001"),
        (0.000001, "1e-6"),
        (-2.5, "-2.5"),
        (float("nan"), "null"),
        ({"b": [1, True, None], "a": "é\n"}, '{"a":"é\\n","b":[1,true,null]}'),
    ],
)
def test_known_texts(value: object, text: str) -> None:
    """Floats use ryu's shortest form and keys sort, as serde_json prints them."""
    assert serde_json_text(value) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_round_trip(value: float) -> None:
    """Every finite float prints to text that parses back to the same float."""
    text = serde_json_text(value)
    assert float(text) == value
    assert "e+" not in text
    assert "e-0" not in text
    if math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        assert text.endswith(".0")
