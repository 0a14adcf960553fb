"""Executing a run in this process: what is stored when the model misbehaves or a turn fails."""

import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer

from agents.api.serializers import MessageOutputSerializer
from agents.graph import tools as graph_tools
from agents.graph.prompts import FAILURE_REPLY, HANDOFF_REPLY, STEP_LIMIT_REPLY
from agents.models import AgentRun
from agents.run_stream import run_events_read
from agents.services import (
    FINAL_EVENTS,
    _fail,
    _start,
    _store,
    agent_run_cancel,
    agent_run_execute,
    agent_runs_sweep,
    message_event_data,
)
from agents.turns import TurnResult, run_turn
from conversations.models import STAFF_TAKE_OVER_REASON, Conversation, Message
from conversations.services import (
    conversation_handoff,
    conversations_close,
    conversations_hand_back,
    message_post,
    staff_message_post,
)
from tests.agents.factories import AgentRunFactory
from tests.agents.loopback import MODEL, loopback_openai
from tests.agents.shop import small_shop_create
from tests.conversations.factories import ConversationFactory, StaffFactory
from tests.support.fake_openai import ChatText, ChatToolCalls, HttpError

pytestmark = pytest.mark.django_db

ROUTE_TO_SALES = ChatToolCalls(
    [("route_conversation", {"route": "sales"})], prompt_tokens=50, completion_tokens=5
)


def _queued_run(**fields: Any) -> AgentRun:
    """A queued run asking for MAN-15, the product the scripted turns look up."""
    return AgentRunFactory.create(user_message__content="Have you got MAN-15?", **fields)


def _reply(run: AgentRun) -> Message:
    return Message.objects.get(run=run, role=Message.Role.ASSISTANT)


def test_hostile_tool_arguments_are_answered_and_stored_in_a_bounded_trace(settings) -> None:
    small_shop_create()
    queued = _queued_run()
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES,
            ChatToolCalls(
                [
                    ("get_product", {"sku": "MAN\u000015"}),
                    ("search_products", {"query": "honey " * 1000, "max_price": float("inf")}),
                    ("no_such\u0000tool", {"note\u0000": "x" * 5000, "nested": {"a": [1, 2]}}),
                ]
            ),
            ChatText("Sorry, I couldn't look that up."),
        )

        agent_run_execute(run_id=str(queued.pk))
        body = server.chat_requests()[-1].json
        assert body is not None
        tool_results = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]

    run = AgentRun.objects.get(pk=queued.pk)
    stored = json.dumps(run.tool_calls)
    assert run.status == AgentRun.Status.SUCCEEDED
    assert _reply(run).content == "Sorry, I couldn't look that up."
    assert "sku" in tool_results[0]["error"]
    assert "max_price" in tool_results[1]["error"]
    assert "\\u0000" not in stored
    names = [call["tool"] for call in run.tool_calls]
    assert names == ["get_product", "search_products", "no_such_tool"]
    assert run.tool_calls[0]["args"] == {"sku": "MAN15"}
    assert run.tool_calls[1]["args"]["max_price"] == "Infinity"
    assert len(run.tool_calls[1]["args"]["query"]) <= 501
    assert len(run.tool_calls[2]["args"]["note"]) <= 501
    assert len(stored) < 5000


def test_a_tool_called_by_a_name_openai_refuses_is_sent_back_by_one_it_takes(settings) -> None:
    small_shop_create()
    queued = _queued_run()
    made_up = {"tool_uses": [{"recipient_name": "functions.get_product", "parameters": {}}]}
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES,
            ChatToolCalls([("multi_tool_use.parallel", made_up)]),
            ChatText("Sorry, I couldn't look that up."),
        )

        agent_run_execute(run_id=str(queued.pk))
        body = server.chat_requests()[-1].json
        assert body is not None

    sent = [call["function"]["name"] for m in body["messages"] for call in m.get("tool_calls", [])]
    assert sent == ["multi_tool_use_parallel"]
    answers = [json.loads(m["content"]) for m in body["messages"] if m["role"] == "tool"]
    assert answers == [{"error": "unknown tool 'multi_tool_use_parallel'"}]
    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.SUCCEEDED
    assert [call["tool"] for call in run.tool_calls] == ["multi_tool_use_parallel"]


