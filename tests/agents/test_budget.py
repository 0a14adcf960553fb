from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents.graph.prompts import HANDOFF_REPLY
from agents.models import AgentRun
from agents.pricing import Usage, model_cost_usd
from agents.selectors import budget_exceeded
from agents.services import agent_run_execute, agent_run_usage_add, daily_spend_add
from conversations.models import Conversation
from tests.agents.factories import AgentRunFactory
from tests.conversations.factories import ConversationFactory


def test_cost_follows_the_price_table(settings) -> None:
    settings.MODEL_PRICES_PER_MILLION = {"gpt-x": {"prompt": 0.15, "completion": 0.60}}

    cost = model_cost_usd(model="gpt-x", prompt_tokens=10_000, completion_tokens=2_000)

    assert cost == Decimal("0.002700")


@pytest.mark.django_db
def test_a_conversation_over_its_budget_is_handed_to_staff_without_calling_the_model(
    settings,
) -> None:
    settings.CONVERSATION_BUDGET_USD = Decimal("0.50")
    conversation = ConversationFactory.create()
    spent = AgentRunFactory.create(conversation=conversation)
    AgentRun.objects.filter(pk=spent.pk).update(status="succeeded", cost_usd=Decimal("0.51"))
    run = AgentRunFactory.create(conversation=conversation)

    agent_run_execute(run_id=str(run.pk))

    run.refresh_from_db()
    conversation.refresh_from_db()
    assert run.status == "succeeded"
    assert run.model_calls == 0
    assert "budget" in run.error
    assert conversation.status == Conversation.Status.NEEDS_HUMAN
    assert conversation.handoff_reason == "budget"
    assert conversation.messages.get(role="assistant").content == HANDOFF_REPLY


@pytest.mark.django_db
def test_the_daily_budget_stops_the_model_for_every_conversation(settings) -> None:
    settings.DAILY_BUDGET_USD = Decimal("1.00")
    elsewhere = AgentRunFactory.create()
    agent_run_usage_add(run_id=str(elsewhere.pk), usage=Usage(cost_usd=Decimal("1.00")))
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)

    agent_run_execute(run_id=str(run.pk))

    conversation.refresh_from_db()
    assert conversation.handoff_reason == "budget"
    assert "today" in AgentRun.objects.get(pk=run.pk).error


@pytest.mark.django_db
def test_the_daily_budget_day_starts_at_midnight_in_the_shop_s_time_zone(settings) -> None:
    settings.TIME_ZONE = "Europe/London"
    settings.DAILY_BUDGET_USD = Decimal("1.00")
    # 00:30 on 1 July in London (British Summer Time, UTC+1): still 30 June in UTC.
    daily_spend_add(cost_usd=Decimal("1.00"), now=datetime(2026, 6, 30, 23, 30, tzinfo=UTC))
    conversation = ConversationFactory.create()

    that_morning = budget_exceeded(
        conversation_id=conversation.pk, now=datetime(2026, 7, 1, 11, 0, tzinfo=UTC)
    )
    the_next_night = budget_exceeded(
        conversation_id=conversation.pk, now=datetime(2026, 7, 1, 23, 30, tzinfo=UTC)
    )

    assert that_morning is not None
    assert "today" in that_morning
    assert the_next_night is None


@pytest.mark.django_db
def test_a_deleted_conversation_s_spend_still_counts_against_the_day(settings) -> None:
    settings.DAILY_BUDGET_USD = Decimal("1.00")
    deleted = ConversationFactory.create()
    agent_run_usage_add(
        run_id=str(AgentRunFactory.create(conversation=deleted).pk),
        usage=Usage(cost_usd=Decimal("1.00")),
    )
    deleted.delete()

    reason = budget_exceeded(conversation_id=ConversationFactory.create().pk)

    assert reason is not None
    assert "today" in reason


@pytest.mark.django_db
def test_a_run_queued_yesterday_spends_on_the_day_it_calls_the_model(settings) -> None:
    settings.DAILY_BUDGET_USD = Decimal("1.00")
    run = AgentRunFactory.create()
    AgentRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(days=1))

    agent_run_usage_add(run_id=str(run.pk), usage=Usage(cost_usd=Decimal("1.00")))

    assert budget_exceeded(conversation_id=ConversationFactory.create().pk) is not None
