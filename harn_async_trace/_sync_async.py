"""``SyncAsyncContext``: ``async with x`` does exactly what ``with x`` does.

For context managers whose enter and exit never wait (a span, a mock clock):
the async protocol is the sync one, written once here. This module imports
nothing of the package, so every floor may use it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, TypeVar

__all__ = ("SyncAsyncContext",)

_T_co = TypeVar("_T_co", covariant=True)


class _SyncContext(Protocol[_T_co]):
    def __enter__(self) -> _T_co: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> object: ...


class SyncAsyncContext:
    """Mixin: ``__aenter__``/``__aexit__`` delegate to ``__enter__``/``__exit__``.

    Example:
        >>> import asyncio
        >>> class Box(SyncAsyncContext):
        ...     def __enter__(self) -> str:
        ...         return "in"
        ...     def __exit__(self, *exc: object) -> None:
        ...         pass
        >>> async def main() -> str:
        ...     async with Box() as value:
        ...         return value
        >>> asyncio.run(main())
        'in'
    """

    __slots__ = ()

    async def __aenter__(self: _SyncContext[_T_co]) -> _T_co:
        return self.__enter__()

    async def __aexit__(
        self: _SyncContext[object],
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)
