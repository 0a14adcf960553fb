"""One turn in this process, the OpenAI provider talking to a loopback server."""

import signal
import time
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection
from django.utils import timezone

from agents.graph.prompts import HANDOFF_REPLY, STEP_LIMIT_REPLY, WITHHELD_REPLY
from agents.models import AgentRun, DailySpend
from agents.providers.openai import ROUTE_UNPARSED_NOTE
from agents.run_stream import run_events_read
from agents.services import agent_run_execute
from agents.turns import TurnFailed, TurnResult, run_turn
from conversations.models import Conversation, Message
from tests.agents.factories import AgentRunFactory
from tests.agents.loopback import MODEL, loopback_openai
from tests.agents.shop import small_shop_create
from tests.conversations.factories import ConversationFactory, MessageFactory
from tests.support.celery_worker import test_database_url as database_url  # not a test
from tests.support.fake_openai import (
    ChatText,
    ChatToolCalls,
    FakeOpenAIServer,
    GarbledStream,
    Hang,
    HttpError,
    MidStreamError,
)

pytestmark = pytest.mark.django_db


def _run_after(conversation: Conversation, *earlier: tuple[str, str], question: str) -> AgentRun:
    """A run answering ``question``, asked after the ``(role, content)`` messages ``earlier``."""
    for role, content in earlier:
        MessageFactory.create(conversation=conversation, role=role, content=content)
    asked = MessageFactory.create(conversation=conversation, content=question)
    return AgentRunFactory.create(conversation=conversation, user_message=asked)


def _spent(run: AgentRun) -> tuple[int, int, int, Decimal]:
    """The tokens, model calls and cost counted on ``run`` so far."""
    return AgentRun.objects.values_list(
        "prompt_tokens", "completion_tokens", "model_calls", "cost_usd"
    ).get(pk=run.pk)


def test_prompt_tokens_read_from_the_providers_cache_are_charged_at_its_cached_rate(
    settings,
) -> None:
    run = _run_after(ConversationFactory.create(), question="Which honey for tea?")
    with loopback_openai(settings) as server:
        settings.MODEL_PRICES_PER_MILLION = {
            MODEL: {"prompt": 1.0, "cached_prompt": 0.5, "completion": 2.0}
        }
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})], prompt_tokens=1000),
            ChatText("Acacia is lovely in tea.", prompt_tokens=1200, cached_tokens=1000),
        )

        run_turn(run=run)

    prompt_tokens, completion_tokens, _, cost_usd = _spent(run)
    assert (prompt_tokens, completion_tokens) == (2200, 10)
    # 1,200 prompt tokens at $1/M, the 1,000 cached at $0.50/M, 10 completion tokens at $2/M.
    assert cost_usd == Decimal("0.001720")


