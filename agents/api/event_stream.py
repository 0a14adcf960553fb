"""A run's events as Server-Sent Events: live from the Redis Stream, or replayed from Postgres."""

import json
import logging
import time
from collections.abc import Iterator

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from rest_framework.utils.encoders import JSONEncoder

from agents import selectors
from agents.api.serializers import MessageOutputSerializer
from agents.models import AgentRun
from agents.run_stream import (
    RUN_DELETED,
    RUN_DELETED_DATA,
    TERMINAL_EVENTS,
    RunEvent,
    run_event_get,
    run_events_read,
)
from agents.services import FINAL_EVENTS

logger = logging.getLogger(__name__)


def _sse(event: RunEvent) -> bytes:
    # DRF's encoder: a replayed reply is the API's serialised message (UUIDs as they are).
    data = json.dumps(event.data, ensure_ascii=False, cls=JSONEncoder)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


REPLAYED_REPLY_ID, REPLAYED_FINAL_ID, DELETED_ID = "0-1", "0-2", "0-3"
# For a run found gone with no ``run.deleted`` on its stream (deleted in the admin).
DELETED = RunEvent(DELETED_ID, RUN_DELETED, RUN_DELETED_DATA)


def _replayed_from_database(run: AgentRun) -> list[RunEvent]:
    """For a finished run whose live events have expired: its stored outcome, the reply as the
    API shows it now (with the customer's feedback on it, if any)."""
    reply = selectors.agent_run_reply(run=run)
    events = []
    if reply is not None:
        message = MessageOutputSerializer(reply).data
        events.append(RunEvent(REPLAYED_REPLY_ID, "reply.stored", {"message": message}))
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
    never per event, and a check it cannot answer is left to the next; a Redis failure ends
    the stream (the client resumes).
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
                try:
                    run.refresh_from_db(fields=["status", "finished_at"])
                except AgentRun.DoesNotExist:
                    yield _sse(DELETED)
                    return
                except DatabaseError:
                    # Restarting, say: the events are in Redis, so the stream goes on, and
                    # asks again after its next quiet heartbeat (it was cut off here).
                    logger.warning("run_events.run_unreadable", extra={"run_id": run_id})
                else:
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


def release_database_connection() -> None:
    """An open stream (or a ``?wait``) waits on Redis, not Postgres: hold no database
    connection meanwhile, or every one open would pin one of the server's connections."""
    if not connection.in_atomic_block:
        connection.close()


def _replay(run: AgentRun, after: str) -> list[RunEvent]:
    replayed = _replayed_from_database(run)
    # After a live id, the client missed the outcome: replay it whole.
    return [e for e in replayed if e.id > after] if after.startswith("0-") else replayed