@pytest.mark.parametrize(("limit", "sent"), [(300, 300), (0, None)])
def test_each_model_call_asks_for_at_most_the_completion_tokens_set(
    settings, limit: int, sent: int | None
) -> None:
    settings.OPENAI_MAX_COMPLETION_TOKENS = limit
    queued = _queued_run()
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES, ChatText("Here you are"))

        agent_run_execute(run_id=str(queued.pk))
        bodies = [request.json or {} for request in server.chat_requests()]

    assert [body.get("max_completion_tokens") for body in bodies] == [sent, sent]
    assert AgentRun.objects.get(pk=queued.pk).status == AgentRun.Status.SUCCEEDED


def test_a_reply_with_nul_characters_is_stored_without_them(settings) -> None:
    queued = _queued_run()
    with loopback_openai(settings) as server:
        # PostgreSQL text cannot hold a NUL character.
        server.script_chat(ROUTE_TO_SALES, ChatText("Here\u0000 you are\u0000"))

        agent_run_execute(run_id=str(queued.pk))

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.SUCCEEDED
    assert _reply(run).content == "Here you are"


def test_half_a_character_from_the_model_is_replaced_not_fatal(settings) -> None:
    # A lone surrogate (half of an emoji's UTF-16 pair) cannot be encoded as UTF-8: publishing
    # the tool call's live event failed the whole turn.
    queued = _queued_run()
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES,
            ChatToolCalls([("search_products", {"query": "manuka \ud83d"})]),
            ChatText("Our manuka \ud83d is lovely."),
        )

        agent_run_execute(run_id=str(queued.pk))

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.SUCCEEDED
    assert _reply(run).content == "Our manuka \ufffd is lovely."
    assert run.tool_calls[0]["args"] == {"query": "manuka \ufffd"}
    called = [e for e in run_events_read(run_id=str(run.pk)) if e.type == "tool.called"]
    assert called[0].data["args"] == {"query": "manuka \ufffd"}


