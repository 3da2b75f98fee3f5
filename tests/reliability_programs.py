"""Random concurrent programs for the reliability fuzz: the AST and its generator.

Hypothesis draws a small tree of operations (:data:`Body` of :class:`Node`
dataclasses) from :func:`programs`; ``reliability_interpreter`` runs one with
the library's public API and writes down the ground truth that
``reliability_invariants.check`` compares the finished trace against.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

from hypothesis import strategies as st

# -- the AST ---------------------------------------------------------------------


class ProgramError(Exception):
    """The one exception programs raise (and ``Try`` catches)."""


@dataclass(frozen=True)
class Sleep:
    """``await asyncio.sleep(ms / 1000)`` on virtual time."""

    ms: int


@dataclass(frozen=True)
class Raise:
    """``raise ProgramError``."""


@dataclass(frozen=True)
class Span:
    """``with span("step", name, new_trace=new_trace): body``."""

    body: Body
    new_trace: bool = False


@dataclass(frozen=True)
class Try:
    """``try: body except ProgramError: pass`` (cancellations still go through)."""

    body: Body


@dataclass(frozen=True)
class Timeout:
    """``async with asyncio.timeout(ms / 1000): body``; the TimeoutError is swallowed."""

    ms: int
    body: Body


@dataclass(frozen=True)
class Spawn:
    """Start ``body`` in a task, then await it, cancel it after ``ms``, or forget it.

    ``via``: ``traced_spawn`` or a plain ``asyncio.create_task`` (traced by
    ``instrument_asyncio``).
    """

    body: Body
    mode: str  # "await" | "cancel" | "forget"
    ms: int
    via: str = "traced_spawn"  # | "create_task"


@dataclass(frozen=True)
class Parallel:
    """``await traced_parallel(branches, max_concurrent=cap, settle=settle)``."""

    branches: tuple[Body, ...]
    cap: int | None
    settle: bool


@dataclass(frozen=True)
class Pool:
    """``async with TracedPool(workers, max_queue)``: submit every job, await them all."""

    jobs: tuple[Body, ...]
    workers: int
    max_queue: int


@dataclass(frozen=True)
class Group:
    """``async with TracedTaskGroup()``: a task per child, then the block's own ``body``."""

    children: tuple[Body, ...]
    body: Body


@dataclass(frozen=True)
class Queue:
    """A ``TracedQueue(maxsize)``: this task puts ``items``, a ``create_task`` consumer
    handles each in ``async with queue.receive()`` (swallowing ProgramError)."""

    items: int
    maxsize: int
    handler: Body


@dataclass(frozen=True)
class Channel:
    """A channel with one trigger (``batch``) running ``handler``; ``emits`` emits; aclose."""

    emits: int
    batch: int
    handler: Body


Node: TypeAlias = (
    Sleep | Raise | Span | Try | Timeout | Spawn | Parallel | Group | Pool | Channel | Queue
)
Body: TypeAlias = tuple[Node, ...]


def size(body: Body) -> int:
    """Number of nodes in ``body`` (for reporting how big the fuzzed programs were)."""
    total = 0
    for node in body:
        total += 1
        for child in _children(node):
            total += size(child)
    return total


def _children(node: Node) -> Iterator[Body]:
    if isinstance(node, Span | Try | Timeout | Spawn):
        yield node.body
    elif isinstance(node, Parallel):
        yield from node.branches
    elif isinstance(node, Group):
        yield from node.children
        yield node.body
    elif isinstance(node, Pool):
        yield from node.jobs
    elif isinstance(node, Channel | Queue):
        yield node.handler


# -- the generator ---------------------------------------------------------------

_MS = st.sampled_from((0, 1, 2, 5, 10))


def _bodies(leaf: st.SearchStrategy[Node]) -> st.SearchStrategy[Body]:
    def extend(inner: st.SearchStrategy[Body]) -> st.SearchStrategy[Body]:
        node: st.SearchStrategy[Node] = st.one_of(
            leaf,
            st.builds(Span, inner, st.sampled_from((False, False, False, True))),
            st.builds(Try, inner),
            st.builds(Timeout, _MS, inner),
            st.builds(
                Spawn,
                inner,
                st.sampled_from(("await", "cancel", "forget")),
                _MS,
                st.sampled_from(("traced_spawn", "create_task")),
            ),
            st.builds(
                Parallel,
                st.lists(inner, min_size=0, max_size=4).map(tuple),
                st.one_of(st.none(), st.integers(1, 3)),
                st.booleans(),
            ),
            st.builds(
                Pool,
                st.lists(inner, min_size=1, max_size=4).map(tuple),
                st.integers(1, 2),
                st.integers(0, 2),
            ),
            st.builds(Channel, st.integers(1, 4), st.integers(1, 3), inner),
            st.builds(Group, st.lists(inner, min_size=0, max_size=3).map(tuple), inner),
            st.builds(Queue, st.integers(1, 4), st.integers(0, 2), inner),
        )
        return st.lists(node, min_size=1, max_size=3).map(tuple)

    return st.recursive(st.lists(leaf, max_size=2).map(tuple), extend, max_leaves=24)


def programs() -> st.SearchStrategy[Body]:
    """Random programs: a few top-level statements over nested structures (~25 leaves each)."""
    leaf: st.SearchStrategy[Node] = st.one_of(
        st.builds(Sleep, _MS), st.builds(Sleep, _MS), st.builds(Sleep, _MS), st.just(Raise())
    )
    return st.lists(_bodies(leaf), min_size=1, max_size=4).map(
        lambda parts: tuple(node for part in parts for node in part)
    )
