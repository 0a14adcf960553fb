"""Live run events over SSE: ordered, resumable with Last-Event-ID, replayable when done."""

import http.client
import json
import threading
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from agents.api.event_stream import run_event_stream
from agents.api.stream_slots import stream_slots
from agents.models import AgentRun
from agents.run_stream import _key, run_event_publish, run_events_client, run_events_read
from tests.agents.factories import AgentRunFactory
from tests.agents.shop import customer_in_small_shop, small_shop_create
from tests.conversations.factories import ConversationFactory, UserFactory
from tests.support.redis_commands import (
    blocking_reads_answered,
    clients_blocked,
    wait_until_blocked,
)

pytestmark = pytest.mark.django_db(transaction=True)


def parse_sse(raw: bytes) -> list[dict]:
    events = []
    for block in raw.decode().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "data" in fields:
            events.append(
                {"id": fields["id"], "type": fields["event"], "data": json.loads(fields["data"])}
            )
    return events


@pytest.fixture
def finished_run(celery_worker) -> tuple[APIClient, str, dict]:
    client, conversation = customer_in_small_shop()
    posted = client.post(
        f"/api/conversations/{conversation.id}/messages/",
        {"content": "Have you got something for a sore throat?"},
    ).json()
    run = client.get(f"/api/runs/{posted['run']['id']}/?wait=60").json()
    assert run["status"] == "succeeded"
    return client, posted["run"]["id"], run


def _events(client: APIClient, run_id: str, last_event_id: str | None = None) -> list[dict]:
    headers = {"Accept": "text/event-stream"}
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    response = client.get(f"/api/runs/{run_id}/events/", headers=headers)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response.streaming
    return parse_sse(response.getvalue())


def test_a_finished_run_replays_its_whole_stream_and_closes(finished_run) -> None:
    client, run_id, run = finished_run

    events = _events(client, run_id)

    types = [event["type"] for event in events]
    assert types[:4] == ["run.started", "route.chosen", "tool.called", "tool.result"]
    assert types[-2:] == ["reply.stored", "run.finished"]
    assert set(types[4:-2]) == {"text.delta"}
    assert len(types[4:-2]) > 1
    streamed = "".join(event["data"]["text"] for event in events if event["type"] == "text.delta")
    assert streamed.strip() == run["reply"]["content"].strip()
    stored = events[-2]["data"]["message"]
    assert stored == run["reply"]  # the API's message, as the API writes it (dates too)
    assert stored["cards"][0]["name"] in stored["content"]
    assert [event["id"] for event in events] == sorted(
        (event["id"] for event in events), key=lambda i: tuple(map(int, i.split("-")))
    )


@pytest.mark.parametrize("cut", [0, 3, 5])
def test_resuming_with_last_event_id_delivers_every_event_exactly_once(
    finished_run, cut: int
) -> None:
    client, run_id, _ = finished_run
    everything = _events(client, run_id)

    resumed = _events(client, run_id, last_event_id=everything[cut]["id"])

    assert everything[: cut + 1] + resumed == everything


def test_a_client_that_drops_mid_stream_reconnects_and_misses_nothing(
    live_server, celery_worker
) -> None:
    small_shop_create()
    conversation = ConversationFactory.create()
    token = str(RefreshToken.for_user(conversation.owner).access_token)
    api = APIClient()
    api.force_authenticate(conversation.owner)
    posted = api.post(
        f"/api/conversations/{conversation.id}/messages/", {"content": "Any beeswax wraps?"}
    ).json()
    path = f"/api/runs/{posted['run']['id']}/events/"
    host = urlsplit(live_server.url)

    def read(last_event_id: str | None, stop_after: int | None) -> list[dict]:
        connection = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        raw = b""
        # Every complete event ends with a blank line (the first block is the retry hint).
        while (stop_after is None or raw.count(b"\n\n") - 1 < stop_after) and (
            line := response.readline()
        ):
            raw += line
        connection.close()  # mid-stream when stop_after is set: the client drops
        return parse_sse(raw)

    first_part = read(None, stop_after=2)
    rest = read(first_part[-1]["id"], stop_after=None)
    everything = read(None, stop_after=None)

    assert len(first_part) == 2
    assert first_part + rest == everything
    assert everything[-1]["type"] == "run.finished"