def _refuse_to_store(reply: str) -> None:
    """The database refuses to store ``reply`` (a trigger; the test's transaction takes it
    away again)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse_reply() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'reply refused by the test'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_refuse_reply BEFORE INSERT ON conversations_message"
            " FOR EACH ROW WHEN (NEW.content = %s) EXECUTE FUNCTION test_refuse_reply()",
            [reply],
        )


def test_a_reply_that_cannot_be_stored_fails_the_run_with_an_apology_and_its_trace(
    settings,
) -> None:
    small_shop_create()
    _refuse_to_store("Here you are")
    queued = _queued_run()
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES,
            ChatToolCalls([("get_product", {"sku": "MAN-15"})], prompt_tokens=30),
            ChatText("Here you are", prompt_tokens=20),
        )

        agent_run_execute(run_id=str(queued.pk))

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.FAILED
    assert run.finished_at is not None
    assert _reply(run).content == FAILURE_REPLY
    assert run.prompt_tokens == 50 + 30 + 20
    assert "reply refused by the test" in run.error
    # What the turn did before its reply was refused, as a turn that failed keeps it.
    assert [call["tool"] for call in run.tool_calls] == ["get_product"]
    assert "sales" in run.node_sequence
    assert run.latency_ms is not None


def test_a_failed_run_records_the_tokens_spent_before_the_failure(settings) -> None:
    queued = _queued_run()
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES)
        server.default = HttpError(503, "Service unavailable")

        agent_run_execute(run_id=str(queued.pk))

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.FAILED
    assert _reply(run).content == FAILURE_REPLY
    assert (run.prompt_tokens, run.completion_tokens, run.model_calls) == (50, 5, 1)
    assert run.model_name == MODEL
    # 50 prompt tokens at $1/M and 5 completion tokens at $2/M.
    assert run.cost_usd == Decimal("0.000060")


def test_a_failed_turn_is_logged_once_with_its_error_and_traceback(
    settings, caplog: pytest.LogCaptureFixture
) -> None:
    queued = _queued_run()
    with loopback_openai(settings) as server:
        server.default = HttpError(503, "Service unavailable")

        agent_run_execute(run_id=str(queued.pk))

    failed = [record for record in caplog.records if record.getMessage() == "agent_run.failed"]
    assert len(failed) == 1
    assert failed[0].levelname == "ERROR"
    assert failed[0].exc_info is not None
    assert "Service unavailable" in failed[0].error  # type: ignore[attr-defined]


def test_a_conversation_that_keeps_failing_reaches_its_budget(settings) -> None:
    settings.CONVERSATION_BUDGET_USD = Decimal("0.0001")
    conversation = ConversationFactory.create()
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES, HttpError(503), ROUTE_TO_SALES, HttpError(503))
        server.default = HttpError(503)
        for _ in range(2):
            agent_run_execute(run_id=str(_queued_run(conversation=conversation).pk))
        requests_before = len(server.chat_requests())

        third = _queued_run(conversation=conversation)
        agent_run_execute(run_id=str(third.pk))

        assert len(server.chat_requests()) == requests_before
    conversation.refresh_from_db()
    assert conversation.handoff_reason == "budget"
    assert _reply(third).content == HANDOFF_REPLY


def _refuse_to_succeed() -> None:
    """The database refuses to mark a run succeeded (a trigger, as ``_refuse_to_store``)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION test_refuse_success() RETURNS trigger LANGUAGE plpgsql"
            " AS $$ BEGIN RAISE EXCEPTION 'success refused by the test'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_refuse_success BEFORE UPDATE ON agents_agentrun FOR EACH ROW"
            " WHEN (NEW.status = 'succeeded') EXECUTE FUNCTION test_refuse_success()"
        )


def test_a_budget_hand_off_that_cannot_be_stored_fails_the_run_telling_the_customer_of_staff(
    settings,
) -> None:
    settings.DAILY_BUDGET_USD = Decimal("0")
    queued = _queued_run()
    _refuse_to_succeed()

    agent_run_execute(run_id=str(queued.pk))

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.FAILED
    # Staff have the conversation: "try again" would be the wrong thing to tell the customer.
    assert _reply(run).content == HANDOFF_REPLY
    assert "success refused by the test" in run.error
    assert Conversation.objects.get(pk=run.conversation_id).handoff_reason == "budget"


def _running(content: str = "Have you got MAN-15?") -> AgentRun:
    """A customer's message whose run a worker has started."""
    conversation = ConversationFactory.create()
    _, queued = message_post(conversation=conversation, author=conversation.owner, content=content)
    assert queued is not None
    run = _start(str(queued.pk), "")
    assert run is not None
    return run


def test_two_deliveries_of_a_run_answer_its_message_once_and_count_what_both_spent(
    settings,
) -> None:
    first = _running()
    # The broker restores the task while the first delivery still runs: a second worker claims
    # the run under the same task id.
    second = _start(str(first.pk), first.celery_task_id)
    assert second is not None
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES, ChatText("First copy"), ROUTE_TO_SALES, ChatText("Second copy")
        )
        first_result = run_turn(run=first)
        second_result = run_turn(run=second)

        _store(first, first_result, latency_ms=0)
        assert _store(second, second_result, latency_ms=0) is None

    run = AgentRun.objects.get(pk=first.pk)
    assert (run.status, run.deliveries) == (AgentRun.Status.SUCCEEDED, 2)
    assert _reply(run).content == "First copy"  # the first outcome stored, and no other
    # The second's tokens were spent all the same: the budgets count them. Each delivery made
    # two calls: 50 + 5 tokens to route, 10 + 5 (the scripted reply's) to answer.
    assert (run.prompt_tokens, run.completion_tokens, run.model_calls) == (120, 20, 4)
    assert run.cost_usd == Decimal("0.000160")  # at $1/M and $2/M


