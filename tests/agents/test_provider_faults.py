"""Provider faults against the loopback OpenAI-compatible server, with real workers."""

from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from agents.graph.prompts import FAILURE_REPLY
from agents.models import AgentRun
from tests.agents.shop import small_shop_create
from tests.conversations.factories import ConversationFactory
from tests.support.celery_worker import (
    openai_worker_env,
    tasks_sent_to,
    worker_of_its_own_queue,
)
from tests.support.fake_openai import (
    ChatText,
    ChatToolCalls,
    FakeOpenAIServer,
    Hang,
    HttpError,
    MidStreamError,
)

pytestmark = pytest.mark.django_db(transaction=True)

TIMEOUT_SECONDS = 1
MAX_RETRIES = 1


@pytest.fixture(scope="module")
def fault_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


def _worker_queue(server, broker_url, blocker, fallback: str) -> Iterator[str]:
    yield from worker_of_its_own_queue(
        "faults",
        broker_url=broker_url,
        blocker=blocker,
        extra_env=openai_worker_env(
            server.base_url,
            LLM_FALLBACK_PROVIDER=fallback,
            OPENAI_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
            OPENAI_MAX_RETRIES=str(MAX_RETRIES),
        ),
    )


@pytest.fixture(scope="module")
def strict_queue(
    fault_server, test_broker_url, django_db_setup, django_db_blocker
) -> Iterator[str]:
    """Workers with no fallback: a failed provider means an apology."""
    yield from _worker_queue(fault_server, test_broker_url, django_db_blocker, fallback="")


@pytest.fixture(scope="module")
def fallback_queue(
    fault_server, test_broker_url, django_db_setup, django_db_blocker
) -> Iterator[str]:
    yield from _worker_queue(fault_server, test_broker_url, django_db_blocker, fallback="offline")


@pytest.fixture
def server(fault_server: FakeOpenAIServer) -> FakeOpenAIServer:
    fault_server.reset()
    small_shop_create()
    return fault_server


def _turn(queue: str, content: str) -> dict:
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)
    with tasks_sent_to(queue):
        posted = client.post(
            f"/api/conversations/{conversation.id}/messages/", {"content": content}
        )
    run = client.get(f"/api/runs/{posted.json()['run']['id']}/?wait=60").json()
    return run


def test_a_hanging_provider_times_out_and_the_turn_ends_with_the_fallback_text(
    server, strict_queue
) -> None:
    server.default = Hang(30)

    run = _turn(strict_queue, "Any heather honey?")

    assert run["status"] == "failed"
    assert run["reply"]["content"] == FAILURE_REPLY
    assert len(server.chat_requests()) == MAX_RETRIES + 1
    stored = AgentRun.objects.get(pk=run["id"])
    # The client gave up: a hang that ran its course would have ended in the server's 500.
    assert "Timeout" in stored.error
    assert stored.latency_ms is not None


def test_a_429_then_success_succeeds_within_the_retry_budget(server, strict_queue) -> None:
    server.script_chat(
        HttpError(429, "Rate limit reached", retry_after=0.1),
        ChatToolCalls([("route_conversation", {"route": "sales"})]),
        HttpError(429, "Rate limit reached", retry_after=0.1),
        ChatText("Our Buckwheat Raw Honey 340g is £11.50."),
    )

    run = _turn(strict_queue, "A dark honey for baking?")

    assert run["status"] == "succeeded"
    assert run["reply"]["content"] == "Our Buckwheat Raw Honey 340g is £11.50."
    model_calls = AgentRun.objects.get(pk=run["id"]).model_calls
    assert len(server.chat_requests()) <= model_calls * (MAX_RETRIES + 1)


def test_a_provider_failing_with_5xx_ends_in_an_apology(server, strict_queue) -> None:
    server.default = HttpError(503, "Service unavailable")

    run = _turn(strict_queue, "Do you sell candles?")

    assert run["status"] == "failed"
    assert run["reply"]["content"] == FAILURE_REPLY
    assert len(server.chat_requests()) == MAX_RETRIES + 1
    assert AgentRun.objects.get(pk=run["id"]).latency_ms is not None


def test_a_provider_failing_with_5xx_falls_back_to_the_offline_provider(
    server, fallback_queue
) -> None:
    server.default = HttpError(503, "Service unavailable")

    run = _turn(fallback_queue, "Something for a sore throat?")

    stored = AgentRun.objects.get(pk=run["id"])
    assert run["status"] == "succeeded"
    assert stored.provider == "offline"
    # In the provider's words: a bad key, a mistyped model and a spent quota differ.
    assert "openai failed (OpenAIAPIError: Error code: 503 - Service unavailable)" in stored.error
    assert "answered by offline" in stored.error
    assert "Manuka Honey UMF 15+ 250g — £44.95" in run["reply"]["content"]


def test_a_fallback_after_a_stream_failed_keeps_the_failed_attempts_steps_and_tokens(
    server, fallback_queue
) -> None:
    server.script_chat(
        ChatToolCalls([("route_conversation", {"route": "sales"})], prompt_tokens=50),
        ChatToolCalls([("escalate_to_human", {"reason": "wants a person"})], prompt_tokens=60),
        MidStreamError(ChatText("A colleague will", prompt_tokens=70)),
    )

    run = _turn(fallback_queue, "Something for a sore throat?")

    stored = AgentRun.objects.get(pk=run["id"])
    assert run["status"] == "succeeded"
    assert stored.provider == "offline"
    escalation = stored.tool_calls[0]
    assert (escalation["tool"], escalation["provider"]) == ("escalate_to_human", "openai")
    assert escalation["failed_attempt"] is True
    # Three OpenAI calls reported their usage, the last just before its stream failed; the
    # offline answer spends no tokens.
    assert (stored.prompt_tokens, stored.completion_tokens) == (50 + 60 + 70, 3 * 5)


@pytest.mark.parametrize("status", [400, 401])
def test_client_errors_are_tried_once_and_leak_nothing(server, strict_queue, status) -> None:
    server.default = HttpError(status, "Incorrect API key provided: sk-loopback-secret-key")

    run = _turn(strict_queue, "Hello")

    visible = str(run)
    assert run["status"] == "failed"
    assert len(server.chat_requests()) == 1
    assert "sk-" not in visible
    assert "Traceback" not in visible
    assert "Incorrect API key" not in visible