def test_a_run_whose_live_events_expired_is_replayed_from_the_database(finished_run) -> None:
    client, run_id, run = finished_run
    run_events_client(settings.REDIS_URL).delete(_key(run_id))

    events = _events(client, run_id)

    assert [event["type"] for event in events] == ["reply.stored", "run.finished"]
    assert events[0]["data"]["message"]["content"] == run["reply"]["content"]


def test_a_rated_reply_replayed_from_the_database_carries_its_feedback(finished_run) -> None:
    client, run_id, run = finished_run
    reply = run["reply"]
    client.put(
        f"/api/conversations/{reply['conversation']}/messages/{reply['id']}/feedback/",
        {"rating": "helpful"},
        format="json",
    )
    run_events_client(settings.REDIS_URL).delete(_key(run_id))

    replayed = _events(client, run_id)[0]["data"]["message"]
    listed = client.get(f"/api/conversations/{reply['conversation']}/messages/").json()

    assert replayed["feedback"]["rating"] == "helpful"
    assert replayed == listed["results"][-1]


def test_a_client_that_had_the_final_event_is_told_204_not_replayed(finished_run) -> None:
    client, run_id, _ = finished_run

    def answer_after(last_event_id: str) -> tuple[int, bytes, str | None]:
        response = client.get(
            f"/api/runs/{run_id}/events/",
            HTTP_ACCEPT="text/event-stream",
            HTTP_LAST_EVENT_ID=last_event_id,
        )
        return response.status_code, response.content, response.get("Content-Type")

    after_live = answer_after(_events(client, run_id)[-1]["id"])
    run_events_client(settings.REDIS_URL).delete(_key(run_id))  # the live events expired
    after_replayed = answer_after(_events(client, run_id)[-1]["id"])

    assert after_live == after_replayed == (204, b"", None)


@pytest.mark.parametrize(
    "last_event_id",
    [
        "99999999999999999999-0",
        # Redis's largest id: Redis refuses to read after it (nothing could follow).
        "18446744073709551615-18446744073709551615",
    ],
)
def test_a_last_event_id_beyond_redis_ids_starts_from_the_beginning(
    finished_run, last_event_id: str
) -> None:
    client, run_id, _ = finished_run

    events = _events(client, run_id, last_event_id=last_event_id)

    assert [event["type"] for event in events][-2:] == ["reply.stored", "run.finished"]


def test_a_wait_with_every_stream_slot_taken_answers_at_once(settings) -> None:
    settings.SSE_MAX_STREAMS_PER_PROCESS = 0
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)
    client = APIClient()
    client.force_authenticate(conversation.owner)

    reads = blocking_reads_answered()
    answer = client.get(f"/api/runs/{run.pk}/?wait=20")

    assert answer.status_code == 200
    assert answer.json()["status"] == "queued"
    assert blocking_reads_answered() == reads  # answered at once: it never waited on Redis
    assert stream_slots._open == 0


def test_someone_elses_run_events_answer_404(finished_run) -> None:
    _, run_id, _ = finished_run
    stranger = APIClient()
    stranger.force_authenticate(UserFactory.create())

    response = stranger.get(f"/api/runs/{run_id}/events/", HTTP_ACCEPT="text/event-stream")

    assert response.status_code == 404
    # Asked for a stream, told why not in JSON, as every API error is told.
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_streams_past_the_per_process_cap_answer_503_and_slots_are_freed(
    finished_run, settings
) -> None:
    client, run_id, _ = finished_run
    _events(client, run_id)
    settings.SSE_MAX_STREAMS_PER_PROCESS = 0

    refused = client.get(f"/api/runs/{run_id}/events/", HTTP_ACCEPT="text/event-stream")

    assert stream_slots._open == 0
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "2"


def test_a_stream_that_found_events_holds_no_database_connection_while_it_waits(
    settings,
) -> None:
    settings.SSE_HEARTBEAT_SECONDS = 1
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)
    run_event_publish(run_id=str(run.pk), type="run.started", data={"delivery": 1})
    stream = run_event_stream(run=run, after="")
    retry_hint, started = next(stream), next(stream)

    # The run has said nothing more: the stream waits on Redis for a heartbeat, and nothing
    # uses the database between that wait and the keep-alive it sends after it.
    keep_alive = next(stream)

    assert retry_hint.startswith(b"retry:")
    assert b"event: run.started" in started
    assert keep_alive == b": keep-alive\n\n"
    assert connection.connection is None


