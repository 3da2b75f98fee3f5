"""LLM and tool builtins backed by a deterministic mock provider.

`llm_call(prompt, options)` (or `llm_call(prompt, system, options)`) never
touches the network. The reply, token counts and latency are pure functions
of the inputs, so traces replay byte for byte under mock time:

* tokens: ~4 characters per token (`ceil(len / 4)`, at least 1);
* latency: `20ms + 2ms * output_tokens` (override with `latency_ms`);
* reply: `options.response` if given, else a canned summary of the prompt;
* tools: when `options.tools` is given, every tool whose name appears in
  the prompt is requested in `tool_calls` (`[{name, args: {query}}]`).

Each call is an `llm_call` span named after the model, carrying
`LlmCallUsage` metadata (cost only for models in `PRICES`). Switching model
emits a `model_route` marker; `tool_mount` emits a `tool_mount` marker;
calling a tool opens a `tool_call` span.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harn_async_trace import (
    LlmCallUsage,
    SpanKind,
    emit_model_route,
    emit_tool_mount,
    meta,
    span_set_metadata,
    span_start,
)
from vm_demo.errors import HarnRuntimeError, ending_span
from vm_demo.objects import to_display
from vm_demo.registry import arity, builtin, want

__all__ = ("DEFAULT_MODEL", "PRICES", "Tool", "cost_usd", "count_tokens", "provider_for")

DEFAULT_MODEL = "gpt-4o-mini"
# USD per million tokens: (input, output). Models not listed are unpriced.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-sonnet-4": (3.00, 15.00),
}
_PROVIDERS = (("gpt", "openai"), ("claude", "anthropic"), ("llama", "local"), ("local", "local"))


def provider_for(model: str) -> str:
    for prefix, provider in _PROVIDERS:
        if model.startswith(prefix):
            return provider
    return "mock"


def count_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> float | None:
    price = PRICES.get(model)
    if price is None:
        return None
    return round((input_tokens * price[0] + output_tokens * price[1]) / 1_000_000, 8)


def _mock_reply(prompt: str, model: str) -> str:
    words = prompt.split()
    gist = " ".join(words[:8]) + (" ..." if len(words) > 8 else "")
    return f"[{model}] answer to: {gist}"


def _parse_args(args: list[Any]) -> tuple[str, str | None, dict[str, Any]]:
    arity("llm_call", args, 1, 3)
    prompt = want("llm_call", args[0], str)
    system: str | None = None
    options: dict[str, Any] = {}
    rest = args[1:]
    if rest and isinstance(rest[0], dict) and len(rest) == 1:
        options = rest[0]
    elif rest:
        if rest[0] is not None:
            system = want("llm_call", rest[0], str, what="a system prompt string")
        if len(rest) > 1 and rest[1] is not None:
            options = want("llm_call", rest[1], dict, what="an options dict")
    return prompt, system, options


def _route(vm: Any, model: str, reason: str) -> None:
    previous = vm.state.get("model")
    if previous is not None and previous != model and vm.tracing:
        emit_model_route(previous, model, reason)
    vm.state["model"] = model


@builtin("llm_set_model")
def _llm_set_model(vm: Any, args: list[Any]) -> None:
    """Switch the default model, e.g. `llm_set_model("gpt-4o", "escalation")`."""
    arity("llm_set_model", args, 1, 2)
    model = want("llm_set_model", args[0], str)
    reason = to_display(args[1]) if len(args) > 1 else "model changed"
    if vm.state.get("model") is None:
        vm.state["model"] = DEFAULT_MODEL
    _route(vm, model, reason)


@builtin("llm_call", is_async=True)
async def _llm_call(vm: Any, args: list[Any]) -> dict[str, Any]:
    prompt, system, options = _parse_args(args)
    model = options.get("model") or vm.state.get("model") or DEFAULT_MODEL
    model = want("llm_call", model, str, what="a model name")
    if options.get("model"):
        _route(vm, model, to_display(options.get("reason") or "explicit model option"))
    elif vm.state.get("model") is None:
        vm.state["model"] = model
    provider = provider_for(model)
    sid = span_start(SpanKind.LLM_CALL, model) if vm.tracing else 0
    with ending_span(sid):  # error / cancelled (a deadline) recorded on the span
        text = options.get("response")
        text = _mock_reply(prompt, model) if text is None else to_display(text)
        input_tokens = count_tokens(prompt + (system or ""))
        output_tokens = count_tokens(text)
        latency = options.get("latency_ms", 20 + 2 * output_tokens)
        await asyncio.sleep(want("llm_call", latency, int, float, what="latency_ms") / 1000)
        usage = LlmCallUsage(
            model,
            provider,
            input_tokens,
            output_tokens,
            cost_usd=cost_usd(model, input_tokens, output_tokens),
        )
        if sid:
            for key, value in usage.metadata_pairs():
                span_set_metadata(sid, key, value)
        result: dict[str, Any] = {
            "text": text,
            "model": model,
            "provider": provider,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
        }
        if usage.cost_usd is not None:
            result["cost_usd"] = usage.cost_usd
        tools = options.get("tools")
        if tools:
            names = [t.name if isinstance(t, Tool) else to_display(t) for t in tools]
            result["tool_calls"] = [
                {"name": n, "args": {"query": prompt}} for n in names if n in prompt
            ]
        return result


# -- tools --------------------------------------------------------------------------------


class Tool:
    """A named, callable tool; each call is a `tool_call` span."""

    __slots__ = ("description", "handler", "name")
    harn_fields = frozenset({"name", "description"})

    def __init__(self, name: str, description: str, handler: Any) -> None:
        self.name = name
        self.description = description
        self.handler = handler

    def __str__(self) -> str:
        return f"<tool {self.name}>"

    async def harn_call(self, vm: Any, args: list[Any]) -> Any:
        sid = span_start(SpanKind.TOOL_CALL, self.name) if vm.tracing else 0
        if sid:
            span_set_metadata(sid, meta.TOOL_NAME, self.name)
        with ending_span(sid):
            return await vm.call(self.handler, args)

    def harn_method(self, name: str) -> Any:
        if name == "call":

            async def call(vm: Any, obj: Tool, args: list[Any]) -> Any:
                return await obj.harn_call(vm, args)

            return call
        return None


@builtin("tool_define", "tool")
def _tool_define(vm: Any, args: list[Any]) -> Tool:
    arity("tool_define", args, 2, 3)
    name = want("tool_define", args[0], str)
    description = want("tool_define", args[1], str) if len(args) == 3 else ""
    return Tool(name, description, args[-1])


@builtin("tool_mount")
def _tool_mount(vm: Any, args: list[Any]) -> int:
    """Register tools for `tool_call(name, ...)`; emits a `tool_mount` marker."""
    arity("tool_mount", args, 1, 3)
    tools = want("tool_mount", args[0], list)
    source = want("tool_mount", args[1], str) if len(args) > 1 else "program"
    detail = to_display(args[2]) if len(args) > 2 else None
    registry = vm.state.setdefault("tools", {})
    names = []
    for t in tools:
        tool = want("tool_mount", t, Tool, what="a tool (from tool_define)")
        registry[tool.name] = tool
        names.append(tool.name)
    if vm.tracing:
        emit_tool_mount(names, source, detail)
    return len(names)


@builtin("tool_call", is_async=True)
async def _tool_call(vm: Any, args: list[Any]) -> Any:
    arity("tool_call", args, 1, 2)
    name = want("tool_call", args[0], str)
    tool = vm.state.get("tools", {}).get(name)
    if tool is None:
        raise HarnRuntimeError(f"unknown tool '{name}' (mount it with tool_mount first)")
    call_args = [args[1]] if len(args) > 1 else []
    return await tool.harn_call(vm, call_args)
