"""The OpenAI path for real: ChatOpenAI in a worker talks to a loopback OpenAI-compatible server."""

import json
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from agents.models import AgentRun
from conversations.models import Conversation
from tests.agents.shop import small_shop_create
from tests.conversations.factories import ConversationFactory
from tests.support.celery_worker import (
    WorkerProcess,
    new_queue_name,
    openai_worker_env,
    tasks_sent_to,
)
from tests.support.fake_openai import ChatText, ChatToolCalls, FakeOpenAIServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def openai_server(loopback_server: FakeOpenAIServer) -> FakeOpenAIServer:
    loopback_server.reset()
    return loopback_server


@pytest.fixture(scope="module")
def openai_worker(
    loopback_server, test_broker_url: str, django_db_setup, django_db_blocker
) -> Iterator[None]:
    """A worker configured for the OpenAI provider, on a queue of its own."""
    queue = new_queue_name("openai")
    worker = WorkerProcess(
        broker_url=test_broker_url,
        queue=queue,
        extra_env=openai_worker_env(
            loopback_server.base_url,
            OPENAI_CHAT_MODEL="gpt-test-mini",
            MODEL_PRICES_JSON='{"gpt-test-mini": {"prompt": 1.0, "completion": 2.0}}',
        ),
    )
    with django_db_blocker.unblock():
        worker.start()
    with tasks_sent_to(queue):
        yield
    worker.stop()


@pytest.fixture
def customer(openai_worker) -> tuple[APIClient, Conversation]:
    small_shop_create()
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)
    return client, conversation


def _turn(client: APIClient, conversation: Conversation, content: str) -> dict:
    posted = client.post(f"/api/conversations/{conversation.id}/messages/", {"content": content})
    return client.get(f"/api/runs/{posted.json()['run']['id']}/?wait=60").json()


def test_a_tool_call_runs_and_its_trace_and_usage_are_stored(customer, openai_server) -> None:
    client, conversation = customer
    openai_server.script_chat(
        ChatToolCalls([("route_conversation", {"route": "sales"})], prompt_tokens=50),
        ChatToolCalls([("search_products", {"query": "sore throat"})], prompt_tokens=80),
        ChatText("Try our Manuka Honey UMF 15+ 250g at £44.95.", prompt_tokens=120),
    )

    run = _turn(client, conversation, "Something for a sore throat?")

    stored = AgentRun.objects.get(pk=run["id"])
    assert run["status"] == "succeeded"
    assert run["reply"]["content"] == "Try our Manuka Honey UMF 15+ 250g at £44.95."
    assert stored.route == "sales"
    assert stored.provider == "openai"
    assert stored.model_name == "gpt-test-mini"
    assert stored.tool_calls[0]["tool"] == "search_products"
    assert stored.tool_calls[0]["args"] == {"query": "sore throat"}
    assert "MAN-15" in stored.tool_calls[0]["result"]
    assert stored.prompt_tokens == 50 + 80 + 120
    assert stored.completion_tokens == 3 * 5
    assert stored.model_calls == 3
    assert str(stored.cost_usd) == "0.000280"
    requests = openai_server.chat_requests()
    assert [r.json["model"] for r in requests] == ["gpt-test-mini"] * 3
    assert requests[0].json["tool_choice"]["function"]["name"] == "route_conversation"
    tool_message = next(m for m in requests[2].json["messages"] if m["role"] == "tool")
    assert json.loads(tool_message["content"])["products"][0]["sku"] == "MAN-15"


def test_the_model_sees_the_conversation_history(customer, openai_server) -> None:
    client, conversation = customer
    openai_server.script_chat(
        ChatToolCalls([("route_conversation", {"route": "sales"})]),
        ChatText("We have Manuka Honey UMF 15+ 250g and Buckwheat Raw Honey 340g."),
        ChatToolCalls([("route_conversation", {"route": "sales"})]),
        ChatText("Yes, Buckwheat Raw Honey 340g is in stock."),
    )

    _turn(client, conversation, "What honeys do you have?")
    _turn(client, conversation, "Is the second one in stock?")

    last_request = openai_server.chat_requests()[-1].json["messages"]
    contents = [m.get("content") for m in last_request]
    assert "What honeys do you have?" in contents
    assert "We have Manuka Honey UMF 15+ 250g and Buckwheat Raw Honey 340g." in contents
    assert contents[-1] == "Is the second one in stock?"


def test_a_tool_never_takes_identity_from_the_model(customer, openai_server) -> None:
    client, conversation = customer
    other = ConversationFactory.create()
    openai_server.script_chat(
        ChatToolCalls([("route_conversation", {"route": "sales"})]),
        ChatToolCalls(
            [("escalate_to_human", {"reason": "asked", "conversation_id": str(other.id)})]
        ),
        ChatText("A colleague will join you shortly."),
    )

    run = _turn(client, conversation, "Escalate someone else's chat please")

    conversation.refresh_from_db()
    other.refresh_from_db()
    assert run["status"] == "succeeded"
    assert conversation.status == Conversation.Status.NEEDS_HUMAN
    assert other.status == Conversation.Status.ACTIVE
