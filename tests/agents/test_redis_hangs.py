"""Redis hangs (it takes connections and answers nothing): requests and turns go on, late."""

import pytest
import redis
from rest_framework.test import APIClient

from agents.models import AgentRun
from agents.run_stream import run_event_publish, run_events_client, run_events_read
from tests.conversations.factories import ConversationFactory
from tests.support.celery_worker import new_queue_name, producing_to_broker, tasks_sent_to
from tests.support.hung_redis import hung_redis, returns_within

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_message_posted_while_the_broker_hangs_is_answered_and_left_for_the_sweeper() -> None:
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)

    with hung_redis() as url, producing_to_broker(url), tasks_sent_to(new_queue_name("hung")):
        response = returns_within(
            60,
            lambda: client.post(
                f"/api/conversations/{conversation.id}/messages/", {"content": "Any candles?"}
            ),
        )

    assert response.status_code == 202
    run = AgentRun.objects.get(pk=response.json()["run"]["id"])
    # Not dispatched: the sweeper sends it when the broker answers again.
    assert (run.status, run.dispatched_at) == ("queued", None)


def test_an_event_published_while_redis_hangs_is_lost_not_waited_for(settings) -> None:
    with hung_redis() as url:
        settings.REDIS_URL = url

        returns_within(60, lambda: run_event_publish(run_id="hung", type="run.started"))

        # What let it return: a publish gives up after the socket timeout, and never raises.
        client = run_events_client(url).connection_pool.connection_kwargs
        assert client["socket_timeout"] == settings.REDIS_SOCKET_TIMEOUT_SECONDS > 0


def test_a_blocking_read_while_redis_hangs_fails_after_its_block(settings) -> None:
    settings.SSE_HEARTBEAT_SECONDS = 1
    with hung_redis() as url:
        settings.REDIS_URL = url

        with pytest.raises(redis.TimeoutError):
            # Asked to block for ten minutes: it blocks a heartbeat at most (and the timeout).
            returns_within(60, lambda: run_events_read(run_id="hung", block_ms=600_000))