def _refuse_to_count_the_second_model_call_once() -> None:
    """The database refuses, once, the write that counts a run's second model call (a
    trigger; a sequence, which no rollback takes back, says whether it has refused yet)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE SEQUENCE test_usage_refusals")
        cursor.execute(
            "CREATE FUNCTION test_refuse_usage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF nextval('test_usage_refusals') = 1 THEN"
            " RAISE EXCEPTION 'usage refused by the test'; END IF; RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_refuse_usage BEFORE UPDATE ON agents_agentrun FOR EACH ROW"
            " WHEN (OLD.model_calls = 1 AND NEW.model_calls = 2)"
            " EXECUTE FUNCTION test_refuse_usage()"
        )


def test_the_last_model_call_whose_count_failed_is_counted_as_the_attempt_ends(
    settings,
) -> None:
    run = _run_after(ConversationFactory.create(), question="Which honey for tea?")
    _refuse_to_count_the_second_model_call_once()
    with loopback_openai(settings) as server:
        settings.MODEL_PRICES_PER_MILLION = {MODEL: {"prompt": 1.0, "completion": 2.0}}
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})], prompt_tokens=100),
            ChatText("Acacia is lovely in tea.", prompt_tokens=200),
        )

        result = run_turn(run=run)

    assert result.reply == "Acacia is lovely in tea."
    prompt_tokens, completion_tokens, model_calls, cost_usd = _spent(run)
    assert (prompt_tokens, completion_tokens, model_calls) == (300, 10, 2)
    # 300 prompt tokens at $1/M and 10 completion tokens at $2/M, and the day's spend with it.
    assert cost_usd == Decimal("0.000320")
    assert DailySpend.objects.get().cost_usd == Decimal("0.000320")


def test_an_empty_final_message_gets_the_fallback_reply_not_an_earlier_one(settings) -> None:
    run = _run_after(
        ConversationFactory.create(),
        ("user", "Which honey for tea?"),
        ("assistant", "Acacia Raw Honey 500g is lovely in tea."),
        ("staff", "Sam here: I've added a free jar to your order."),
        question="And one for baking?",
    )
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})]),
            ChatText(""),  # no text: a refusal, say
        )

        result = run_turn(run=run)

    assert result.reply == STEP_LIMIT_REPLY
    assert result.agent != "staff"
    assert result.note != ""


def test_the_router_and_the_specialist_are_told_today_s_date_in_the_shop_s_time_zone(
    settings,
) -> None:
    run = _run_after(
        ConversationFactory.create(), question="Is it too late to order for Christmas?"
    )
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "support"})]),
            ChatText("Order by Friday 18 December for Christmas delivery."),
        )

        run_turn(run=run)

    today = timezone.localdate()
    systems = [request.json["messages"][0] for request in server.chat_requests() if request.json]
    assert len(systems) == 2
    for system in systems:
        assert system["role"] == "system"
        assert system["content"].endswith(f"Today is {today:%A} {today.day} {today:%B %Y}.")


def test_staff_messages_reach_the_model_as_written_by_staff_not_by_itself(settings) -> None:
    run = _run_after(
        ConversationFactory.create(),
        ("user", "Is the Manuka honey in stock?"),
        ("assistant", "Yes, we have 12 jars."),
        ("staff", "Sam here: I've added a free jar to your order."),
        question="Great, when will it arrive?",
    )
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "support"})]),
            ChatText("Orders usually arrive in 2-4 working days."),
        )

        run_turn(run=run)

    body = server.chat_requests()[-1].json
    assert body is not None
    sent = body["messages"]
    staff = [m for m in sent if "free jar" in (m.get("content") or "")]
    assert len(staff) == 1
    assert staff[0]["role"] != "assistant"
    assert "staff" in staff[0]["content"].lower()
    assert staff[0]["content"].endswith("Sam here: I've added a free jar to your order.")
    own = next(m for m in sent if m.get("content") == "Yes, we have 12 jars.")
    assert own["role"] == "assistant"


def test_tokens_spent_on_openai_before_it_failed_are_counted_when_the_fallback_answers(
    settings,
) -> None:
    small_shop_create()
    run = _run_after(ConversationFactory.create(), question="Something for a sore throat?")
    with loopback_openai(settings, fallback="offline") as server:
        server.script_chat(
            ChatToolCalls(
                [("route_conversation", {"route": "sales"})], prompt_tokens=50, completion_tokens=5
            ),
        )
        server.default = HttpError(503, "Service unavailable")

        result = run_turn(run=run)

    assert result.provider == "offline"
    assert "Manuka Honey UMF 15+ 250g" in result.reply
    prompt_tokens, completion_tokens, model_calls, cost_usd = _spent(run)
    assert (prompt_tokens, completion_tokens) == (50, 5)
    assert model_calls >= 1
    # 50 prompt tokens at $1/M and 5 completion tokens at $2/M.
    assert cost_usd == Decimal("0.000060")


def test_a_client_error_before_any_request_is_answered_by_the_fallback(settings) -> None:
    small_shop_create()
    run = _run_after(ConversationFactory.create(), question="Something for a sore throat?")
    with loopback_openai(settings, fallback="offline") as server:
        # The client refuses to send without a key (startup refuses it too; a key taken away
        # from a running process's settings, say): not an APIError, so no fallback was tried.
        settings.OPENAI_API_KEY = ""

        result = run_turn(run=run)

    assert result.provider == "offline"
    assert "Manuka Honey UMF 15+ 250g" in result.reply
    assert server.chat_requests() == []


def test_a_long_retry_after_is_cut_short_so_the_turn_is_answered_without_waiting_it_out(
    settings,
) -> None:
    run = _run_after(ConversationFactory.create(), question="Do you ship to France?")
    with loopback_openai(settings) as server:
        settings.OPENAI_MAX_RETRIES = 1
        settings.OPENAI_RETRY_AFTER_MAX_SECONDS = 0.5
        server.script_chat(
            HttpError(429, "Rate limit reached", retry_after=8),
            ChatToolCalls([("route_conversation", {"route": "support"})]),
            ChatText("We do, in 5-7 working days."),
        )
        started = time.monotonic()

        result = run_turn(run=run)

    assert time.monotonic() - started < 5  # the client would have waited 8 s
    assert (result.provider, result.reply) == ("openai", "We do, in 5-7 working days.")
    assert len(server.chat_requests()) == 3


def _soft_time_limit(signum: int, frame: object) -> None:
    raise SoftTimeLimitExceeded()  # as billiard's handler raises it in a prefork worker


def test_a_turn_the_soft_time_limit_cuts_short_is_answered_by_the_fallback(settings) -> None:
    small_shop_create()
    run = _run_after(ConversationFactory.create(), question="Something for a sore throat?")
    with loopback_openai(settings, fallback="offline") as server:
        settings.OPENAI_TIMEOUT_SECONDS = 30
        server.default = Hang(5)
        previous = signal.signal(signal.SIGALRM, _soft_time_limit)
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        try:
            result = run_turn(run=run)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    assert result.provider == "offline"
    assert "Manuka Honey UMF 15+ 250g" in result.reply
    assert "openai failed (SoftTimeLimitExceeded" in result.note


def test_history_of_the_conversation_is_given_in_order(settings) -> None:
    run = _run_after(
        ConversationFactory.create(),
        ("user", "Hello"),
        ("assistant", "Hello! How can I help?"),
        question="Do you ship to France?",
    )
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "support"})]),
            ChatText("We do, in 5-7 working days."),
        )

        result = run_turn(run=run)

    body = server.chat_requests()[-1].json
    assert body is not None
    sent = body["messages"]
    assert [(m["role"], m["content"]) for m in sent[1:]] == [
        ("user", "Hello"),
        ("assistant", "Hello! How can I help?"),
        ("user", "Do you ship to France?"),
    ]
    assert result.reply == "We do, in 5-7 working days."
    assert Message.objects.filter(conversation=run.conversation).count() == 3


def test_a_reply_stored_after_the_next_message_reaches_the_model_after_its_question(
    settings,
) -> None:
    # The customer sent a second message while the first was being answered.
    conversation = ConversationFactory.create()
    first = MessageFactory.create(conversation=conversation, content="Is the heather in stock?")
    first_run = AgentRunFactory.create(conversation=conversation, user_message=first)
    run = _run_after(conversation, question="And do you ship to France?")
    MessageFactory.create(
        conversation=conversation, role="assistant", content="Yes, 12 jars.", run=first_run
    )
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "support"})]),
            ChatText("We do, in 5-7 working days."),
        )

        run_turn(run=run)

    body = server.chat_requests()[-1].json
    assert body is not None
    assert [(m["role"], m["content"]) for m in body["messages"][1:]] == [
        ("user", "Is the heather in stock?"),
        ("assistant", "Yes, 12 jars."),
        ("user", "And do you ship to France?"),
    ]


def test_a_reply_the_content_filter_cut_off_is_not_posted_half_written(settings) -> None:
    run = _run_after(ConversationFactory.create(), question="How do I make mead at home?")
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "support"})]),
            ChatText("To make mead, first you", finish_reason="content_filter"),
        )

        result = run_turn(run=run)

    assert result.reply == WITHHELD_REPLY
    assert "content filter" in result.note


def _sales_reply_ending(settings: Any, text: str, finish_reason: str | None) -> TurnResult:
    """The turn's outcome when the model answers ``text``, ending with ``finish_reason``."""
    run = _run_after(ConversationFactory.create(), question="What's your best manuka?")
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})]),
            ChatText(text, finish_reason=finish_reason),
        )
        return run_turn(run=run)


