from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Aggregate, Count, Exists, F, FloatField, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from agents.models import AgentRun, DailySpend
from conversations.models import Conversation, Message, ReplyFeedback

# What staff read of a run that posted nothing for staff's sake (``AgentRun.silence``).
SILENCE_NOTES = {
    AgentRun.Silence.WITH_STAFF: "The conversation is with staff; the assistant stays silent.",
    AgentRun.Silence.CLOSED: "The conversation was closed; the assistant stays silent.",
    # The conversation was the assistant's again, but its question had been answered.
    AgentRun.Silence.ANSWERED_BY_STAFF: (
        "Staff answered the message while the assistant wrote; it stays silent."
    ),
}
# Silenced with its message still unanswered: answered when staff hand the conversation back.
UNANSWERED_SILENCES = (AgentRun.Silence.WITH_STAFF, AgentRun.Silence.CLOSED)


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
        and run.silence in UNANSWERED_SILENCES
    )


def _staff_messages_after(conversation_id: Any, message_id: Any) -> QuerySet[Message]:
    return Message.objects.filter(
        conversation_id=conversation_id, role=Message.Role.STAFF, id__gt=message_id
    )


def agent_run_answered_by_staff(*, run: AgentRun) -> bool:
    """Whether staff wrote in the conversation after the run's question."""
    return _staff_messages_after(run.conversation_id, run.user_message_id).exists()


def agent_run_cancelled(*, run_id: str) -> bool:
    return AgentRun.objects.filter(pk=run_id, status=AgentRun.Status.CANCELLED).exists()


def agent_run_stopped(*, run_id: str, handed_off: bool) -> bool:
    """Whether the run's turn is to call the model no more, its reply being one that would not
    be posted (``agents.services._silenced``, which decides when it is stored): the customer
    cancelled it or closed the conversation, or staff took the conversation over, closed it or
    answered after the run's question, or the run was deleted with its conversation (by staff
    in the admin). A turn that handed the conversation to staff itself (``handed_off``) still
    says so."""
    silenced = [Conversation.Status.CLOSED]
    if not handed_off:
        silenced.append(Conversation.Status.NEEDS_HUMAN)
    stopped = (
        Q(status=AgentRun.Status.CANCELLED)
        | Q(conversation__status__in=silenced)
        | Q(Exists(_staff_messages_after(OuterRef("conversation_id"), OuterRef("user_message_id"))))
    )
    return not AgentRun.objects.filter(pk=run_id).exclude(stopped).exists()


def agent_run_message_followed(*, run: AgentRun) -> bool:
    """Whether a message follows the one the run answers in its conversation."""
    return Message.objects.filter(
        conversation_id=run.conversation_id, id__gt=run.user_message_id
    ).exists()


def agent_run_reply(*, run: AgentRun) -> Message | None:
    """The run's reply, with what ``MessageOutputSerializer`` reads of it: its feedback, and its
    answering run (none: a reply answers nothing, but without the join asking costs a query)."""
    replies = run.replies.filter(role=Message.Role.ASSISTANT)
    return replies.select_related("feedback", "answering_run").first()


def conversation_cost_usd(*, conversation_id: UUID) -> Decimal:
    total = AgentRun.objects.filter(conversation_id=conversation_id).aggregate(t=Sum("cost_usd"))
    return total["t"] or Decimal(0)


def conversation_turn_in_progress(*, conversation_id: UUID) -> bool:
    """Whether a worker is running one of the conversation's turns: a run started and not
    finished, running or cancelled mid-turn (a run queued again after a lost delivery is not)."""
    return AgentRun.objects.filter(
        conversation_id=conversation_id,
        status__in=[AgentRun.Status.RUNNING, AgentRun.Status.CANCELLED],
        started_at__isnull=False,
        finished_at__isnull=True,
    ).exists()


def conversations_unfinished_run_ids(*, conversations: QuerySet[Conversation]) -> list[str]:
    """The runs of these conversations not finished yet (queued, running), whose followers are
    still waiting for an event."""
    unfinished = AgentRun.objects.filter(conversation__in=conversations).exclude(
        status__in=AgentRun.FINAL_STATUSES
    )
    return [str(run_id) for run_id in unfinished.values_list("pk", flat=True)]