def _database_now() -> Any:
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        return cursor.fetchone()[0]


def _connections_opened_since(database: str, since: Any) -> int:
    """Connections to ``database`` opened at or after ``since`` and open still: not a count of
    all of them, which another test's connection closing meanwhile made one fewer (CI)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid() AND backend_start >= %s",
            [database, since],
        )
        return cursor.fetchone()[0]


def test_a_wait_holds_no_database_connection_while_it_waits() -> None:
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)
    client = APIClient()
    client.force_authenticate(conversation.owner)
    database = connection.settings_dict["NAME"]
    started = _database_now()
    answers = []

    def wait_for_the_run() -> None:
        try:
            answers.append(client.get(f"/api/runs/{run.pk}/?wait=20"))
        finally:
            connection.close()  # this thread's own, which would outlive the test database

    waiting = threading.Thread(target=wait_for_the_run)
    blocked = clients_blocked()

    waiting.start()
    wait_until_blocked(more_than=blocked)  # the request has read the run and waits on Redis
    during = _connections_opened_since(database, started)
    AgentRun.objects.filter(pk=run.pk).update(status=AgentRun.Status.CANCELLED)
    run_event_publish(run_id=str(run.pk), type="run.cancelled", data={})
    waiting.join(timeout=30)

    assert during == 0
    assert answers[0].json()["status"] == "cancelled"


def test_an_event_holding_half_a_character_is_published_with_a_replacement() -> None:
    run_id = str(uuid.uuid4())

    run_event_publish(run_id=run_id, type="text.delta", data={"text": "manuka \ud83d"})

    events = run_events_read(run_id=run_id)
    assert [event.data for event in events] == [{"text": "manuka \ufffd"}]
    run_events_client(settings.REDIS_URL).delete(_key(run_id))


def test_a_wait_on_a_run_deleted_meanwhile_with_its_conversation_answers_404() -> None:
    run = AgentRunFactory.create()
    client = APIClient()
    client.force_authenticate(run.conversation.owner)
    answers = []

    def wait_for_the_run() -> None:
        try:
            answers.append(client.get(f"/api/runs/{run.pk}/?wait=3"))
        finally:
            connection.close()

    waiting = threading.Thread(target=wait_for_the_run)
    blocked = clients_blocked()
    waiting.start()
    wait_until_blocked(more_than=blocked)
    run.conversation.delete()  # as staff do in the admin: no event tells the waiting request
    waiting.join(timeout=30)

    assert answers[0].status_code == 404


def test_a_stream_of_a_run_deleted_meanwhile_ends_with_run_deleted(settings) -> None:
    settings.SSE_HEARTBEAT_SECONDS = 1
    run = AgentRunFactory.create()
    stream = run_event_stream(run=run, after="")
    next(stream)  # the retry hint
    run.conversation.delete()  # as staff do in the admin: no event is published

    rest = parse_sse(b"".join(stream))

    assert [event["type"] for event in rest] == ["run.deleted"]
    assert rest[0]["data"] == {"status": "deleted"}


def test_a_stream_goes_on_through_a_database_it_cannot_reach_and_ends_with_the_run(
    settings,
) -> None:
    settings.SSE_HEARTBEAT_SECONDS = 1
    run = AgentRunFactory.create()
    stream = run_event_stream(run=run, after="")
    next(stream)  # the retry hint
    reachable = connection.settings_dict["HOST"]
    connection.settings_dict["HOST"] = "/nonexistent"  # restarting: nothing listens

    try:
        keep_alive = next(stream)  # its check of the run failed; it waited on Redis
    finally:
        connection.settings_dict["HOST"] = reachable
    run_event_publish(run_id=str(run.pk), type="run.finished", data={"status": "succeeded"})
    rest = parse_sse(b"".join(stream))

    assert keep_alive == b": keep-alive\n\n"
    assert [event["type"] for event in rest] == ["run.finished"]
