"""Small pieces of the MCP connection: a read stream that reports its end, and exception
text for the model.

:class:`EofWatch` wraps the transport's read stream before ``ClientSession`` gets it: when
the stream ends (the server's stdout reached EOF, or the transport closed it), it calls
``on_end`` once. That is how an idle server's crash is noticed without a call in flight.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

import anyio
from mcp.shared._stream_protocols import ReadStream

__all__ = ["EofWatch", "describe"]

T = TypeVar("T")


class EofWatch(Generic[T]):
    """A ``ReadStream`` that delegates to ``inner`` and calls ``on_end`` when it ends."""

    def __init__(self, inner: ReadStream[T], on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end

    async def receive(self) -> T:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._on_end()
            raise

    def __aiter__(self) -> EofWatch[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> EofWatch[T]:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc_val: BaseException | None, exc_tb: TracebackType | None) -> bool | None:
        await self.aclose()
        return None


def describe(exc: BaseException) -> str:
    """``Type: message`` of the first leaf of ``exc`` (exception groups unwrapped)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