@pytest.mark.parametrize(
    ("finish_reason", "noted"),
    [
        (None, "without a finish reason"),  # a server or proxy closed the stream mid-answer
        # How OpenAI-compatible servers other than OpenAI say they stopped early.
        ("max_tokens", "ran out of tokens"),
        ("error", "with an error"),
        ("abort", "aborted"),
    ],
)
def test_a_reply_cut_short_is_not_posted_half_written(
    settings, finish_reason: str | None, noted: str
) -> None:
    result = _sales_reply_ending(settings, "Our best manuka is", finish_reason)

    assert result.reply == STEP_LIMIT_REPLY
    assert noted in result.note


@pytest.mark.parametrize("finish_reason", ["eos", "eos_token", "end_turn", "stop_sequence"])
def test_a_reply_a_compatible_server_says_it_finished_in_its_own_words_is_posted(
    settings, finish_reason: str
) -> None:
    result = _sales_reply_ending(settings, "Our best manuka is the UMF 15+.", finish_reason)

    assert result.reply == "Our best manuka is the UMF 15+."
    assert result.note == ""


def test_a_hand_off_through_openai_is_posted_as_written(settings) -> None:
    run = _run_after(ConversationFactory.create(), question="Can I talk to a person?")
    with loopback_openai(settings) as server:
        server.script_chat(ChatToolCalls([("route_conversation", {"route": "handoff"})]))

        result = run_turn(run=run)

    assert result.reply == HANDOFF_REPLY
    assert result.note == ""