def test_a_failure_after_a_turn_was_stored_changes_nothing(settings) -> None:
    run = _running()
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES, ChatText("Here you are"))
        _store(run, run_turn(run=run), latency_ms=0)

    # As ``_store`` does when something raises after the outcome's commit.
    assert _fail(run, "RuntimeError: after the commit") is None

    stored = AgentRun.objects.get(pk=run.pk)
    assert (stored.status, stored.error) == (AgentRun.Status.SUCCEEDED, "")
    assert _reply(stored).content == "Here you are"


def test_a_reply_in_flight_when_staff_reply_is_not_posted_after_theirs(settings) -> None:
    run = _running()
    staff_message_post(
        conversation=run.conversation, author=StaffFactory.create(), content="Sam here."
    )
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES, ChatText("Here you are"))

        _store(run, run_turn(run=run), latency_ms=0)

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert run.finished_at is not None
    assert "with staff" in run.error
    assert run.silence == AgentRun.Silence.WITH_STAFF
    assert list(run.conversation.messages.values_list("role", flat=True)) == ["user", "staff"]


def _searching_while(monkeypatch: pytest.MonkeyPatch, colleague: Callable[[], object]) -> None:
    """The turn's catalogue searches run ``colleague()`` first: what staff do in the admin
    while the turn searches."""
    search = graph_tools.catalog_selectors.product_search

    def searched(**kwargs: Any) -> Any:
        colleague()
        return search(**kwargs)

    monkeypatch.setattr(graph_tools.catalog_selectors, "product_search", searched)


def test_a_turn_calls_the_model_no_more_once_staff_take_the_conversation_over(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_shop_create()
    run = _running("Have you got manuka?")

    def staff_reply() -> None:
        if not Message.objects.filter(role=Message.Role.STAFF).exists():
            staff_message_post(
                conversation=run.conversation, author=StaffFactory.create(), content="Sam here."
            )

    _searching_while(monkeypatch, staff_reply)
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES,
            ChatToolCalls([("search_products", {"query": "manuka"})], prompt_tokens=80),
            ChatToolCalls([("search_products", {"query": "manuka honey"})], prompt_tokens=200),
            ChatText("Our Manuka Honey UMF 15+ is in stock.", prompt_tokens=300),
        )

        _store(run, run_turn(run=run), latency_ms=0)
        requests = len(server.chat_requests())

    run.refresh_from_db()
    assert requests == 2  # routing, and the call that searched; none after Sam's reply
    assert run.model_calls == 2
    assert run.status == AgentRun.Status.CANCELLED
    assert run.silence == AgentRun.Silence.WITH_STAFF
    assert list(run.conversation.messages.values_list("role", flat=True)) == ["user", "staff"]
    streamed = [event.type for event in run_events_read(run_id=str(run.pk))]
    assert "tool.called" in streamed
    assert "text.delta" not in streamed


