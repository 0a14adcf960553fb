"""A run's events as Server-Sent Events: live from the Redis Stream, or replayed from Postgres."""

import json
import time
from collections.abc import Iterator

from django.conf import settings
from django.db import connection

from agents import selectors
from agents.models import AgentRun
from agents.run_stream import TERMINAL_EVENTS, RunEvent, run_events_read
from agents.services import FINAL_EVENTS, message_event_data


def _sse(event: RunEvent) -> bytes:
    data = json.dumps(event.data, ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


def _replayed_from_database(run: AgentRun) -> list[RunEvent]:
    """For a finished run whose live events have expired: its stored outcome."""
    reply = selectors.agent_run_reply(run=run)
    events = []
    if reply is not None:
        events.append(RunEvent("0-1", "reply.stored", {"message": message_event_data(reply)}))
    events.append(
        RunEvent("0-2", FINAL_EVENTS[AgentRun.Status(run.status)], {"status": run.status})
    )
    return events


def run_event_stream(*, run: AgentRun, after: str) -> Iterator[bytes]:
    """The run's events after ``after`` as SSE, until its final event (or the time limit)."""
    run_id = str(run.pk)
    yield b"retry: 2000\n\n"
    deadline = time.monotonic() + settings.SSE_MAX_STREAM_SECONDS
    while time.monotonic() < deadline:
        events = run_events_read(run_id=run_id, after=after)
        if not events:
            run.refresh_from_db(fields=["status", "finished_at"])
            _release_database_connection()
            if run.is_finished:
                # Finished, and nothing (more) live: the events expired. Re-read once, since
                # the final events may have landed between the two reads.
                events = run_events_read(run_id=run_id, after=after) or _replay(run, after)
                if not events:
                    return
            else:
                events = run_events_read(
                    run_id=run_id, after=after, block_ms=settings.SSE_HEARTBEAT_SECONDS * 1000
                )
        if not events:
            yield b": keep-alive\n\n"
            continue
        for event in events:
            yield _sse(event)
            after = event.id
            if event.type in TERMINAL_EVENTS:
                return


def _release_database_connection() -> None:
    """An open stream waits on Redis, not Postgres: hold no database connection meanwhile,
    or every open stream would pin one of the server's connections."""
    if not connection.in_atomic_block:
        connection.close()


def _replay(run: AgentRun, after: str) -> list[RunEvent]:
    replayed = _replayed_from_database(run)
    # After a live id, the client missed the outcome: replay it whole.
    return [e for e in replayed if e.id > after] if after.startswith("0-") else replayed
