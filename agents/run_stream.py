"""Each run's events in a Redis Stream: what it is doing, as it does it.

Events are kept for ``RUN_EVENTS_TTL_SECONDS`` and at most ``RUN_EVENTS_MAX_LENGTH`` per run;
the reply stored in Postgres stays the record. Readers resume after any event id they saw
(the SSE endpoint maps that to ``Last-Event-ID``), and waiting for a run blocks on the stream
(XREAD BLOCK), never polls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

from beemanhoney.common.text import storable_text

# A run deleted with its conversation (by its customer, staff or retention) ends with
# ``run.deleted``: there is nothing left to read, and the run's URLs answer 404.
RUN_DELETED = "run.deleted"
RUN_DELETED_DATA = {"status": "deleted"}
TERMINAL_EVENTS = frozenset({"run.finished", "run.failed", "run.cancelled", RUN_DELETED})


@dataclass(frozen=True)
class RunEvent:
    id: str
    type: str
    data: dict[str, Any]


@lru_cache(maxsize=4)
def run_events_client(url: str) -> redis.Redis:
    """Publishes and reads that do not block."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )


@lru_cache(maxsize=4)
def run_events_reader(url: str) -> redis.Redis:
    """Reads that block (XREAD BLOCK), for at most ``_most_blocked_ms()``: each open event
    stream holds one connection, so the pool must outsize the threads."""
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=_most_blocked_ms() / 1000 + settings.REDIS_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
        max_connections=settings.RUN_EVENTS_REDIS_MAX_CONNECTIONS,
    )


def _most_blocked_ms() -> int:
    # An event stream's reads block for a heartbeat; a longer wait is read in turns of that.
    return settings.SSE_HEARTBEAT_SECONDS * 1000


def _key(run_id: str) -> str:
    return f"beemanhoney:run-events:{run_id}"


def run_event_publish(*, run_id: str, type: str, data: dict[str, Any] | None = None) -> None:
    """Append an event; a broker outage loses the live event, never the stored reply."""
    run_event_publish_many(run_id=run_id, type=type, payloads=[data or {}])


def run_event_publish_many(*, run_id: str, type: str, payloads: list[dict[str, Any]]) -> None:
    """Append events of one type in one round trip (a chunk of text, cut into deltas).

    An event is never worth failing the turn for: text the model wrote may hold half a
    character, which UTF-8 cannot encode; it is published with U+FFFD in its place.
    """
    if not payloads:
        return
    with suppress(redis.RedisError, UnicodeError):
        pipe = run_events_client(settings.REDIS_URL).pipeline(transaction=False)
        for data in payloads:
            pipe.xadd(
                _key(run_id),
                {"type": type, "data": storable_text(json.dumps(data, ensure_ascii=False))},
                maxlen=settings.RUN_EVENTS_MAX_LENGTH,
                approximate=True,
            )
        pipe.expire(_key(run_id), settings.RUN_EVENTS_TTL_SECONDS)
        pipe.execute()


def runs_deleted_publish(*, run_ids: list[str]) -> None:
    """Tell whoever follows these runs that they were deleted, so no stream or ``?wait`` waits
    out its time on a run that is gone."""
    for run_id in run_ids:
        run_event_publish(run_id=run_id, type=RUN_DELETED, data=RUN_DELETED_DATA)


def run_events_forget(*, run_id: str) -> None:
    """Drop the run's events (a run queued again starts a new stream); best-effort, as they
    expire anyway."""
    with suppress(redis.RedisError):
        run_events_client(settings.REDIS_URL).delete(_key(run_id))


def _decode(entries: Any) -> list[RunEvent]:
    """A stream reply's entries. redis-py types replies as any protocol's shape; this client
    speaks RESP2, where they are ``[(id, {field: value})]``, all bytes."""
    return [
        RunEvent(
            id=entry_id.decode(),
            type=fields[b"type"].decode(),
            data=json.loads(fields[b"data"]),
        )
        for entry_id, fields in entries
    ]


def run_events_read(
    *, run_id: str, after: str = "0", block_ms: int | None = None
) -> list[RunEvent]:
    """Events after the id ``after`` ("0": from the start); with ``block_ms``, wait for some."""
    if block_ms is None:
        start = "-" if after in {"", "0"} else f"({after}"
        client = run_events_client(settings.REDIS_URL)
        return _decode(client.xrange(_key(run_id), min=start, count=500))
    block = max(1, min(block_ms, _most_blocked_ms()))
    reader = run_events_reader(settings.REDIS_URL)
    answer: Any = reader.xread({_key(run_id): after or "0"}, count=500, block=block)
    return _decode(answer[0][1]) if answer else []


def run_event_get(*, run_id: str, event_id: str) -> RunEvent | None:
    """The run's live event with this id, if it is still kept."""
    client = run_events_client(settings.REDIS_URL)
    events = _decode(client.xrange(_key(run_id), event_id, event_id, 1))
    return events[0] if events else None


def run_finished_wait(*, run_id: str, timeout: float, is_finished: Callable[[], bool]) -> bool:
    """Block until the run's stream shows a final event or ``timeout`` passes."""
    if is_finished():
        return True
    deadline = time.monotonic() + timeout
    after = "0"
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            for event in run_events_read(
                run_id=run_id, after=after, block_ms=int(remaining * 1000)
            ):
                after = event.id
                if event.type in TERMINAL_EVENTS:
                    return True
    except redis.RedisError:
        pass
    return is_finished()
