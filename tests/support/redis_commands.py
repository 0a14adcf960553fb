"""What the Redis server has answered: how a test tells a request that waited on a blocking
read from one that answered at once, without a stopwatch."""

import time

import pytest
from django.conf import settings

from agents.run_stream import run_events_client


def blocking_reads_answered() -> int:
    """The XREADs the server has answered so far. A blocking one counts when it returns (an event
    came, or its block ran out), not while it waits."""
    stats = run_events_client(settings.REDIS_URL).info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))


def clients_blocked() -> int:
    """Clients waiting in a blocking read now."""
    return int(run_events_client(settings.REDIS_URL).info("clients")["blocked_clients"])


def wait_until_blocked(*, more_than: int, timeout: float = 30) -> None:
    """Return once more than ``more_than`` clients wait in a blocking read: a request started
    in another thread has reached its wait. Fails the test if none does within ``timeout``."""
    deadline = time.monotonic() + timeout
    while clients_blocked() <= more_than:
        if time.monotonic() > deadline:
            pytest.fail(f"no request was waiting on Redis after {timeout} s")
        time.sleep(0.02)