def _stopped_by_a_take_over(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> tuple[AgentRun, TurnResult]:
    """A customer's turn, and its outcome: staff took the conversation over as it searched, so
    it stopped before its second model call (``agent_run_stopped``); not yet stored."""
    small_shop_create()
    run = _running("Have you got manuka?")
    _searching_while(
        monkeypatch,
        lambda: conversation_handoff(
            conversation_id=run.conversation_id, reason=STAFF_TAKE_OVER_REASON
        ),
    )
    server.script_chat(
        ROUTE_TO_SALES, ChatToolCalls([("search_products", {"query": "manuka"})], prompt_tokens=80)
    )
    return run, run_turn(run=run)


def test_a_turn_whose_conversation_staff_delete_as_it_searches_calls_the_model_no_more(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_shop_create()
    run = _running("Have you got manuka?")
    _searching_while(
        monkeypatch, lambda: Conversation.objects.filter(pk=run.conversation_id).delete()
    )
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES,
            ChatToolCalls([("search_products", {"query": "manuka"})]),
            ChatText("Our Manuka Honey UMF 15+ is in stock."),
        )

        result = run_turn(run=run)

        calls = len(server.chat_requests())
    assert calls == 2  # the route and the search; not the reply no one would read
    assert result.stopped
    assert not AgentRun.objects.filter(pk=run.pk).exists()


def test_a_turn_stopped_as_staff_take_over_runs_again_when_they_hand_back_without_a_word(
    settings, monkeypatch: pytest.MonkeyPatch, django_capture_on_commit_callbacks
) -> None:
    with loopback_openai(settings) as server:
        run, stopped = _stopped_by_a_take_over(server, monkeypatch)
        # Handed back before the stopped turn's outcome is stored: its run is still running.
        conversations_hand_back(conversation_ids=[run.conversation_id])
        with django_capture_on_commit_callbacks(execute=True):
            _store(run, stopped, latency_ms=0)
        run.refresh_from_db()
        queued_again, dispatched = run.status, run.dispatched_at is not None
        messages_then = list(run.conversation.messages.values_list("role", flat=True))
        streamed = [event.type for event in run_events_read(run_id=str(run.pk))]

        again = _start(str(run.pk), run.celery_task_id)
        assert again is not None
        server.script_chat(
            ROUTE_TO_SALES, ChatText("Our Manuka Honey UMF 15+ is in stock.", prompt_tokens=300)
        )
        _store(again, run_turn(run=again), latency_ms=0)

    assert queued_again == AgentRun.Status.QUEUED
    assert dispatched  # sent to the workers again
    assert streamed == ["text.reset"]  # the stopped turn's text is not the answer
    assert messages_then == ["user"]  # not the step limit's apology
    run.refresh_from_db()
    assert run.status == AgentRun.Status.SUCCEEDED
    assert run.replies.get().content == "Our Manuka Honey UMF 15+ is in stock."
    assert run.model_calls == 4  # both turns' calls counted


def test_a_turn_stopped_as_staff_take_over_stays_silent_if_the_customer_wrote_again_meanwhile(
    settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with loopback_openai(settings) as server:
        run, stopped = _stopped_by_a_take_over(server, monkeypatch)
    conversation = run.conversation
    _, unqueued = message_post(conversation=conversation, author=conversation.owner, content="Hi?")
    conversations_hand_back(conversation_ids=[conversation.pk])  # answers "Hi?", the last
    _store(run, stopped, latency_ms=0)

    run.refresh_from_db()
    assert unqueued is None  # written while staff had the conversation
    assert run.status == AgentRun.Status.CANCELLED  # as if stored before the hand-back
    assert run.silence == AgentRun.Silence.WITH_STAFF
    later = AgentRun.objects.exclude(pk=run.pk).get()
    assert later.user_message.content == "Hi?"
    assert later.status == AgentRun.Status.QUEUED
    assert list(conversation.messages.values_list("role", flat=True)) == ["user", "user"]


def test_a_reply_in_flight_when_staff_reply_and_hand_back_is_not_posted_after_theirs(
    settings,
) -> None:
    run = _running()
    staff_message_post(
        conversation=run.conversation, author=StaffFactory.create(), content="Sam here: yes."
    )
    conversations_hand_back(conversation_ids=[run.conversation_id])
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES, ChatText("Here you are"))

        _store(run, run_turn(run=run), latency_ms=0)

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert "Staff answered" in run.error
    assert run.silence == AgentRun.Silence.ANSWERED_BY_STAFF
    assert list(run.conversation.messages.values_list("role", flat=True)) == ["user", "staff"]


def test_a_turn_that_handed_off_says_nothing_after_staff_answered_meanwhile(settings) -> None:
    run = _running("Can I talk to a person?")
    with loopback_openai(settings) as server:
        server.script_chat(ChatToolCalls([("route_conversation", {"route": "handoff"})]))
        result = run_turn(run=run)
        # A colleague answers in the moment between the hand-off and its reply being stored.
        staff_message_post(
            conversation=run.conversation, author=StaffFactory.create(), content="Sam here."
        )

        _store(run, result, latency_ms=0)

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert list(run.conversation.messages.values_list("role", flat=True)) == ["user", "staff"]


def test_a_reply_in_flight_when_staff_close_the_conversation_is_not_posted(settings) -> None:
    run = _running()
    conversations_close(conversation_ids=[run.conversation_id])
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES, ChatText("Here you are"))

        _store(run, run_turn(run=run), latency_ms=0)

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert "closed" in run.error
    assert run.silence == AgentRun.Silence.CLOSED
    assert not Message.objects.filter(role=Message.Role.ASSISTANT).exists()


