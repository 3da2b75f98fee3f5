"""JSON text exactly as Rust's serde_json writes a ``Value`` (the format harn-vm's summaries use).

It differs from ``json.dumps`` in two ways that show up in summaries: object
keys are sorted (serde_json's default map is a BTreeMap) and floats use
ryu's shortest form (``0.00001245``, ``1e30``, ``1.5e-7``, ``3.0``) instead
of Python's ``1.245e-05``/``1e+30``. Non-finite floats become ``null``.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ("serde_json_text",)

_encode_str = json.JSONEncoder(ensure_ascii=False).encode


def _float_text(value: float) -> str:
    if not math.isfinite(value):
        return "null"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    # repr gives the shortest round-tripping digits, the same digits ryu picks.
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    whole = whole.lstrip("0")
    digits = (whole + frac).lstrip("0").rstrip("0")
    # value = 0.DIGITS * 10**kk, i.e. 10**(kk-1) <= value < 10**kk
    leading_zeros = len(frac) - len(frac.lstrip("0"))
    kk = (len(whole) if whole else -leading_zeros) + int(exp_text or 0)
    length = len(digits)
    if length <= kk <= 16:
        text = digits + "0" * (kk - length) + ".0"
    elif 0 < kk <= 16:
        text = f"{digits[:kk]}.{digits[kk:]}"
    elif -5 < kk <= 0:
        text = "0." + "0" * -kk + digits
    elif length == 1:
        text = f"{digits}e{kk - 1}"
    else:
        text = f"{digits[0]}.{digits[1:]}e{kk - 1}"
    return sign + text


def serde_json_text(value: Any) -> str:
    """Compact JSON text the way serde_json prints it.

    Example:
        >>> serde_json_text({"b": 1.245e-05, "a": [1e30, 3.0, "é"]})
        '{"a":[1e30,3.0,"é"],"b":0.00001245}'
    """
    parts: list[str] = []
    _write(value, parts)
    return "".join(parts)


def _write(value: Any, out: list[str]) -> None:
    if value is None or value is True or value is False:
        out.append("null" if value is None else ("true" if value else "false"))
    elif isinstance(value, str):
        out.append(_encode_str(value))
    elif isinstance(value, int):
        out.append(str(int(value)))
    elif isinstance(value, float):
        out.append(_float_text(value))
    elif isinstance(value, dict):
        out.append("{")
        for index, key in enumerate(sorted(value, key=str)):
            if index:
                out.append(",")
            out.append(_encode_str(str(key)))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _write(item, out)
        out.append("]")
    else:
        out.append(_encode_str(str(value)))