def test_a_route_call_whose_arguments_are_not_an_object_falls_back_to_routing_by_meaning(
    settings,
) -> None:
    run = _run_after(ConversationFactory.create(), question="How long does delivery take?")
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", '"support"')], prompt_tokens=40),
            ChatText("UK delivery takes 2-4 working days.", prompt_tokens=60),
        )

        result = run_turn(run=run)

    assert result.route == "support"
    assert result.reply == "UK delivery takes 2-4 working days."
    assert _spent(run)[0] == 100


def test_a_route_the_graph_does_not_have_is_routed_by_meaning_and_noted_for_staff(
    settings,
) -> None:
    run = _run_after(ConversationFactory.create(), question="How long does delivery take?")
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "billing"})]),
            ChatText("UK delivery takes 2-4 working days."),
        )

        result = run_turn(run=run)

    assert result.route == "support"
    assert result.note == ROUTE_UNPARSED_NOTE


def test_a_provider_that_sends_no_usage_is_billed_by_an_estimate_not_at_zero(settings) -> None:
    run = _run_after(ConversationFactory.create(), question="Hello, do you sell honey? " * 20)
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})], usage=False),
            ChatText("Yes, we sell many kinds of honey.", usage=False),
        )

        result = run_turn(run=run)

    prompt_tokens, completion_tokens, _, cost_usd = _spent(run)
    # The question alone is 520 characters, sent twice: at least 260 tokens.
    assert prompt_tokens >= 260
    assert completion_tokens > 0
    assert cost_usd > 0
    assert "estimated" in result.note


ESCALATED = {
    "provider": "openai",
    "failed_attempt": True,
    "node": "sales_tools",
    "tool": "escalate_to_human",
    "args": {"reason": "wants a person"},
    "result": '{"escalated": true}',
}


OPENAI_FAILED_NODES = [
    "supervisor (openai, failed)",
    "sales (openai, failed)",
    "sales_tools (openai, failed)",
]


def test_a_fallback_keeps_what_the_failed_attempt_did_in_the_trace_marked_as_failed(
    settings,
) -> None:
    small_shop_create()
    run = _run_after(ConversationFactory.create(), question="Something for a sore throat?")
    with loopback_openai(settings, fallback="offline") as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})]),
            ChatToolCalls([("escalate_to_human", {"reason": "wants a person"})]),
        )
        server.default = HttpError(503, "Service unavailable")

        agent_run_execute(run_id=str(run.pk))

    stored = AgentRun.objects.get(pk=run.pk)
    assert stored.status == AgentRun.Status.SUCCEEDED
    assert stored.provider == "offline"
    # The failed attempt's steps first, as they happened; then the answer's, unmarked.
    assert stored.tool_calls[0] == ESCALATED
    assert [step["tool"] for step in stored.tool_calls[1:]] == ["search_products"]
    assert not any("failed_attempt" in step for step in stored.tool_calls[1:])
    # So are the nodes it ran: the run's node sequence held only the answer's.
    assert stored.node_sequence[:4] == [*OPENAI_FAILED_NODES, "supervisor"]
    assert not any("failed" in node for node in stored.node_sequence[3:])
    assert "escalate_to_human" in stored.error
    assert stored.conversation.status == Conversation.Status.NEEDS_HUMAN


