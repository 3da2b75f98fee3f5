"""Which `fn_call` spans the VM records: `harn-trace run --trace-calls all|none|sample:N`.

`pipeline`, `step`, `llm_call`, `tool_call` and the other spans are recorded
whatever the setting; only the per-call `fn_call` spans of named functions
are thinned, deterministically (one call in N, counted per run), so a
sampled trace still replays identically under `--mock-time`.
"""

from __future__ import annotations

__all__ = ("parse_trace_calls",)


def parse_trace_calls(text: str) -> int:
    """How often a call is traced: 1 for `all`, 0 for `none`, N for `sample:N`.

    >>> parse_trace_calls("all"), parse_trace_calls("none"), parse_trace_calls("sample:64")
    (1, 0, 64)
    """
    if text == "all":
        return 1
    if text == "none":
        return 0
    prefix, _, count = text.partition(":")
    if prefix == "sample" and count.isdigit() and int(count) >= 1:
        return int(count)
    raise ValueError(f"--trace-calls takes all, none or sample:N (N >= 1), got {text!r}")
