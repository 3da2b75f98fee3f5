"""Schemas and JSON extraction: `json_validate`, `schema_*`, `json_extract`.

A schema is a plain dict in Harn's canonical form (`type`, `required`,
`properties`, `items`, `additional_properties`, `nullable`, `min`/`max`,
`min_length`/`max_length`, `pattern`, `enum`, `const`, `min_items`/
`max_items`, `union`, `all_of`, `default`); JSON Schema / OpenAPI spellings
(`object`, `integer`, `minLength`, `oneOf`, `allOf`...) are read as their
canonical equivalents. Errors name the path of the value: `$.age`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from vm_demo.errors import HarnRuntimeError
from vm_demo.objects import Result, to_display, type_name
from vm_demo.registry import arity, builtin, want

__all__ = ("canonical", "check")

_TYPE_ALIASES = {
    "object": "dict",
    "array": "list",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "null": "nil",
    "str": "string",
}
_KEY_ALIASES = {
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_items",
    "maxItems": "max_items",
    "minimum": "min",
    "maximum": "max",
    "additionalProperties": "additional_properties",
    "oneOf": "union",
    "anyOf": "union",
    "allOf": "all_of",
}
_TO_JSON_TYPES = {
    "dict": "object",
    "list": "array",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "nil": "null",
}


def canonical(schema: Any) -> dict[str, Any]:
    """The canonical spelling of a schema dict (JSON Schema keys and type names mapped)."""
    if not isinstance(schema, dict):
        raise HarnRuntimeError(f"a schema must be a dict, got {type_name(schema)}")
    out: dict[str, Any] = {}
    for k, v in schema.items():
        key = str(_KEY_ALIASES.get(k, k))
        if key == "type" and isinstance(v, str):
            v = _TYPE_ALIASES.get(v, v)
        out[key] = v
    return out


def _is_type(v: Any, t: str) -> bool:
    tv = type(v)
    return {
        "string": tv is str,
        "int": tv is int,
        "float": tv in (int, float),
        "bool": tv is bool,
        "list": tv is list,
        "dict": tv is dict,
        "nil": v is None,
        "any": True,
    }.get(t, type_name(v) == t)


def check(v: Any, schema: Any, path: str, errors: list[str], defaults: bool) -> Any:
    """Validate `v`, appending `path: problem` messages; returns `v` with defaults applied."""
    s = canonical(schema)
    if v is None and s.get("nullable"):
        return v
    if "union" in s:
        for option in s["union"]:
            sub: list[str] = []
            out = check(v, option, path, sub, defaults)
            if not sub:
                return out
        errors.append(f"{path}: {to_display(v)} matches none of the union's schemas")
        return v
    for part in s.get("all_of", []):
        v = check(v, part, path, errors, defaults)
    t = s.get("type")
    if t is not None and not _is_type(v, t):
        errors.append(f"{path}: expected {t}, got {type_name(v)}")
        return v
    if "const" in s and v != s["const"]:
        errors.append(f"{path}: expected {to_display(s['const'])}, got {to_display(v)}")
    if "enum" in s and v not in s["enum"]:
        allowed = ", ".join(to_display(x) for x in s["enum"])
        errors.append(f"{path}: {to_display(v)} is not one of [{allowed}]")
    if isinstance(v, int | float) and not isinstance(v, bool):
        if "min" in s and v < s["min"]:
            errors.append(f"{path}: {to_display(v)} is below the minimum {to_display(s['min'])}")
        if "max" in s and v > s["max"]:
            errors.append(f"{path}: {to_display(v)} is above the maximum {to_display(s['max'])}")
    if isinstance(v, str):
        if "min_length" in s and len(v) < s["min_length"]:
            errors.append(f"{path}: shorter than {s['min_length']} characters")
        if "max_length" in s and len(v) > s["max_length"]:
            errors.append(f"{path}: longer than {s['max_length']} characters")
        if "pattern" in s and re.search(s["pattern"], v) is None:
            errors.append(f"{path}: does not match the pattern {s['pattern']}")
    if isinstance(v, list):
        if "min_items" in s and len(v) < s["min_items"]:
            errors.append(f"{path}: fewer than {s['min_items']} items")
        if "max_items" in s and len(v) > s["max_items"]:
            errors.append(f"{path}: more than {s['max_items']} items")
        if "items" in s:
            v = [check(x, s["items"], f"{path}[{i}]", errors, defaults) for i, x in enumerate(v)]
    if isinstance(v, dict):
        v = _check_dict(v, s, path, errors, defaults)
    return v


def _check_dict(
    v: dict[str, Any], s: dict[str, Any], path: str, errors: list[str], defaults: bool
) -> dict[str, Any]:
    props = s.get("properties") or {}
    out = dict(v)
    for key in s.get("required", []):
        if key not in v:
            errors.append(f"{path}.{key}: required field is missing")
    for key, sub in props.items():
        if key in v:
            out[key] = check(v[key], sub, f"{path}.{key}", errors, defaults)
        elif defaults and isinstance(sub, dict) and "default" in sub:
            out[key] = sub["default"]
    extra = s.get("additional_properties", True)
    for key in v:
        if key in props:
            continue
        if extra is False:
            errors.append(f"{path}.{key}: unexpected field")
        elif isinstance(extra, dict):
            out[key] = check(v[key], extra, f"{path}.{key}", errors, defaults)
    return out


def _validate(name: str, args: list[Any], defaults: bool) -> tuple[Any, list[str]]:
    errors: list[str] = []
    value = check(args[0], want(name, args[1], dict), "$", errors, defaults)
    return value, errors


def _failure(value: Any, errors: list[str]) -> Result:
    return Result(False, {"message": "; ".join(errors), "errors": errors, "value": value})


@builtin("json_validate")
def _json_validate(vm: Any, args: list[Any]) -> bool:
    arity("json_validate", args, 2)
    _, errors = _validate("json_validate", args, False)
    if errors:
        raise HarnRuntimeError(f"schema validation failed: {'; '.join(errors)}")
    return True


@builtin("schema_check")
def _schema_check(vm: Any, args: list[Any]) -> Result:
    arity("schema_check", args, 2)
    value, errors = _validate("schema_check", args, False)
    return _failure(args[0], errors) if errors else Result(True, value)


@builtin("schema_parse")
def _schema_parse(vm: Any, args: list[Any]) -> Result:
    arity("schema_parse", args, 2)
    value, errors = _validate("schema_parse", args, True)
    return _failure(args[0], errors) if errors else Result(True, value)


@builtin("schema_is")
def _schema_is(vm: Any, args: list[Any]) -> bool:
    arity("schema_is", args, 2)
    return not _validate("schema_is", args, False)[1]


@builtin("schema_expect")
def _schema_expect(vm: Any, args: list[Any]) -> Any:
    arity("schema_expect", args, 2, 3)
    value, errors = _validate("schema_expect", args, len(args) > 2 and args[2] is True)
    if errors:
        raise HarnRuntimeError(f"schema validation failed: {'; '.join(errors)}")
    return value


def _convert(schema: Any, to_json: bool) -> Any:
    if isinstance(schema, list):
        return [_convert(x, to_json) for x in schema]
    if not isinstance(schema, dict):
        return schema
    s = schema if to_json else canonical(schema)
    reverse = {v: k for k, v in _KEY_ALIASES.items() if k not in ("anyOf", "minimum", "maximum")}
    reverse.update({"min": "minimum", "max": "maximum"})
    out: dict[str, Any] = {}
    for k, v in s.items():
        key = reverse.get(k, k) if to_json else k
        if k == "type" and isinstance(v, str):
            v = _TO_JSON_TYPES.get(v, v) if to_json else _TYPE_ALIASES.get(v, v)
        elif k in ("properties",):
            v = {pk: _convert(pv, to_json) for pk, pv in v.items()}
        elif k in ("items", "additional_properties", "union", "all_of"):
            v = _convert(v, to_json)
        out[key] = v
    if to_json and s.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
        out.pop("nullable")
    return out


@builtin("schema_to_json_schema", "schema_to_openapi_schema")
def _to_json_schema(vm: Any, args: list[Any]) -> Any:
    arity("schema_to_json_schema", args, 1)
    return _convert(want("schema_to_json_schema", args[0], dict), True)


@builtin("schema_from_json_schema", "schema_from_openapi_schema")
def _from_json_schema(vm: Any, args: list[Any]) -> Any:
    arity("schema_from_json_schema", args, 1)
    return _convert(want("schema_from_json_schema", args[0], dict), False)


@builtin("schema_extend")
def _schema_extend(vm: Any, args: list[Any]) -> dict[str, Any]:
    arity("schema_extend", args, 2)
    return {**want("schema_extend", args[0], dict), **want("schema_extend", args[1], dict)}


def _partial(s: Any) -> Any:
    if not isinstance(s, dict):
        return s
    out = {k: v for k, v in s.items() if k != "required"}
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: _partial(v) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _partial(out["items"])
    return out


@builtin("schema_partial")
def _schema_partial(vm: Any, args: list[Any]) -> Any:
    arity("schema_partial", args, 1)
    return _partial(want("schema_partial", args[0], dict))


def _select(name: str, args: list[Any], keep: bool) -> dict[str, Any]:
    arity(name, args, 2)
    s = dict(want(name, args[0], dict))
    keys = want(name, args[1], list)
    props = s.get("properties") or {}
    s["properties"] = {k: v for k, v in props.items() if (k in keys) == keep}
    if "required" in s:
        s["required"] = [k for k in s["required"] if (k in keys) == keep]
    return s


@builtin("schema_pick")
def _schema_pick(vm: Any, args: list[Any]) -> dict[str, Any]:
    return _select("schema_pick", args, True)


@builtin("schema_omit")
def _schema_omit(vm: Any, args: list[Any]) -> dict[str, Any]:
    return _select("schema_omit", args, False)


# -- json_extract ------------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)


def _balanced(text: str) -> str | None:
    """The first balanced `{...}` or `[...]` in text (brackets inside strings ignored)."""
    for start, ch in enumerate(text):
        if ch not in "{[":
            continue
        depth = 0
        in_str = False
        escaped = False
        for i in range(start, len(text)):
            c = text[i]
            if in_str:
                if escaped:
                    escaped = False
                elif c == "\\":
                    escaped = True
                elif c == '"':
                    in_str = False
            elif c == '"':
                in_str = True
            elif c in "{[":
                depth += 1
            elif c in "}]":
                depth -= 1
                if depth == 0:
                    candidate = text[start : i + 1]
                    try:
                        json.loads(candidate)
                        return candidate
                    except json.JSONDecodeError:
                        break
    return None


@builtin("json_extract")
def _json_extract(vm: Any, args: list[Any]) -> Any:
    arity("json_extract", args, 1, 2)
    text: str = want("json_extract", args[0], str)
    fenced = _FENCE.search(text)
    body = fenced.group(1).strip() if fenced else text.strip()
    try:
        value = json.loads(body)
    except json.JSONDecodeError:
        found = _balanced(body)
        if found is None:
            raise HarnRuntimeError("json_extract(): no JSON object or array in the text") from None
        value = json.loads(found)
    if len(args) == 2:
        key = want("json_extract", args[1], str)
        return value.get(key) if isinstance(value, dict) else None
    return value