def test_a_failed_turn_keeps_what_it_did_and_what_its_streams_reported_spending(
    settings,
) -> None:
    run = _run_after(ConversationFactory.create(), question="Can a person call me?")
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})], prompt_tokens=50),
            ChatToolCalls([("escalate_to_human", {"reason": "wants a person"})], prompt_tokens=60),
            # The whole reply and its usage arrive, then the stream fails.
            MidStreamError(ChatText("A colleague will call you.", prompt_tokens=70)),
        )

        agent_run_execute(run_id=str(run.pk))

    stored = AgentRun.objects.get(pk=run.pk)
    assert stored.status == AgentRun.Status.FAILED
    assert stored.replies.get().content == HANDOFF_REPLY
    assert stored.tool_calls == [ESCALATED]
    # The sales node whose call failed is not among them: its step never finished.
    assert stored.node_sequence == OPENAI_FAILED_NODES
    assert (stored.prompt_tokens, stored.completion_tokens, stored.model_calls) == (180, 15, 3)
    # 180 prompt tokens at $1/M and 15 completion tokens at $2/M.
    assert stored.cost_usd == Decimal("0.000210")


def test_a_tool_that_raises_keeps_the_calls_its_step_made_in_the_trace(settings) -> None:
    # The tools step raised, so it returned no state: the escalation it had made (the
    # conversation is with staff) was missing from the failed run's trace.
    run = _run_after(ConversationFactory.create(), question="Can a person help me?")
    with psycopg.connect(database_url()) as locker, loopback_openai(settings) as server:
        # The products table locked by another session: the search waits, then fails.
        locker.execute("LOCK TABLE catalog_product IN ACCESS EXCLUSIVE MODE")
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '200ms'")
        escalate = ("escalate_to_human", {"reason": "wants a person"})
        search = ("search_products", {"query": "heather honey"})
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})]),
            ChatToolCalls([escalate, search]),
        )

        with pytest.raises(TurnFailed) as failed:
            run_turn(run=run)

    raised = {"node": "sales_tools", "tool": "search_products", "args": {"query": "heather honey"},
              "result": "raised OperationalError"}  # fmt: skip
    assert failed.value.tool_calls == [ESCALATED, {"provider": "openai", "failed_attempt": True,
                                                   **raised}]  # fmt: skip
    assert failed.value.handed_off


@pytest.mark.parametrize(
    ("chunks", "spent"),
    [
        # The stream failed after its usage chunk: the call is counted as reported.
        (None, (50 + 80, 5 + 7)),
        # It failed before any usage was reported: nothing is counted for it, not even a guess.
        (3, (50, 5)),
    ],
)
def test_a_call_failing_mid_stream_is_counted_as_far_as_its_usage_was_reported(
    settings, chunks: int | None, spent: tuple[int, int]
) -> None:
    small_shop_create()
    run = _run_after(ConversationFactory.create(), question="Something for a sore throat?")
    with loopback_openai(settings, fallback="offline") as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})], prompt_tokens=50),
            MidStreamError(
                ChatText("Try our manuka.", prompt_tokens=80, completion_tokens=7), chunks=chunks
            ),
        )

        result = run_turn(run=run)

    assert result.provider == "offline"
    prompt_tokens, completion_tokens, _, cost_usd = _spent(run)
    assert (prompt_tokens, completion_tokens) == spent
    assert cost_usd == Decimal(prompt_tokens + 2 * completion_tokens) / 1_000_000


def test_a_fallback_after_text_was_streamed_tells_clients_to_drop_it(settings) -> None:
    small_shop_create()
    run = _run_after(ConversationFactory.create(), question="Something for a sore throat?")
    with loopback_openai(settings, fallback="offline") as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})]),
            MidStreamError(ChatText("Try our lavender candles, they are lovely."), chunks=4),
        )

        result = run_turn(run=run)

    events = [(event.type, event.data) for event in run_events_read(run_id=str(run.pk))]
    reset = events.index(("text.reset", {"reason": "fallback"}))
    before = "".join(data["text"] for kind, data in events[:reset] if kind == "text.delta")
    after = "".join(data["text"] for kind, data in events[reset:] if kind == "text.delta")
    assert result.provider == "offline"
    assert before.startswith("Try our")  # what the failed stream showed
    assert after == result.reply  # and, after the reset, the fallback's reply alone


