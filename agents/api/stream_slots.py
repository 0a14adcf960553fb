"""Slots for open event streams and waits: at most so many per process (threads) and per user
(every process, counted in Redis), each freed when its stream closes."""

import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from redis.commands.core import Script

from agents.run_stream import run_events_client

logger = logging.getLogger(__name__)


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


class StreamSlotsFull(Exception):
    """No slot to take: the user holds all of theirs (``per_user``), or this process is full."""

    def __init__(self, *, per_user: bool) -> None:
        super().__init__()
        self.per_user = per_user


def slots_take(*, user_id: int, seconds: float) -> UserStreamSlot:
    """One of the user's slots, then one of the process's, for a stream or wait of at most
    ``seconds``: both, or neither (``StreamSlotsFull``). Raises ``redis.RedisError`` when Redis
    cannot be asked."""
    user_slot = user_stream_slot_take(user_id=user_id, seconds=seconds)
    if user_slot is None:
        raise StreamSlotsFull(per_user=True)
    if not stream_slots.acquire(settings.SSE_MAX_STREAMS_PER_PROCESS):
        user_stream_slot_release(slot=user_slot)
        raise StreamSlotsFull(per_user=False)
    return user_slot


def slots_release(*, slot: UserStreamSlot) -> None:
    """Free what ``slots_take`` took."""
    stream_slots.release()
    user_stream_slot_release(slot=slot)


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
            slots_release(slot=self._user_slot)
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()