def test_a_turn_that_hands_the_conversation_off_still_says_so(settings) -> None:
    run = _running("Can I talk to a person?")
    with loopback_openai(settings) as server:
        server.script_chat(ChatToolCalls([("route_conversation", {"route": "handoff"})]))

        _store(run, run_turn(run=run), latency_ms=0)

    run.refresh_from_db()
    assert run.status == AgentRun.Status.SUCCEEDED
    assert _reply(run).content == HANDOFF_REPLY
    assert Conversation.objects.get(pk=run.conversation_id).status == "needs_human"


def test_a_hand_off_turn_after_staff_took_over_is_not_posted_after_them(settings) -> None:
    run = _running("Can I talk to a person?")
    staff_message_post(
        conversation=run.conversation, author=StaffFactory.create(), content="Sam here."
    )
    with loopback_openai(settings) as server:
        server.script_chat(ChatToolCalls([("route_conversation", {"route": "handoff"})]))

        _store(run, run_turn(run=run), latency_ms=0)

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert not Message.objects.filter(role=Message.Role.ASSISTANT).exists()


def test_an_escalation_after_staff_took_over_is_not_posted_after_them(settings) -> None:
    run = _running("Can I talk to a person?")
    staff_message_post(
        conversation=run.conversation, author=StaffFactory.create(), content="Sam here."
    )
    with loopback_openai(settings) as server:
        # The model asks for a person after staff already have the conversation.
        server.script_chat(
            ROUTE_TO_SALES,
            ChatToolCalls([("escalate_to_human", {"reason": "asked"})]),
            ChatText("I've passed you to our team."),
        )

        _store(run, run_turn(run=run), latency_ms=0)

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert "with staff" in run.error
    assert run.silence == AgentRun.Silence.WITH_STAFF
    assert list(run.conversation.messages.values_list("role", flat=True)) == ["user", "staff"]


def test_a_turn_silenced_mid_turn_then_answered_on_hand_back_is_billed_for_both(
    settings,
) -> None:
    run = _running()
    conversation_handoff(conversation_id=run.conversation_id, reason="Taken over by staff.")
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES,
            ChatText("Here you are", prompt_tokens=20),
            ROUTE_TO_SALES,
            ChatText("Here you are", prompt_tokens=20),
        )
        _store(run, run_turn(run=run), latency_ms=0)

        conversations_hand_back(conversation_ids=[run.conversation_id])
        agent_run_execute(run_id=str(run.pk))

    run.refresh_from_db()
    assert run.status == AgentRun.Status.SUCCEEDED
    assert _reply(run).content == "Here you are"
    assert (run.prompt_tokens, run.model_calls) == (2 * (50 + 20), 4)
    assert run.deliveries == 1


