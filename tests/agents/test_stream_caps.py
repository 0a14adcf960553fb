"""Each user holds at most SSE_MAX_STREAMS_PER_USER event streams and waits, across processes."""

import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.http.response import HttpResponseBase
from rest_framework.test import APIClient

from agents.api.stream_slots import stream_slots, user_stream_slot_take, user_stream_slots_key
from agents.models import AgentRun
from agents.run_stream import run_event_publish, run_events_client
from tests.agents.factories import AgentRunFactory
from tests.conversations.factories import UserFactory
from tests.support.redis_commands import blocking_reads_answered

pytestmark = pytest.mark.django_db(transaction=True)

TOO_MANY = "Too many event streams and waits open for this account; close one or retry shortly."


def _held(user: User) -> int:
    return run_events_client(settings.REDIS_URL).zcard(user_stream_slots_key(user_id=user.pk))


@pytest.fixture
def customer() -> Iterator[Callable[[], User]]:
    """Customers whose slots start empty: another test session's user of the same id may
    have left some, and these leave none."""
    made: list[User] = []

    def make() -> User:
        user = UserFactory.create()
        run_events_client(settings.REDIS_URL).delete(user_stream_slots_key(user_id=user.pk))
        made.append(user)
        return user

    yield make
    for user in made:
        run_events_client(settings.REDIS_URL).delete(user_stream_slots_key(user_id=user.pk))


@pytest.fixture
def stream() -> Iterator[Callable[[User], HttpResponseBase]]:
    """Opens an event stream of a new unfinished run and leaves it open (nothing reads it)
    until the test ends, as a browser tab would."""
    opened: list[HttpResponseBase] = []

    def open_stream(user: User) -> HttpResponseBase:
        client = APIClient()
        client.force_authenticate(user)
        run = AgentRunFactory.create(conversation__owner=user)
        response = client.get(f"/api/runs/{run.pk}/events/", HTTP_ACCEPT="text/event-stream")
        opened.append(response)
        return response

    yield open_stream
    for response in opened:
        response.close()


def _wait(user: User, run: AgentRun) -> tuple[str, int]:
    """A wait of up to 20 s on ``run``: the status it answered, and the blocking reads the
    server answered meanwhile (none: it answered at once, without waiting)."""
    client = APIClient()
    client.force_authenticate(user)
    reads = blocking_reads_answered()
    answer = client.get(f"/api/runs/{run.pk}/?wait=20")
    assert answer.status_code == 200
    return answer.json()["status"], blocking_reads_answered() - reads


def test_a_users_fifth_stream_is_refused_while_another_users_first_opens(customer, stream) -> None:
    guest, neighbour = customer(), customer()
    opened = [stream(guest).status_code for _ in range(4)]

    refused = stream(guest)
    neighbours = stream(neighbour)

    assert opened == [200, 200, 200, 200]
    assert refused.status_code == 429
    assert json.loads(refused.content) == {"detail": TOO_MANY, "code": "too_many_streams"}
    assert refused.headers["Retry-After"] == str(settings.SSE_HEARTBEAT_SECONDS)
    assert neighbours.status_code == 200
    assert neighbours.streaming


def test_a_head_of_a_stream_answers_its_headers_and_takes_no_slot(customer) -> None:
    guest = customer()
    client = APIClient()
    client.force_authenticate(guest)
    run = AgentRunFactory.create(conversation__owner=guest)
    url = f"/api/runs/{run.pk}/events/"

    heads = [client.head(url, HTTP_ACCEPT="text/event-stream") for _ in range(5)]

    assert [(head.status_code, head["Content-Type"]) for head in heads] == [
        (200, "text/event-stream")
    ] * 5
    assert not any(head.streaming for head in heads)
    assert _held(guest) == 0


