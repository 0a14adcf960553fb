from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Aggregate, Count, F, FloatField, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from agents.models import AgentRun
from conversations.models import Conversation, Message, ReplyFeedback

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
    return run.replies.filter(role=Message.Role.ASSISTANT).select_related("feedback").first()


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


class _Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont``: the value below which ``fraction`` of the rows fall."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, *, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


def _rated(rating: str) -> Count:
    return Count("replies__feedback", filter=Q(replies__feedback__rating=rating))


_SUCCEEDED = Q(status=AgentRun.Status.SUCCEEDED)
# What each line of the run report counts, over the runs it groups. A run has one reply at
# most (``message_one_reply_per_run``), so joining replies and their feedback counts no run
# twice. Latency is the succeeded runs', from the message's arrival to the reply stored.
RUN_REPORT_COLUMNS = {
    "runs": Count("id"),
    "succeeded": Count("id", filter=_SUCCEEDED),
    "failed": Count("id", filter=Q(status=AgentRun.Status.FAILED)),
    "cancelled": Count("id", filter=Q(status=AgentRun.Status.CANCELLED)),
    "latency_p50_ms": _Percentile("latency_ms", fraction=0.5, filter=_SUCCEEDED),
    "latency_p95_ms": _Percentile("latency_ms", fraction=0.95, filter=_SUCCEEDED),
    "tokens": Sum(F("prompt_tokens") + F("completion_tokens")),
    "cost_usd": Sum("cost_usd"),
    "helpful": _rated(ReplyFeedback.Rating.HELPFUL),
    "unhelpful": _rated(ReplyFeedback.Rating.UNHELPFUL),
}


def run_report(*, since: datetime, by: Literal["route", "day"]) -> list[dict[str, Any]]:
    """The assistant's runs created since ``since``, a line per ``by`` ("route" or "day", the
    shop's day), then a line for them all (``route`` / ``day`` None): how many ended how, how
    fast, what they cost and what customers said of the replies."""
    runs = AgentRun.objects.filter(created_at__gte=since)
    grouped: QuerySet[Any, Any] = (
        runs.annotate(day=TruncDate("created_at")).values("day").order_by("-day")
        if by == "day"
        else runs.values("route").order_by("route")
    )
    lines = list(grouped.annotate(**RUN_REPORT_COLUMNS))
    total = runs.aggregate(**RUN_REPORT_COLUMNS)
    return [*lines, {by: None, **total}] if lines else []
