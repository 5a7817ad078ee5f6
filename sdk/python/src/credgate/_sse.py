"""Server-sent events from a streamed response, as they arrive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator, Iterator, List, Optional

import httpx

__all__ = ["ServerSentEvent", "aiter_sse", "iter_sse"]


@dataclass
class ServerSentEvent:
    """One event: ``data`` joins the event's data lines with newlines."""

    data: str
    event: str = "message"
    id: Optional[str] = None


class _Decoder:
    def __init__(self) -> None:
        self.data: List[str] = []
        self.event = "message"
        self.id: Optional[str] = None

    def feed(self, line: str) -> Optional[ServerSentEvent]:
        if line == "":
            if not self.data:
                self.event = "message"
                return None
            event = ServerSentEvent(data="\n".join(self.data), event=self.event, id=self.id)
            self.data, self.event = [], "message"
            return event
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "data":
            self.data.append(value)
        elif field == "event":
            self.event = value
        elif field == "id":
            self.id = value
        return None


async def aiter_sse(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """Yields each event of an async streamed response as soon as it is complete."""
    decoder = _Decoder()
    async for line in response.aiter_lines():
        event = decoder.feed(line.rstrip("\r"))
        if event is not None:
            yield event


def iter_sse(response: httpx.Response) -> Iterator[ServerSentEvent]:
    """Yields each event of a streamed response as soon as it is complete."""
    decoder = _Decoder()
    for line in response.iter_lines():
        event = decoder.feed(line.rstrip("\r"))
        if event is not None:
            yield event
