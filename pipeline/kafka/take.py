"""Batches of events from a Faust stream that do not wait when nothing more is queued.

Why not `stream.take_events(max_, within)`: it returns a batch only when `max_` events came
or `within` seconds passed. Below saturation no batch fills, so every agent holds every
event for the whole `within`, and three agents in a row add three times that to an
incident's latency. `take_ready` is the same loop (Faust's own code, faust-streaming
0.15, with its acknowledgement rules: a batch's events are acknowledged after the body
that received them ran) with one more reason to hand a batch over: the stream's queue is
empty, so nothing more is waiting. Under load the queue fills while a batch is being
processed and the next batch is as large as what waited ("natural batching"); with a
trickle, each event goes on at once. `within` still bounds the wait while the queue
keeps delivering.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

from mode.utils.aiter import aiter
from mode.utils.futures import notify

__all__ = ["take_ready"]


def take_ready(stream: Any, max_: int, within: float) -> AsyncGenerator[list[Any], None]:
    """Yield lists of up to `max_` events: when `max_` are buffered, when the stream's queue
    runs empty, or after `within` seconds, whichever comes first."""
    batches = _take_ready(stream, max_, within)
    stream._active_agens.add(batches)  # as Faust's take(): the stream closes it on stop
    return batches


async def _take_ready(stream: Any, max_: int, within: float) -> AsyncGenerator[list[Any], None]:  # noqa: C901  # Faust's loop, kept whole
    buffer: list[Any] = []
    events: list[Any] = []
    buffer_full = asyncio.Event()  # max_ reached, or the queue ran empty
    buffer_consumed = asyncio.Event()
    buffer_consuming: asyncio.Future[Any] | None = None
    stream_enable_acks: bool = stream.enable_acks
    channel_it: Any = aiter(stream.channel)
    queue = channel_it.queue

    async def add_to_buffer(value: Any) -> Any:
        nonlocal buffer_consuming
        try:
            if buffer_consuming is not None:  # a batch is being processed: wait for it
                try:
                    await buffer_consuming
                finally:
                    buffer_consuming = None
            buffer.append(value)
            event = stream.current_event
            if event is None:
                msg = "take buffer found current_event is None"
                raise RuntimeError(msg)
            events.append(event)
            if len(buffer) >= max_:
                buffer_full.set()
                buffer_consumed.clear()
                await stream.wait(buffer_consumed)  # never more than max_ in a batch
            elif queue.empty():
                buffer_full.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False  # this loop acknowledges, after the body ran
    stream.add_processor(add_to_buffer)
    stream._enable_passive(channel_it)
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(buffer_full, timeout=within)
            if buffer:
                buffer_consuming = stream.loop.create_future()
                try:
                    yield list(events)
                finally:
                    buffer.clear()
                    for event in events:
                        await stream.ack(event)
                    events.clear()
                    notify(buffer_consuming)
                    buffer_full.clear()
                    buffer_consumed.set()
            else:
                buffer_full.clear()
    finally:
        stream.enable_acks = stream_enable_acks
        stream._processors.remove(add_to_buffer)
