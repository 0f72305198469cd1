"""Reading Animate and Speak response streams: a FrameBatch unpacked into its frames, so a caller sees
one ("frame", VideoFrame) item a frame whether the server sent frames one a message (the default) or in
batches (AnimateConfig / SpeakRequest.max_frames_per_message > 1).

    for kind, value in items(client.animate_stream(...)):   # kind: "started", "frame", "ended", "audio"
        ...
    async for kind, value in aitems(stub.Animate(requests())):
        ...
"""
from __future__ import annotations

from typing import Any, AsyncIterable, AsyncIterator, Iterable, Iterator

Item = tuple[str, Any]


def items_of(msg) -> list[Item]:
    """One AnimateResponse or SpeakResponse as (kind, payload) items: a batch gives one "frame" item a
    frame, in order; any other message one item named by its oneof member (None for an empty one)."""
    kind = msg.WhichOneof("message")
    if kind == "frames":
        return [("frame", f) for f in msg.frames.frames]
    return [(kind, getattr(msg, kind) if kind else None)]


def items(responses: Iterable) -> Iterator[Item]:
    """The items of a blocking response stream (a grpc call object or a list of messages)."""
    for msg in responses:
        yield from items_of(msg)


async def aitems(responses: AsyncIterable) -> AsyncIterator[Item]:
    """The items of a grpc.aio response stream."""
    async for msg in responses:
        for item in items_of(msg):
            yield item


def frames(responses: Iterable) -> list:
    """Every VideoFrame of a finished response stream, in order."""
    return [value for kind, value in items(responses) if kind == "frame"]