def test_a_silenced_run_queued_again_on_hand_back_starts_a_fresh_event_stream(
    django_capture_on_commit_callbacks,
) -> None:
    conversation = ConversationFactory.create()
    _, queued = message_post(conversation=conversation, author=conversation.owner, content="Hi")
    assert queued is not None
    conversation_handoff(conversation_id=conversation.pk, reason="Taken over by staff.")
    with django_capture_on_commit_callbacks(execute=True):
        agent_run_execute(run_id=str(queued.pk))  # publishes run.cancelled
    cancelled = [event.type for event in run_events_read(run_id=str(queued.pk))]

    conversations_hand_back(conversation_ids=[conversation.pk])

    assert cancelled == ["run.cancelled"]
    # A follower of the run waits for its answer rather than stopping at the old cancel.
    assert run_events_read(run_id=str(queued.pk)) == []
    assert AgentRun.objects.get(pk=queued.pk).status == AgentRun.Status.QUEUED


def test_a_turn_failing_after_staff_took_over_posts_no_apology() -> None:
    run = _running()
    conversation_handoff(conversation_id=run.conversation_id, reason="Taken over by staff.")

    _fail(run, "APIConnectionError: Connection error.")

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert "with staff" in run.error
    assert run.silence == AgentRun.Silence.WITH_STAFF
    assert "APIConnectionError" in run.error
    assert not Message.objects.filter(role=Message.Role.ASSISTANT).exists()


def test_a_run_the_customer_cancelled_mid_turn_keeps_the_reason_when_the_turn_ends(
    settings,
) -> None:
    run = _running()
    agent_run_cancel(run=run)
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES, ChatText("Here you are"))

        _store(run, run_turn(run=run), latency_ms=0)

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert run.error == "Cancelled by the customer."
    assert not Message.objects.filter(role=Message.Role.ASSISTANT).exists()


def test_a_run_cancelled_mid_turn_makes_no_more_model_calls(settings) -> None:
    small_shop_create()
    run = _running()
    agent_run_cancel(run=run)
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES,
            ChatToolCalls([("check_stock", {"sku": "MAN-15"})]),
            ChatText("In stock."),
        )

        _store(run, run_turn(run=run), latency_ms=0)

        assert len(server.chat_requests()) == 1  # the route, asked before the cancel was read
    run.refresh_from_db()
    assert (run.status, run.error) == (AgentRun.Status.CANCELLED, "Cancelled by the customer.")
    assert run.silence == ""  # the customer's doing: not answered when handed back


def test_a_run_cancelled_mid_turn_does_not_hand_the_conversation_to_staff(settings) -> None:
    run = _running("Can I talk to a person?")
    agent_run_cancel(run=run)
    with loopback_openai(settings) as server:
        server.script_chat(ChatToolCalls([("route_conversation", {"route": "handoff"})]))

        _store(run, run_turn(run=run), latency_ms=0)

    assert Conversation.objects.get(pk=run.conversation_id).status == "active"
    assert not Message.objects.filter(role=Message.Role.ASSISTANT).exists()


def test_a_run_the_customer_cancelled_mid_turn_keeps_the_reason_when_the_turn_fails() -> None:
    run = _running()
    agent_run_cancel(run=run)

    _fail(run, "APIConnectionError: Connection error.")

    run.refresh_from_db()
    assert run.status == AgentRun.Status.CANCELLED
    assert run.error.startswith("Cancelled by the customer.")
    assert "APIConnectionError" in run.error


def test_a_turn_whose_conversation_staff_deleted_mid_turn_ends_storing_nothing(
    settings, caplog
) -> None:
    run = _running()
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES, ChatText("Here you are"))
        answered = run_turn(run=run)
    Conversation.objects.filter(pk=run.conversation_id).delete()  # as the admin deletes one
    caplog.clear()

    with caplog.at_level(logging.WARNING, logger="agents.services"):
        stored = _store(run, answered, latency_ms=0)
        failed = _fail(run, "APIConnectionError: Connection error.")

    assert stored is None
    assert failed is None
    assert not AgentRun.objects.exists()
    assert not Message.objects.exists()
    assert [record.getMessage() for record in caplog.records] == ["agent_run.vanished"] * 2
    # Its followers are told, and stop waiting.
    events = run_events_read(run_id=str(run.pk))
    assert events[-1].type == "run.deleted"
    assert all(event.type not in FINAL_EVENTS.values() for event in events)


