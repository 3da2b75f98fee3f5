"""Span kinds and canonical metadata keys (the same as the Harn language's own VM, harn-vm)."""

from __future__ import annotations

import enum
from typing import Final, final

__all__ = ("SpanKind", "coerce_kind", "meta")


class SpanKind(enum.StrEnum):
    """What a span measures. ``str(kind)`` is its wire value.

    Example:
        >>> str(SpanKind.FN_CALL)
        'fn_call'
    """

    PIPELINE = "pipeline"
    FN_CALL = "fn_call"
    LLM_CALL = "llm_call"
    TOOL_CALL = "tool_call"
    IMPORT = "import"
    PARALLEL = "parallel"
    SPAWN = "spawn"
    STEP = "step"
    VM_SETUP = "vm_setup"
    SUSPENSION = "suspension"
    RESUME = "resume"
    DRAIN = "drain"
    DRAIN_DECISION = "drain_decision"
    POOL_SUBMIT = "pool_submit"
    POOL_DEQUEUE = "pool_dequeue"
    CHANNEL_EMIT = "channel_emit"
    CHANNEL_MATCH = "channel_match"
    USER_TIMING = "user_timing"
    MODEL_ROUTE = "model_route"
    TOOL_MOUNT = "tool_mount"
    DEFERRED_TOOL_LOAD = "deferred_tool_load"


@final
class meta:  # lower-case on purpose: it reads as a namespace, `meta.MODEL`
    """Canonical metadata keys; each upper-case attribute is its lower-case key.

    Example:
        >>> meta.INPUT_TOKENS
        'input_tokens'
    """

    MODEL: Final = "model"
    PROVIDER: Final = "provider"
    INPUT_TOKENS: Final = "input_tokens"
    OUTPUT_TOKENS: Final = "output_tokens"
    CACHE_READ_TOKENS: Final = "cache_read_tokens"
    CACHE_WRITE_TOKENS: Final = "cache_write_tokens"
    COST_USD: Final = "cost_usd"
    FROM_MODEL: Final = "from_model"
    TO_MODEL: Final = "to_model"
    REASON: Final = "reason"
    TOOL_NAMES: Final = "tool_names"
    TOOL_COUNT: Final = "tool_count"
    SOURCE: Final = "source"
    DETAIL: Final = "detail"
    TOOL_NAME: Final = "tool_name"
    QUERY: Final = "query"
    SCORE: Final = "score"

    def __init__(self) -> None:
        raise TypeError("meta is a namespace of key constants; use meta.MODEL etc.")


_KIND_BY_VALUE: Final[dict[str, SpanKind]] = {k.value: k for k in SpanKind}


def coerce_kind(kind: object, argument: str = "kind") -> SpanKind:
    """Return ``kind`` as a :class:`SpanKind`, accepting its string value.

    Raises ``TypeError`` naming ``argument`` for anything else.
    """
    if type(kind) is SpanKind:
        return kind
    if isinstance(kind, str):
        found = _KIND_BY_VALUE.get(str(kind))
        if found is not None:
            return found
    raise TypeError(
        f"{argument} must be a SpanKind or one of its values "
        f"({', '.join(sorted(_KIND_BY_VALUE))}); got {kind!r}"
    )