def test_a_stream_closed_or_run_to_its_end_frees_its_slot(customer, stream, settings) -> None:
    settings.SSE_MAX_STREAM_SECONDS = 0  # streams end as soon as they are read
    guest = customer()
    for response in [stream(guest) for _ in range(4)]:
        assert response.getvalue() == b"retry: 2000\n\n"
    settings.SSE_MAX_STREAM_SECONDS = 300
    left_open = [stream(guest) for _ in range(4)]
    refused = stream(guest)

    left_open[0].close()
    reopened = stream(guest)

    assert [response.status_code for response in left_open] == [200, 200, 200, 200]
    assert refused.status_code == 429
    assert reopened.status_code == 200


def test_the_slots_of_a_process_killed_with_streams_open_lapse(customer, stream, settings) -> None:
    settings.SSE_HEARTBEAT_SECONDS = 1  # leases of the stream's time and 2 s
    guest = customer()
    live = stream(guest)
    # Another process took these, and was killed before it could release them.
    for _ in range(3):
        assert user_stream_slot_take(user_id=guest.pk, seconds=1) is not None

    refused = stream(guest)
    time.sleep(3.5)
    after_the_lease = stream(guest)

    assert live.status_code == 200
    assert refused.status_code == 429
    assert after_the_lease.status_code == 200
    assert _held(guest) == 2


def test_waits_and_streams_share_the_users_slots(customer, stream) -> None:
    guest = customer()
    waited_run = AgentRunFactory.create(conversation__owner=guest)
    answers: list[tuple[str, int]] = []

    def wait_elsewhere() -> None:
        answers.append(_wait(guest, waited_run))
        connection.close()  # the thread's own, which would keep the test database in use

    waiting = threading.Thread(target=wait_elsewhere)
    waiting.start()
    deadline = time.monotonic() + 10
    while _held(guest) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    opened = [stream(guest).status_code for _ in range(3)]

    refused = stream(guest)
    at_once = _wait(guest, AgentRunFactory.create(conversation__owner=guest))
    AgentRun.objects.filter(pk=waited_run.pk).update(status=AgentRun.Status.CANCELLED)
    run_event_publish(run_id=str(waited_run.pk), type="run.cancelled", data={})
    waiting.join(timeout=30)
    after_the_wait = stream(guest)

    assert opened == [200, 200, 200]
    assert refused.status_code == 429
    assert at_once == ("queued", 0)
    assert answers[0][0] == "cancelled"
    assert after_the_wait.status_code == 200


def test_a_stream_or_wait_refused_by_a_full_process_keeps_no_user_slot(
    customer, stream, settings
) -> None:
    settings.SSE_MAX_STREAMS_PER_PROCESS = 0
    guest = customer()
    busy = [stream(guest) for _ in range(5)]
    waits = [_wait(guest, AgentRunFactory.create(conversation__owner=guest)) for _ in range(5)]
    held_meanwhile = _held(guest)
    settings.SSE_MAX_STREAMS_PER_PROCESS = 24

    opened = [stream(guest).status_code for _ in range(4)]
    refused = stream(guest)

    assert [response.status_code for response in busy] == [503] * 5
    assert waits == [("queued", 0)] * 5
    assert held_meanwhile == 0
    assert opened == [200, 200, 200, 200]
    assert refused.status_code == 429


def test_with_redis_unreachable_a_stream_is_503_and_a_wait_answers_at_once(
    customer, stream, settings
) -> None:
    guest = customer()
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

    refused = stream(guest)
    client = APIClient()
    client.force_authenticate(guest)
    run = AgentRunFactory.create(conversation__owner=guest)
    waited = client.get(f"/api/runs/{run.pk}/?wait=20")

    assert (refused.status_code, refused.json()["code"]) == (503, "events_unavailable")
    assert refused.headers["Retry-After"] == "2"
    assert (waited.status_code, waited.json()["status"]) == (200, "queued")
    assert stream_slots._open == 0


def test_requests_racing_for_a_users_slots_take_no_more_than_the_limit(customer) -> None:
    guest = customer()
    start = threading.Barrier(12)
    taken: list[bool] = []

    def take() -> None:
        start.wait()
        taken.append(user_stream_slot_take(user_id=guest.pk, seconds=60) is not None)

    racers = [threading.Thread(target=take) for _ in range(12)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=30)

    assert sorted(taken) == [False] * 8 + [True] * 4
    assert _held(guest) == 4