def daily_spend(*, day: date) -> Decimal:
    """What the model calls cost on ``day``, the shop's (``TIME_ZONE``)."""
    spent = DailySpend.objects.filter(day=day).values_list("cost_usd", flat=True).first()
    return spent or Decimal(0)


def budget_exceeded(*, conversation_id: UUID, now: datetime | None = None) -> str | None:
    """Why the model must not be called for this conversation now (or at ``now``), or None.

    The daily budget's day is the shop's (``TIME_ZONE``), from its midnight, not UTC's.
    """
    if conversation_cost_usd(conversation_id=conversation_id) >= settings.CONVERSATION_BUDGET_USD:
        return f"budget: this conversation reached {settings.CONVERSATION_BUDGET_USD} USD"
    spent = daily_spend(day=timezone.localdate(now))
    if spent >= settings.DAILY_BUDGET_USD:
        return f"budget: today's spend reached {settings.DAILY_BUDGET_USD} USD"
    return None


class _Percentile(Aggregate):
    """PostgreSQL's ``percentile_cont``: the value below which ``fraction`` of the rows fall."""

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: str, *, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


_SUCCEEDED = Q(status=AgentRun.Status.SUCCEEDED)
# What each line of the run report counts, over the runs it groups. Latency is the succeeded
# runs' ``latency_ms``: the turn's own time in the worker, from its claim of the run to its
# reply composed (not the wait in the queue before it: ``started_at`` - ``created_at``).
RUN_REPORT_COLUMNS = {
    "runs": Count("id"),
    "succeeded": Count("id", filter=_SUCCEEDED),
    "failed": Count("id", filter=Q(status=AgentRun.Status.FAILED)),
    "cancelled": Count("id", filter=Q(status=AgentRun.Status.CANCELLED)),
    "latency_p50_ms": _Percentile("latency_ms", fraction=0.5, filter=_SUCCEEDED),
    "latency_p95_ms": _Percentile("latency_ms", fraction=0.95, filter=_SUCCEEDED),
    "tokens": Sum(F("prompt_tokens") + F("completion_tokens")),
    "cost_usd": Sum("cost_usd"),
}
RATINGS = tuple(rating.value for rating in ReplyFeedback.Rating)


def _keyed(queryset: QuerySet[Any], by: str, run: str = "") -> QuerySet[Any]:
    """``queryset`` with the report's key, ``by``, of the run at the path ``run`` ("" for the
    runs themselves): its route, or the shop's day it was created."""
    if by == "day":
        return queryset.annotate(day=TruncDate(f"{run}created_at"))
    return queryset.annotate(route=F(f"{run}route")) if run else queryset


def agent_run_report(*, since: datetime, by: Literal["route", "day"]) -> list[dict[str, Any]]:
    """The assistant's runs created since ``since``, a line per ``by`` ("route" or "day", the
    shop's day), then a line for them all (``route`` / ``day`` None): how many ended how, how
    fast, what they cost and what customers said of the replies.

    The ratings are counted apart, from the period's feedback to the runs it rates: joined
    to every run's reply instead, they made the report ~1.7x slower at 500k runs
    (docs/benchmarks/journal.md, "2026-12-04, 21:45: the assistant report at 500k runs")."""
    runs = AgentRun.objects.filter(created_at__gte=since)
    grouped = _keyed(runs, by).values(by).annotate(**RUN_REPORT_COLUMNS)
    lines = list(grouped.order_by(f"-{by}" if by == "day" else by))
    if not lines:
        return []
    # A verdict is given after the run it rates: its own date, indexed, narrows the rows read.
    rated = _keyed(
        ReplyFeedback.objects.filter(created_at__gte=since, reply__run__created_at__gte=since),
        by,
        "reply__run__",
    )
    counts = {
        (row[by], row["rating"]): row["count"]
        for row in rated.values(by, "rating").annotate(count=Count("pk")).order_by()
    }
    total = {by: None, **runs.aggregate(**RUN_REPORT_COLUMNS)}
    for line in lines:
        line.update({rating: counts.get((line[by], rating), 0) for rating in RATINGS})
    total.update({rating: sum(line[rating] for line in lines) for rating in RATINGS})
    return [*lines, total]
