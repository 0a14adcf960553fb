"""A run's events as Server-Sent Events: live from the Redis Stream, or replayed from Postgres."""

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from django.db import connection
from redis.commands.core import Script

from agents import selectors
from agents.models import AgentRun
from agents.run_stream import (
    TERMINAL_EVENTS,
    RunEvent,
    run_event_get,
    run_events_client,
    run_events_read,
)
from agents.services import FINAL_EVENTS, message_event_data

logger = logging.getLogger(__name__)


def _sse(event: RunEvent) -> bytes:
    data = json.dumps(event.data, ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


REPLAYED_REPLY_ID, REPLAYED_FINAL_ID = "0-1", "0-2"


def _replayed_from_database(run: AgentRun) -> list[RunEvent]:
    """For a finished run whose live events have expired: its stored outcome."""
    reply = selectors.agent_run_reply(run=run)
    events = []
    if reply is not None:
        events.append(
            RunEvent(REPLAYED_REPLY_ID, "reply.stored", {"message": message_event_data(reply)})
        )
    events.append(
        RunEvent(
            REPLAYED_FINAL_ID, FINAL_EVENTS[AgentRun.Status(run.status)], {"status": run.status}
        )
    )
    return events


def run_stream_seen_to_the_end(*, run: AgentRun, after: str) -> bool:
    """The client's last event (``Last-Event-ID``) was the run's final one: nothing follows,
    and a client reconnecting again (as EventSource does) should be told so, not replayed."""
    if not run.is_finished or after in {"", "0"}:
        return False
    if after == REPLAYED_FINAL_ID:
        return True
    try:
        event = run_event_get(run_id=str(run.pk), event_id=after)
    except redis.RedisError:
        return False
    return event is not None and event.type in TERMINAL_EVENTS


def run_event_stream(*, run: AgentRun, after: str) -> Iterator[bytes]:
    """The run's events after ``after`` as SSE, until its final event (or the time limit).

    Postgres is asked whether the run finished only at the start and after a quiet heartbeat,
    never per event; a Redis failure ends the stream (the client resumes).
    """
    run_id = str(run.pk)
    # The request's own queries (authentication, the run) left a connection open: the stream
    # waits on Redis and writes to the client holding none, taking one only for its checks.
    release_database_connection()
    yield b"retry: 2000\n\n"
    deadline = time.monotonic() + settings.SSE_MAX_STREAM_SECONDS
    check_database = True
    try:
        while time.monotonic() < deadline:
            events = run_events_read(run_id=run_id, after=after)
            if not events and check_database:
                run.refresh_from_db(fields=["status", "finished_at"])
                if run.is_finished:
                    # Finished and nothing (more) live: the events expired. Re-read once:
                    # the final events may have landed between the two reads.
                    events = run_events_read(run_id=run_id, after=after) or _replay(run, after)
                release_database_connection()
                if run.is_finished and not events:
                    return
            if not events:
                heartbeat_ms = settings.SSE_HEARTBEAT_SECONDS * 1000
                events = run_events_read(run_id=run_id, after=after, block_ms=heartbeat_ms)
            check_database = not events
            if not events:
                yield b": keep-alive\n\n"
                continue
            for event in events:
                yield _sse(event)
                after = event.id
                if event.type in TERMINAL_EVENTS:
                    return
    except redis.RedisError:
        logger.warning("run_events.stream_broken", extra={"run_id": run_id})
    finally:
        release_database_connection()


class StreamSlots:
    """At most ``limit`` open streams per process, so streams never take every thread and
    ordinary requests always find one."""

    def __init__(self) -> None:
        self._open = 0
        self._lock = threading.Lock()

    def acquire(self, limit: int) -> bool:
        with self._lock:
            if self._open >= limit:
                return False
            self._open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._open -= 1


stream_slots = StreamSlots()


# In one step, so two requests cannot both take a user's last slot: drop the slots whose lease
# ran out (their process was killed, or never released them), count the rest, take one. Times
# are the Redis server's, in ms: the one clock every process shares. The set lapses with its
# last lease.
_TAKE_USER_SLOT = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
    return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
return 1
"""


@lru_cache(maxsize=4)
def _take_user_slot_script(url: str) -> Script:
    return run_events_client(url).register_script(_TAKE_USER_SLOT)


@dataclass(frozen=True)
class UserStreamSlot:
    user_id: int
    id: str

    @property
    def key(self) -> str:
        return user_stream_slots_key(user_id=self.user_id)


def user_stream_slots_key(*, user_id: int) -> str:
    """The user's open streams and waits: a sorted set of slot ids scored by lease expiry."""
    return f"beemanhoney:user-streams:{user_id}"


def user_stream_slot_take(*, user_id: int, seconds: float) -> UserStreamSlot | None:
    """One of the user's ``SSE_MAX_STREAMS_PER_USER`` slots, counted across every process, for
    a stream or wait of at most ``seconds``; None when the user holds them all.

    Raises ``redis.RedisError`` when Redis cannot be asked.
    """
    slot = UserStreamSlot(user_id=user_id, id=uuid.uuid4().hex)
    # A stream's last read may start just before its deadline and block for a heartbeat; a
    # slot held past its lease lapses early, which only lets its user open one more.
    lease_ms = int((seconds + 2 * settings.SSE_HEARTBEAT_SECONDS) * 1000)
    taken = _take_user_slot_script(settings.REDIS_URL)(
        keys=[slot.key], args=[settings.SSE_MAX_STREAMS_PER_USER, lease_ms, slot.id]
    )
    return slot if taken else None


def user_stream_slot_release(*, slot: UserStreamSlot) -> None:
    """Best-effort: a slot Redis could not be told about lapses with its lease."""
    try:
        run_events_client(settings.REDIS_URL).zrem(slot.key, slot.id)
    except redis.RedisError:
        logger.warning("run_events.user_slot_unreleased", extra={"user_id": slot.user_id})


class SlotHoldingStream:
    """Iterates a stream and frees its slots, the process's and the user's, when the server
    closes it, started or not."""

    def __init__(self, stream: Iterator[bytes], *, user_slot: UserStreamSlot) -> None:
        self._stream = stream
        self._user_slot = user_slot
        self._released = False

    def __iter__(self) -> "SlotHoldingStream":
        return self

    def __next__(self) -> bytes:
        return next(self._stream)

    def close(self) -> None:
        if not self._released:
            self._released = True
            stream_slots.release()
            user_stream_slot_release(slot=self._user_slot)
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


def release_database_connection() -> None:
    """An open stream (or a ``?wait``) waits on Redis, not Postgres: hold no database
    connection meanwhile, or every one open would pin one of the server's connections."""
    if not connection.in_atomic_block:
        connection.close()


def _replay(run: AgentRun, after: str) -> list[RunEvent]:
    replayed = _replayed_from_database(run)
    # After a live id, the client missed the outcome: replay it whole.
    return [e for e in replayed if e.id > after] if after.startswith("0-") else replayed
