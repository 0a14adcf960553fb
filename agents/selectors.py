from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Sum
from django.utils import timezone

from agents.models import AgentRun
from conversations.models import Message


def agent_run_get(*, owner: User, run_id: UUID) -> AgentRun | None:
    return (
        AgentRun.objects.select_related("conversation")
        .filter(pk=run_id, conversation__owner=owner)
        .first()
    )


def agent_run_reply(*, run: AgentRun) -> Message | None:
    return run.replies.filter(role=Message.Role.ASSISTANT).first()


def conversation_cost_usd(*, conversation_id: UUID) -> Decimal:
    total = AgentRun.objects.filter(conversation_id=conversation_id).aggregate(t=Sum("cost_usd"))
    return total["t"] or Decimal(0)


def budget_exceeded(*, conversation_id: UUID) -> str | None:
    """Why the model must not be called for this conversation now, or None."""
    if conversation_cost_usd(conversation_id=conversation_id) >= settings.CONVERSATION_BUDGET_USD:
        return f"budget: this conversation reached {settings.CONVERSATION_BUDGET_USD} USD"
    today = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    spent = AgentRun.objects.filter(created_at__gte=today).aggregate(t=Sum("cost_usd"))["t"]
    if (spent or Decimal(0)) >= settings.DAILY_BUDGET_USD:
        return f"budget: today's spend reached {settings.DAILY_BUDGET_USD} USD"
    return None
