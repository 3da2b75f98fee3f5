"""``TimerQueue``: the virtual loop's timers, ordered by (deadline, scheduling order).

Timers with the same integer-nanosecond deadline share one FIFO bucket, and
a heap holds each distinct deadline once. Programs mostly schedule many
timers at few instants (every task of a batch sleeping the same time, or a
timeout and a sleep per task), so a push is usually one dict lookup and one
list append, and popping a deadline hands over its whole bucket; the heap
only grows with distinct deadlines. FIFO at equal deadlines falls out of the
bucket order.

Cancelled timers stay where they are (removing one is O(n)) and are skipped
when popped or peeked; once they are most of the queue it is rebuilt.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any, final

__all__ = ("TimerQueue",)


@final
class TimerQueue:
    """Handles (anything with ``_cancelled``) keyed by an int deadline, FIFO per deadline.

    Example:
        >>> class H:
        ...     _cancelled = False
        ...     def __init__(self, name): self.name = name
        >>> q = TimerQueue()
        >>> for due, name in [(5, "a"), (1, "b"), (5, "c")]:
        ...     q.push(due, H(name))
        >>> [h.name for h in q.pop_until(5)]
        ['b', 'a', 'c']
    """

    __slots__ = ("_buckets", "_cancelled", "_dues", "_size")

    def __init__(self) -> None:
        self._buckets: dict[int, list[Any]] = {}
        self._dues: list[int] = []
        self._size = 0  # entries held, cancelled ones included
        self._cancelled = 0  # cancellations seen since the last rebuild (an over-estimate)

    def __len__(self) -> int:
        return self._size

    def push(self, due: int, handle: Any) -> None:
        """Add ``handle`` due at ``due`` (after every handle already due then)."""
        bucket = self._buckets.get(due)
        if bucket is None:
            self._buckets[due] = [handle]
            heapq.heappush(self._dues, due)
        else:
            bucket.append(handle)
        self._size += 1

    def peek_due(self) -> int | None:
        """The earliest deadline that still has a live handle, or None."""
        dues, buckets = self._dues, self._buckets
        while dues:
            due = dues[0]
            bucket = buckets[due]
            dead = 0
            for handle in bucket:
                if not handle._cancelled:
                    break
                dead += 1
            if dead < len(bucket):
                if dead:  # trim the cancelled prefix so the next peek is O(1)
                    for handle in bucket[:dead]:
                        handle._scheduled = False
                    del bucket[:dead]
                    self._size -= dead
                return due
            heapq.heappop(dues)
            del buckets[due]
            for handle in bucket:
                handle._scheduled = False
            self._size -= len(bucket)
        return None

    def pop_until(self, now: int) -> list[Any]:
        """Remove and return every handle due at or before ``now``, in order (cancelled too)."""
        dues, buckets = self._dues, self._buckets
        if not dues or dues[0] > now:
            return []
        due = heapq.heappop(dues)
        out = buckets.pop(due)
        while dues and dues[0] <= now:
            out.extend(buckets.pop(heapq.heappop(dues)))
        self._size -= len(out)
        return out

    def note_cancelled(self) -> None:
        """A handle in the queue was cancelled; rebuild once most entries are dead."""
        self._cancelled += 1
        if self._cancelled > 64 and self._cancelled * 2 > self._size:
            self._rebuild(0, None)

    def rebase(self, shift: int, never: int, retime: Callable[[int, Any], None]) -> None:
        """Shift deadlines below ``never`` by ``shift``; ``retime(due, handle)`` each survivor."""
        self._rebuild(shift, never, retime)

    def _rebuild(
        self, shift: int, never: int | None, retime: Callable[[int, Any], None] | None = None
    ) -> None:
        buckets: dict[int, list[Any]] = {}
        size = 0
        for due, bucket in self._buckets.items():
            live = []
            for handle in bucket:
                if handle._cancelled:
                    handle._scheduled = False
                else:
                    live.append(handle)
            if not live:
                continue
            if never is not None and due < never:
                due += shift
            if retime is not None:
                for handle in live:
                    retime(due, handle)
            buckets[due] = live
            size += len(live)
        self._buckets = buckets
        self._dues = list(buckets)
        heapq.heapify(self._dues)
        self._size = size
        self._cancelled = 0

    def items(self) -> Iterator[tuple[int, Any]]:
        """Every (due, handle) held, live ones only, in no particular order."""
        for due, bucket in self._buckets.items():
            for handle in bucket:
                if not handle._cancelled:
                    yield due, handle

    def clear(self) -> None:
        """Forget everything."""
        self._buckets.clear()
        self._dues.clear()
        self._size = 0
        self._cancelled = 0