def test_a_turn_that_handed_off_then_failed_tells_the_customer_staff_will_reply(settings) -> None:
    queued = _queued_run()
    with loopback_openai(settings) as server:
        server.script_chat(
            ROUTE_TO_SALES, ChatToolCalls([("escalate_to_human", {"reason": "asked"})])
        )
        server.default = HttpError(503, "Service unavailable")

        agent_run_execute(run_id=str(queued.pk))

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.FAILED
    assert "503" in run.error
    assert _reply(run).content == HANDOFF_REPLY
    assert run.conversation.status == Conversation.Status.NEEDS_HUMAN


def test_a_turn_that_handed_off_then_fell_back_posts_the_fallback_s_reply(settings) -> None:
    small_shop_create()
    queued = _queued_run()
    with loopback_openai(settings, fallback="offline") as server:
        server.script_chat(
            ROUTE_TO_SALES, ChatToolCalls([("escalate_to_human", {"reason": "asked"})])
        )
        server.default = HttpError(503, "Service unavailable")

        agent_run_execute(run_id=str(queued.pk))

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.status == AgentRun.Status.SUCCEEDED
    assert run.provider == "offline"
    assert "Manuka Honey UMF 15+ 250g" in _reply(run).content
    assert run.conversation.status == Conversation.Status.NEEDS_HUMAN


def test_a_turn_stopped_at_the_step_limit_says_so_to_staff(settings) -> None:
    small_shop_create()
    queued = _queued_run()
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES)
        server.default = ChatToolCalls([("check_stock", {"sku": "MAN-15"})])

        agent_run_execute(run_id=str(queued.pk))

    run = AgentRun.objects.get(pk=queued.pk)
    assert run.model_calls == settings.AGENT_MAX_MODEL_CALLS
    assert "step limit" in run.error
    assert _reply(run).content == STEP_LIMIT_REPLY


def test_the_sweep_dispatches_a_conversation_once_whatever_it_has_waiting() -> None:
    conversation = ConversationFactory.create()
    for content in ("First question", "Second question"):
        AgentRunFactory.create(conversation=conversation, user_message__content=content)

    with CaptureQueriesContext(connection) as queries:
        report = agent_runs_sweep()

    locks = [
        q["sql"]
        for q in queries
        if q["sql"].startswith('SELECT "conversations_conversation"') and "FOR UPDATE" in q["sql"]
    ]
    assert report.dispatched == 1
    assert len(locks) == 1


def test_the_sweep_finds_the_runs_cancelled_mid_turn_from_an_index() -> None:
    with CaptureQueriesContext(connection) as queries:
        agent_runs_sweep()
    [abandoned] = [q["sql"] for q in queries if "'cancelled'" in q["sql"]]

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the index, if one holds the rows
        # The failed-or-cancelled index holds these rows too (among many finished ones in
        # service); in an empty test table the two cost the same and the planner took either.
        # Dropped inside the test's transaction, so the plan shows whether the sweep's own
        # index serves its statement.
        cursor.execute("DROP INDEX run_failed_or_cancelled")
        cursor.execute(f"EXPLAIN {abandoned}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "run_cancelled_mid_turn" in plan


def test_the_reply_stored_event_carries_a_reply_as_the_api_shows_it(settings) -> None:
    run = _running()
    with loopback_openai(settings) as server:
        server.script_chat(ROUTE_TO_SALES, ChatText("Here you are"))
        _store(run, run_turn(run=run), latency_ms=0)
    reply = Message.objects.get(pk=_reply(run).pk)  # as stored, read afresh

    shown = json.loads(JSONRenderer().render(MessageOutputSerializer(reply).data))
    assert json.loads(json.dumps(message_event_data(reply))) == shown
