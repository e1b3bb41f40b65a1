"""What the client's Kafka-backed objects share: use as `async with`, closed on exit."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncResource"]


class AsyncResource:
    """`async with` starts it (`start`) and closes it (`close`, told whether the body
    ended cleanly), whatever happened."""

    async def start(self) -> None:
        """Connect."""

    async def close(self, *, clean: bool) -> None:
        """Disconnect (`clean`: the `async with` body raised nothing)."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close(clean=exc_type is None)