def _stock_question_answered(
    settings: Any, *responses: ChatText | ChatToolCalls
) -> tuple[TurnResult, FakeOpenAIServer]:
    """A turn on "Is the UMF 15 manuka in stock?" routed to sales, then ``responses``."""
    small_shop_create()
    run = _run_after(ConversationFactory.create(), question="Is the UMF 15 manuka in stock?")
    with loopback_openai(settings) as server:
        server.script_chat(ChatToolCalls([("route_conversation", {"route": "sales"})]), *responses)
        return run_turn(run=run), server


def test_a_tool_call_whose_arguments_are_not_an_object_is_answered_with_an_error(
    settings,
) -> None:
    result, server = _stock_question_answered(
        settings,
        ChatToolCalls([("check_stock", {"sku": "MAN-15"}), ("check_stock", '"MAN-15"')]),
        ChatText("Yes, the UMF 15+ is in stock."),
    )

    assert result.provider == "openai"
    assert result.reply == "Yes, the UMF 15+ is in stock."
    body = server.chat_requests()[2].json
    assert body is not None
    answers = {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}
    assert len(answers) == 2
    assert [a for a in answers.values() if "invalid arguments" in a] != []
    assert [step["tool"] for step in result.tool_calls] == ["check_stock", "check_stock"]


def test_text_written_with_unreadable_tool_calls_is_not_posted_when_the_last_message_is_empty(
    settings,
) -> None:
    result, server = _stock_question_answered(
        settings,
        ChatToolCalls([("check_stock", '"MAN-15"')], content="Let me check that for you."),
        ChatText(""),
    )

    assert len(server.chat_requests()) == 3
    assert result.reply == STEP_LIMIT_REPLY
    assert result.note == "the model's last message had no text; sent the fallback reply"


def test_a_turn_that_handed_off_before_its_step_limit_tells_the_customer_so(settings) -> None:
    settings.AGENT_MAX_MODEL_CALLS = 2
    run = _run_after(ConversationFactory.create(), question="Can someone check my order?")
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})]),
            ChatToolCalls([("escalate_to_human", {"reason": "order question"})]),
        )

        result = run_turn(run=run)

    assert result.handed_off
    assert result.reply == HANDOFF_REPLY
    assert "step limit" in result.note


def test_a_turn_that_handed_off_and_then_said_nothing_tells_the_customer_so(settings) -> None:
    run = _run_after(ConversationFactory.create(), question="Can someone check my order?")
    with loopback_openai(settings) as server:
        server.script_chat(
            ChatToolCalls([("route_conversation", {"route": "sales"})]),
            ChatToolCalls([("escalate_to_human", {"reason": "order question"})]),
            ChatText(""),
        )

        result = run_turn(run=run)

    assert result.handed_off
    assert result.reply == HANDOFF_REPLY


ROUTE_TO_SALES = ChatToolCalls([("route_conversation", {"route": "sales"})])


@pytest.mark.parametrize(
    "script",
    [
        (GarbledStream(()),),
        (GarbledStream(("<html>502 Bad Gateway</html>",)),),
        (ROUTE_TO_SALES, GarbledStream(())),
        (ROUTE_TO_SALES, GarbledStream(("<html>502 Bad Gateway</html>",))),
    ],
    ids=[
        "the route, an empty stream",
        "the route, not JSON",
        "the agent's, an empty stream",
        "the agent's, not JSON",
    ],
)
def test_a_provider_response_that_is_no_completion_is_answered_by_the_fallback(
    settings, script
) -> None:
    small_shop_create()
    run = _run_after(ConversationFactory.create(), question="Something for a sore throat?")
    with loopback_openai(settings, fallback="offline") as server:
        server.script_chat(*script)

        result = run_turn(run=run)

    assert result.provider == "offline"
    assert "Manuka Honey UMF 15+ 250g" in result.reply
    assert "ProviderResponseError" in result.note
