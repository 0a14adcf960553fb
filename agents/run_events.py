"""Run-finished notifications over Redis pub/sub, so waiting clients are told, not polling."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)


def _channel(run_id: str) -> str:
    return f"beemanhoney:run-finished:{run_id}"


def run_finished_publish(*, run_id: str) -> None:
    # On failure waiters fall back to their own deadline and re-read the run.
    with contextlib.suppress(redis.RedisError):
        _client(settings.REDIS_URL).publish(_channel(run_id), b"1")


def run_finished_wait(*, run_id: str, timeout: float, is_finished: Callable[[], bool]) -> bool:
    """Block until the run finishes or ``timeout`` passes; True if it finished.

    Subscribes before checking the database, so a finish between the two is never missed.
    """
    if timeout <= 0:
        return is_finished()
    pubsub = _client(settings.REDIS_URL).pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(_channel(run_id))
        if is_finished():
            return True
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if pubsub.get_message(timeout=remaining) is not None:
                return True
        return is_finished()
    except redis.RedisError:
        return is_finished()
    finally:
        pubsub.close()
