from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Sum
from django.utils import timezone

from agents.models import AgentRun
from conversations.models import Conversation, Message

# Why a run posted nothing: staff had the conversation, or had closed it, before it answered.
SILENCED = {
    Conversation.Status.NEEDS_HUMAN: "The conversation is with staff; the assistant stays silent.",
    Conversation.Status.CLOSED: "The conversation was closed; the assistant stays silent.",
}


def agent_run_get(*, owner: User, run_id: UUID) -> AgentRun | None:
    return (
        AgentRun.objects.select_related("conversation")
        .filter(pk=run_id, conversation__owner=owner)
        .first()
    )


def agent_run_silenced(*, run: AgentRun) -> bool:
    """Whether the run ended without answering because staff had the conversation (or had
    closed it): its message is still unanswered. (Not one the customer cancelled.)"""
    return (
        run.status == AgentRun.Status.CANCELLED
        and run.finished_at is not None
        and run.error.startswith(tuple(SILENCED.values()))
    )


def agent_run_reply(*, run: AgentRun) -> Message | None:
    return run.replies.filter(role=Message.Role.ASSISTANT).first()


def conversation_cost_usd(*, conversation_id: UUID) -> Decimal:
    total = AgentRun.objects.filter(conversation_id=conversation_id).aggregate(t=Sum("cost_usd"))
    return total["t"] or Decimal(0)


def budget_exceeded(*, conversation_id: UUID, now: datetime | None = None) -> str | None:
    """Why the model must not be called for this conversation now (or at ``now``), or None.

    The daily budget's day is the shop's (``TIME_ZONE``), from its midnight, not UTC's.
    """
    if conversation_cost_usd(conversation_id=conversation_id) >= settings.CONVERSATION_BUDGET_USD:
        return f"budget: this conversation reached {settings.CONVERSATION_BUDGET_USD} USD"
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    spent = AgentRun.objects.filter(created_at__gte=today).aggregate(t=Sum("cost_usd"))["t"]
    if (spent or Decimal(0)) >= settings.DAILY_BUDGET_USD:
        return f"budget: today's spend reached {settings.DAILY_BUDGET_USD} USD"
    return None
