"""State shared by the two ``traced_parallel`` engines (asyncio tasks, anyio task group).

Both engines hand out branches in input order, open each branch's linked
``spawn`` span the same way and report the same counters to ``_summarise``;
only how a branch task is started and cancelled differs, so that stays in
``parallel.py`` and ``_anyio_parallel.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from ..collector import SpanCollector
from ..kinds import SpanKind
from ._common import link_to

__all__ = ("Branch", "FanOutState")

Branch = Awaitable[Any] | Callable[[], Awaitable[Any]]


class FanOutState:
    """The input, results and counters of one fan-out (internal)."""

    __slots__ = (
        "branches_cancelled",
        "collector",
        "items",
        "limit",
        "name",
        "next_index",
        "parallel_id",
        "peak",
        "results",
        "settle",
        "stopped",
    )

    def __init__(
        self,
        items: list[Branch | None],
        limit: int,
        settle: bool,
        collector: SpanCollector | None,
        parallel_id: int,
        name: str,
    ) -> None:
        self.items = items
        self.limit = limit
        self.settle = settle
        self.collector = collector
        self.parallel_id = parallel_id
        self.name = name
        self.results: list[Any] = [None] * len(items)
        self.next_index = 0
        self.peak = 0
        self.branches_cancelled = 0
        self.stopped = False
        self._init_engine()

    def _init_engine(self) -> None:
        """Set up the engine's own state (asyncio tasks or an anyio task group)."""

    @property
    def not_started(self) -> int:
        return len(self.items) - self.next_index

    def open_branch(self, index: int) -> tuple[str, int]:
        """The name of branch ``index`` and its span, opened unpushed (0 when not tracing).

        The span is a ``spawn`` linked to the ``parallel`` span with
        ``relation=branch_of``, opened before the branch task exists.
        """
        branch_name = f"{self.name}[{index}]"
        collector = self.collector
        if collector is None:
            return branch_name, 0
        link = link_to(collector, self.parallel_id, relation="branch_of", index=str(index))
        return branch_name, collector.open(
            SpanKind.SPAWN, branch_name, [link], detached=True, push=False
        )
