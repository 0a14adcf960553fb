"""Every write to agent runs: creating, dispatching in order, executing, cancelling."""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from rest_framework import serializers

from agents.broker import broker_task_ids
from agents.graph.names import Node, Route
from agents.graph.prompts import FAILURE_REPLY, HANDOFF_REPLY
from agents.models import AgentRun
from agents.pricing import Usage
from agents.run_stream import run_event_publish, run_events_forget, runs_deleted_publish
from agents.selectors import (
    SILENCE_NOTES,
    agent_run_answered_by_staff,
    agent_run_message_followed,
    agent_run_silenced,
    budget_exceeded,
)
from beemanhoney.common.exceptions import ApplicationError, DeletedMeanwhile
from beemanhoney.common.request_ids import TASK_HEADER, current_request_id
from beemanhoney.common.text import joined_notes, storable_text
from conversations.models import Conversation, Message

if TYPE_CHECKING:
    from django.db.models import QuerySet

    from agents.turns import TurnResult

logger = logging.getLogger(__name__)


def agent_run_create(*, conversation: Conversation, user_message: Message) -> AgentRun:
    """A queued run for ``user_message``; dispatched once the caller's transaction commits."""
    run = AgentRun.objects.create(
        conversation=conversation,
        user_message=user_message,
        request_id=current_request_id.get() or "",
    )
    transaction.on_commit(
        lambda: agent_run_dispatch_next(conversation_id=conversation.pk), robust=True
    )
    return run


def agent_run_requeue(*, run: AgentRun) -> AgentRun:
    """Queue a silenced run again (``agent_run_silenced``), so its message is answered after
    all: staff took the conversation over before the run answered, then handed it back without
    replying. A message has one run, so it is this one. What its silenced turn spent stays
    counted; it is dispatched once the caller's transaction commits."""
    with transaction.atomic():
        run = AgentRun.objects.select_for_update().get(pk=run.pk)
        if not agent_run_silenced(run=run):
            return run
        return _queued_again(run)


def _queued_again(run: AgentRun) -> AgentRun:
    """Queue the run (locked by the caller) again, as if new; what it spent stays counted. It
    is dispatched once the caller's transaction commits."""
    run.status = AgentRun.Status.QUEUED
    run.error = run.silence = run.route = run.agent = ""
    run.node_sequence, run.tool_calls = [], []
    run.latency_ms = None
    run.deliveries = 0
    run.dispatched_at = run.started_at = run.finished_at = None
    run.save()
    # Now, not after commit: a follower reading the old stream (its run.cancelled) once the run
    # shows queued would stop there rather than wait for the answer.
    run_events_forget(run_id=str(run.pk))
    conversation_id = run.conversation_id
    transaction.on_commit(
        lambda: agent_run_dispatch_next(conversation_id=conversation_id), robust=True
    )
    return run


# Cancelled while a worker ran it; that worker closes it when its turn ends (``_cancelled_mid_turn``
# for one run in hand).
CANCELLED_MID_TURN = Q(
    status=AgentRun.Status.CANCELLED, started_at__isnull=False, finished_at__isnull=True
)


def _in_flight(runs: Any) -> Any:
    return runs.filter(
        Q(status=AgentRun.Status.RUNNING)
        | Q(status=AgentRun.Status.QUEUED, dispatched_at__isnull=False)
        | CANCELLED_MID_TURN
    )


def agent_run_dispatch_next(*, conversation_id: uuid.UUID) -> AgentRun | None:
    """Send the conversation's oldest queued run to the workers unless one is in flight.

    Runs of one conversation so execute strictly one after another (the "enqueue" policy):
    each finishing run dispatches the next.
    """
    waiting = AgentRun.objects.filter(
        conversation_id=conversation_id, status=AgentRun.Status.QUEUED, dispatched_at__isnull=True
    )
    if not waiting.exists():
        # Most turns end with nothing queued behind them: one read, and no transaction that
        # locks the conversation and then reads its runs. (A run queued after this read is
        # dispatched by its own message's commit, which then finds this one finished.)
        return None
    with transaction.atomic():
        locked = Conversation.objects.select_for_update().filter(pk=conversation_id).first()
        if locked is None:
            return None
        runs = AgentRun.objects.filter(conversation_id=conversation_id)
        if _in_flight(runs).exists():
            return None
        run = runs.filter(status=AgentRun.Status.QUEUED).order_by("created_at").first()
        if run is None:
            return None
        run.dispatched_at = timezone.now()
        run.celery_task_id = str(uuid.uuid4())
        run.save(update_fields=["dispatched_at", "celery_task_id", "updated_at"])
        transaction.on_commit(lambda: _send(run))
    return run


def _send(run: AgentRun) -> None:
    from agents.tasks import execute_run

    try:
        # Its own request's id, not that of whatever dispatches it (a finishing run's task).
        execute_run.apply_async(
            args=(str(run.pk),),
            task_id=run.celery_task_id,
            headers={TASK_HEADER: run.request_id},
        )
    except Exception:
        # The broker is unreachable: leave the run undispatched for the next attempt.
        AgentRun.objects.filter(pk=run.pk, status=AgentRun.Status.QUEUED).update(dispatched_at=None)
        logger.exception("agent_run.dispatch_failed", extra={"run_id": str(run.pk)})


def _start(run_id: str, task_id: str) -> AgentRun | None:
    """Claim the run for this delivery; None when there is nothing (more) to do."""
    with transaction.atomic():
        # Locks the conversation's row too (joined, no ``of``): no run starts while a customer
        # deletes its conversation (conversations.services.conversation_delete_by_customer).
        run = (
            AgentRun.objects.select_for_update()
            .select_related("conversation", "user_message")
            .filter(pk=run_id)
            .first()
        )
        if run is None:
            return None
        if task_id and run.celery_task_id and task_id != run.celery_task_id:
            # A stale copy of an earlier dispatch; the current one owns the run.
            return None
        if _cancelled_mid_turn(run):
            # Delivered again: the worker that was running it when it was cancelled died.
            _close_cancelled(run)
            return None
        if run.is_finished:
            return None
        handed_off = _handed_off_on_an_earlier_delivery(run)
        if run.deliveries >= settings.AGENT_MAX_DELIVERIES or handed_off:
            # A delivery that handed the conversation to staff and was lost before it said so
            # (the hand-off commits at once, the reply with the run): the customer is told now.
            _finish_lost(run, handed_off=handed_off)
            return None
        if run.conversation.status != Conversation.Status.ACTIVE:
            run.status = AgentRun.Status.CANCELLED
            run.silence = SILENCE_OF[Conversation.Status(run.conversation.status)]
            run.error = SILENCE_NOTES[run.silence]
            run.finished_at = timezone.now()
            run.save()
            _after_finish(run)
            return None
        run.status = AgentRun.Status.RUNNING
        run.deliveries += 1
        run.started_at = run.started_at or timezone.now()
        run.celery_task_id = task_id or run.celery_task_id
        run.save()
        started = {"delivery": run.deliveries}
        transaction.on_commit(
            lambda: run_event_publish(run_id=run_id, type="run.started", data=started)
        )
    return run


def _finish_lost(run: AgentRun, *, handed_off: bool) -> None:
    """Fail a run whose worker was lost: with the hand-off its lost delivery made said now, or
    given up after too many deliveries."""
    if handed_off:
        error = f"the worker was lost after delivery {run.deliveries} handed the conversation off"
        _finish_failed(run, error, handed_off=True, apology=HANDOFF_REPLY)
    else:
        _finish_failed(run, f"gave up after {run.deliveries} deliveries (worker lost)")


def _handed_off_on_an_earlier_delivery(run: AgentRun) -> bool:
    """Whether an earlier delivery of ``run`` handed its conversation to staff (the customer
    asked, or the budget ran out) and nothing was said after the customer's message since.
    One run of a conversation runs at a time, so a hand-off by the assistant after this run
    started is this run's."""
    from conversations.models import STAFF_HANDOFF_REASONS

    conversation = run.conversation
    return (
        run.deliveries > 0
        and run.started_at is not None
        and conversation.status == Conversation.Status.NEEDS_HUMAN
        and conversation.handoff_at is not None
        and conversation.handoff_at >= run.started_at
        and conversation.handoff_reason not in STAFF_HANDOFF_REASONS
        and not conversation.messages.filter(pk__gt=run.user_message_id).exists()
    )


def agent_run_execute(*, run_id: str, task_id: str = "") -> AgentRun | None:
    """Run the graph for one queued run and store its reply and trace (idempotent).

    However the turn ends, the run is left finished: a turn that fails, or whose outcome
    cannot be stored, fails the run with an apology. What its model calls spent is on the run
    already (``agent_run_usage_add``).
    """
    from agents.turns import TurnFailed, run_turn

    run = _start(run_id, task_id)
    if run is None:
        return None
    started = time.perf_counter()
    budget_reason = budget_exceeded(conversation_id=run.conversation_id)
    if budget_reason is not None:
        return _hand_off_for_budget(run, budget_reason)
    try:
        result = run_turn(run=run)
    except TurnFailed as failure:
        cause = failure.__cause__ or failure
        timed_out = isinstance(cause, SoftTimeLimitExceeded)
        if timed_out:
            error = "The turn took longer than the soft time limit."
        else:
            error = f"{type(cause).__name__}: {str(cause)[:500]}"
        return _fail(
            run,
            error,
            with_traceback=not timed_out,
            provider=failure.provider,
            model_name=failure.model_name,
            latency_ms=_elapsed_ms(started),
            handed_off=failure.handed_off,
            tool_calls=failure.tool_calls,
            nodes=failure.nodes,
            # A tool handed the conversation to staff before the provider failed: that is what
            # the customer needs to know, not "try again".
            apology=HANDOFF_REPLY if failure.handed_off else FAILURE_REPLY,
        )
    except Exception as exc:
        return _fail(
            run,
            f"{type(exc).__name__}: {str(exc)[:500]}",
            latency_ms=_elapsed_ms(started),
            with_traceback=True,
        )
    return _store(run, result, latency_ms=_elapsed_ms(started))


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _hand_off_for_budget(run: AgentRun, reason: str) -> AgentRun | None:
    """The model is not called: staff take the conversation over (reason "budget")."""
    from agents.turns import TurnResult
    from conversations.services import conversation_handoff

    result = TurnResult(
        reply=HANDOFF_REPLY,
        route=Route.HANDOFF,
        agent=Node.HANDOFF,
        provider="",
        model_name="",
        nodes=[],
        note=reason,
    )
    result.handed_off = conversation_handoff(conversation_id=run.conversation_id, reason="budget")
    return _store(run, result, latency_ms=0)


def _store(run: AgentRun, result: TurnResult, latency_ms: int) -> AgentRun | None:
    """Store the turn's outcome, or fail the run if it cannot be: left running, the sweeper
    would run (and bill) the turn again."""
    try:
        return _succeed(run, result, latency_ms)
    except Exception as exc:
        logger.exception("agent_run.store_failed", extra={"run_id": str(run.pk)})
        return _fail(
            run,
            f"storing the outcome failed: {type(exc).__name__}: {str(exc)[:500]}",
            provider=result.provider,
            model_name=result.model_name,
            latency_ms=latency_ms,
            handed_off=result.handed_off,
            apology=HANDOFF_REPLY if result.handed_off else FAILURE_REPLY,
            # What the turn did is kept, as for a turn that failed: its calls were paid for.
            tool_calls=result.tool_calls,
            nodes=result.nodes,
        )


# Why a run is silenced by its conversation's status, when that is not the assistant's.
SILENCE_OF = {
    Conversation.Status.NEEDS_HUMAN: AgentRun.Silence.WITH_STAFF,
    Conversation.Status.CLOSED: AgentRun.Silence.CLOSED,
}


def _silenced(run: AgentRun, *, handed_off: bool) -> AgentRun.Silence | None:
    """Why this turn must post nothing, or None; in the caller's transaction, with the
    conversation locked until it commits.

    Staff take a conversation over (a reply, the admin's action, a hand-off) or close it with
    an update of its row, which this lock waits for: a reply is posted either before theirs
    commits or not at all, never after. A turn that handed the conversation off itself still
    says so, unless staff have answered meanwhile. So does one staff answered and handed back
    while it ran: the conversation is the assistant's again, but the question is answered.
    """
    status = (
        Conversation.objects.select_for_update()
        .values_list("status", flat=True)
        .get(pk=run.conversation_id)
    )
    if status == Conversation.Status.CLOSED or (
        status == Conversation.Status.NEEDS_HUMAN and not handed_off
    ):
        return SILENCE_OF[Conversation.Status(status)]
    answered = agent_run_answered_by_staff(run=run)
    return AgentRun.Silence.ANSWERED_BY_STAFF if answered else None


def _withheld(run: AgentRun, *, handed_off: bool, detail: str, stopped: bool = False) -> bool:
    """Whether the turn's answer (``detail`` says what it was) must not be posted: the run was
    cancelled mid-turn, or staff have the conversation (``_silenced``). Then the run is
    cancelled and its reason kept for staff, ``detail`` after it. Called with the run locked,
    before the conversation, as every caller locks them.

    A turn that ``stopped`` as staff took the conversation over, handed back since, is
    withheld as with staff when the customer has written again meanwhile: the hand-back
    answered that message, as it does when the run was silenced before it."""
    if run.status == AgentRun.Status.CANCELLED:
        run.error = joined_notes(run.error, detail)
        return True
    silence = _silenced(run, handed_off=handed_off)
    if silence is None and stopped and agent_run_message_followed(run=run):
        silence = AgentRun.Silence.WITH_STAFF
    if silence is None:
        return False
    run.status = AgentRun.Status.CANCELLED
    run.silence = silence
    run.error = joined_notes(SILENCE_NOTES[silence], detail)
    return True


def agent_run_usage_add(*, run_id: str, usage: Usage) -> None:
    """Count what a model call spent on its run as the call returns, not when the turn ends: the
    provider bills a call whether or not the turn's outcome is stored (a worker that dies
    mid-turn, a delivery whose copy answered first, a turn silenced or failed), and the budgets
    read runs' usage, a running turn's included. Both counts or neither: a count that failed
    is made again (``UsageTally.count_remainder``)."""
    with transaction.atomic():
        AgentRun.objects.filter(pk=run_id).update(
            prompt_tokens=F("prompt_tokens") + usage.prompt_tokens,
            completion_tokens=F("completion_tokens") + usage.completion_tokens,
            model_calls=F("model_calls") + usage.model_calls,
            cost_usd=F("cost_usd") + usage.cost_usd,
            updated_at=timezone.now(),
        )
        daily_spend_add(cost_usd=usage.cost_usd)


def daily_spend_add(*, cost_usd: Decimal, now: datetime | None = None) -> None:
    """Add to the spend of the shop's day (``TIME_ZONE``) at ``now``; one row a day, added to
    in one statement, so concurrent turns never lose each other's spend."""
    if not cost_usd:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO agents_dailyspend (day, cost_usd) VALUES (%s, %s) ON CONFLICT (day)"
            " DO UPDATE SET cost_usd = agents_dailyspend.cost_usd + EXCLUDED.cost_usd",
            [timezone.localdate(now), cost_usd],
        )


def _locked_again(run: AgentRun) -> AgentRun | None:
    """The run read again and locked as its turn ends; None when there is nothing left for the
    turn to store: the run was deleted mid-turn with its conversation (by staff in the admin),
    or its outcome is stored already.

    The first outcome stored answers: another delivery of the run may have finished first (the
    broker restored the task while this one ran, having lost the worker's connection). Storing a
    second would answer the customer's message twice."""
    locked = AgentRun.objects.select_for_update().filter(pk=run.pk).first()
    if locked is None:
        logger.warning("agent_run.vanished", extra={"run_id": str(run.pk)})
        runs_deleted_publish(run_ids=[str(run.pk)])
        return None
    if locked.finished_at is not None:
        logger.warning(
            "agent_run.already_finished",
            extra={"run_id": str(run.pk), "delivery": run.deliveries, "status": locked.status},
        )
        return None
    return locked


def _succeed(run: AgentRun, result: TurnResult, latency_ms: int) -> AgentRun | None:
    with transaction.atomic():
        locked = _locked_again(run)
        if locked is None:
            return None
        run = locked
        run.route = result.route
        run.agent = result.agent
        run.node_sequence = result.nodes
        run.tool_calls = result.tool_calls
        run.provider = result.provider
        run.model_name = result.model_name
        run.latency_ms = latency_ms
        run.finished_at = timezone.now()
        withheld = _withheld(
            run, handed_off=result.handed_off, detail=result.note, stopped=result.stopped
        )
        if result.stopped and not withheld:
            # Stopped as staff took the conversation over (``agent_run_stopped``), who have
            # handed it back since without a word: its message, still the last, is answered
            # after all, as the hand-back answers a run silenced by then.
            run_id = str(run.pk)
            logger.info("agent_run.requeued", extra={"run_id": run_id, "why": "handed back"})
            reset = {"reason": "requeued"}  # what the stopped turn streamed is not the answer
            transaction.on_commit(
                lambda: run_event_publish(run_id=run_id, type="text.reset", data=reset),
                robust=True,
            )
            return _queued_again(run)
        reply = None
        if not withheld:
            run.error = result.note
            reply = Message.objects.create(
                conversation_id=run.conversation_id,
                role=Message.Role.ASSISTANT,
                content=result.reply,
                agent=result.agent,
                run=run,
                cards=result.cards,
            )
            run.status = AgentRun.Status.SUCCEEDED
        run.save()
        _after_finish(run, reply)
    return run


def _fail(
    run: AgentRun,
    error: str,
    *,
    provider: str = "",
    model_name: str = "",
    latency_ms: int | None = None,
    handed_off: bool = False,
    apology: str = FAILURE_REPLY,
    tool_calls: list[dict[str, Any]] | None = None,
    nodes: list[str] | None = None,
    with_traceback: bool = False,
) -> AgentRun | None:
    """Fail the run, recording the provider that failed, the nodes its attempts ran and the
    tools they called (``nodes``, ``tool_calls``: the failed attempts' trace) and how long the
    turn ran until it failed (``latency_ms``). ``with_traceback``: called while handling the
    exception that failed it, whose traceback the one log line of the failure then carries."""
    with transaction.atomic():
        locked = _locked_again(run)
        if locked is None:
            return None
        run = locked
        if latency_ms is not None:
            run.latency_ms = latency_ms
        if tool_calls:
            run.tool_calls = tool_calls
        if nodes:
            run.node_sequence = nodes
        if provider:
            run.provider, run.model_name = provider, model_name
        _finish_failed(
            run,
            storable_text(error),
            handed_off=handed_off,
            apology=apology,
            with_traceback=with_traceback,
        )
    return run


def _finish_failed(
    run: AgentRun,
    error: str,
    *,
    handed_off: bool = False,
    apology: str = FAILURE_REPLY,
    with_traceback: bool = False,
) -> None:
    """Mark the run failed and apologise to the customer (inside the caller's transaction,
    which has locked the run). With staff holding the conversation there is no apology: the
    run is cancelled, as a reply would be."""
    run.finished_at = timezone.now()
    posted = None
    if not _withheld(run, handed_off=handed_off, detail=f"the turn had failed: {error}"):
        run.error = error
        run.status = AgentRun.Status.FAILED
        posted = Message.objects.create(
            conversation_id=run.conversation_id,
            role=Message.Role.ASSISTANT,
            content=apology,
            agent="system",
            run=run,
        )
    run.save()
    _after_finish(run, posted)
    # Once, with the traceback when there is one: it had been logged apart, as a second
    # "agent_run.failed" line.
    logger.log(
        logging.ERROR if with_traceback else logging.WARNING,
        "agent_run.failed",
        extra={"run_id": str(run.pk), "error": error[:200]},
        exc_info=with_traceback,
    )


FINAL_EVENTS = {
    AgentRun.Status.SUCCEEDED: "run.finished",
    AgentRun.Status.FAILED: "run.failed",
    AgentRun.Status.CANCELLED: "run.cancelled",
}


def message_event_data(message: Message) -> dict[str, Any]:
    """A message as the ``reply.stored`` event carries it (the API's message shape)."""
    return {
        "id": message.id,
        "conversation": str(message.conversation_id),
        "role": message.role,
        "content": message.content,
        "agent": message.agent,
        "run": str(message.run_id) if message.run_id else None,
        "answering_run": None,  # the reply to a message, never one
        "created_at": serializers.DateTimeField().to_representation(message.created_at),
        "cards": message.cards,
        "feedback": None,  # as stored: the customer has not rated it yet
    }


def _after_finish(run: AgentRun, reply: Message | None = None) -> None:
    """Once committed: tell listeners (stored reply, final event) and start the next run."""
    conversation_id, run_id = run.conversation_id, str(run.pk)
    final_type, final_data = FINAL_EVENTS[AgentRun.Status(run.status)], {"status": run.status}
    reply_data = message_event_data(reply) if reply is not None else None

    def publish() -> None:
        if reply_data is not None:
            run_event_publish(run_id=run_id, type="reply.stored", data={"message": reply_data})
        run_event_publish(run_id=run_id, type=final_type, data=final_data)

    finished = {
        "run_id": run_id,
        "status": run.status,
        "route": run.route,
        "latency_ms": run.latency_ms,
        "tokens": run.prompt_tokens + run.completion_tokens,
    }
    transaction.on_commit(lambda: logger.info("agent_run.finished", extra=finished))
    # Robust: the outcome is committed, so nothing raised while telling listeners (a time limit
    # while Redis hangs) may reach the turn, which would store it again, or skip the next run.
    transaction.on_commit(publish, robust=True)
    transaction.on_commit(
        lambda: agent_run_dispatch_next(conversation_id=conversation_id), robust=True
    )


def _cancelled_mid_turn(run: AgentRun) -> bool:
    """Cancelled while a worker ran it; that worker closes it when its turn ends."""
    return (
        run.status == AgentRun.Status.CANCELLED
        and run.started_at is not None
        and run.finished_at is None
    )


def _close_cancelled(run: AgentRun) -> None:
    """Close a run cancelled mid-turn whose worker was lost (in the caller's transaction), so
    the conversation's next run can start."""
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at", "updated_at"])
    _after_finish(run)


@dataclass
class SweepReport:
    redispatched: int = 0
    failed: int = 0
    dispatched: int = 0
    closed: int = 0


def agent_runs_sweep(*, now: datetime | None = None) -> SweepReport:
    """Recover runs that a lost worker, a lost message or a broker outage left behind.

    - running but silent for longer than the hard time limit: the worker died; send it again;
    - dispatched but never started for as long, and its message no longer in the broker: the
      message was lost; send it again (one still waiting behind a backlog keeps its place);
    - queued and never dispatched (the broker was down): dispatch the conversation's next run;
    - cancelled mid-turn and silent as long: its worker died; close it.
    A run already delivered ``AGENT_MAX_DELIVERIES`` times is failed instead of looping.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(
        seconds=settings.CELERY_TASK_TIME_LIMIT + settings.RUN_SWEEP_GRACE_SECONDS
    )
    report = SweepReport()
    stuck = AgentRun.objects.filter(
        Q(status=AgentRun.Status.RUNNING, updated_at__lt=stale_before)
        | Q(status=AgentRun.Status.QUEUED, dispatched_at__lt=stale_before)
    )
    stuck_ids = list(stuck.values_list("pk", flat=True))
    # Asked once, and only when runs are stuck: it reads the whole queue.
    in_broker = broker_task_ids() if stuck_ids else set()
    for run_id in stuck_ids:
        outcome = _redispatch(run_id, stale_before, in_broker=in_broker)
        if outcome == "failed":
            report.failed += 1
        elif outcome == "sent":
            report.redispatched += 1
    abandoned = AgentRun.objects.filter(CANCELLED_MID_TURN, updated_at__lt=stale_before).order_by()
    for run_id in abandoned.values_list("pk", flat=True):
        with transaction.atomic():
            run = AgentRun.objects.select_for_update().filter(pk=run_id).first()
            # None: deleted since, with its conversation.
            if run is not None and _cancelled_mid_turn(run) and run.updated_at < stale_before:
                _close_cancelled(run)
                report.closed += 1
    waiting = (
        AgentRun.objects.filter(status=AgentRun.Status.QUEUED, dispatched_at__isnull=True)
        .values_list("conversation_id", flat=True)
        .order_by()  # else the model's ordering joins the DISTINCT: once per run, not per chat
        .distinct()
    )
    for conversation_id in waiting:
        if agent_run_dispatch_next(conversation_id=conversation_id) is not None:
            report.dispatched += 1
    if any(asdict(report).values()):
        logger.warning("agent_runs.swept", extra=asdict(report))
    return report


def _redispatch(run_id: uuid.UUID, stale_before: datetime, *, in_broker: set[str] | None) -> str:
    """Send a stuck run again. A queued run whose message the broker still holds (or when the
    broker cannot tell) is left alone: a copy would join the back of the queue, and the worker
    that reached the first would drop it as stale."""
    with transaction.atomic():
        run = AgentRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return "skipped"  # deleted since, with its conversation
        lost_message = in_broker is not None and run.celery_task_id not in in_broker
        still_stuck = (run.status == AgentRun.Status.RUNNING and run.updated_at < stale_before) or (
            run.status == AgentRun.Status.QUEUED
            and run.dispatched_at is not None
            and run.dispatched_at < stale_before
            and lost_message
        )
        if not still_stuck:
            return "skipped"
        if run.deliveries >= settings.AGENT_MAX_DELIVERIES:
            _finish_lost(run, handed_off=_handed_off_on_an_earlier_delivery(run))
            return "failed"
        run.celery_task_id = str(uuid.uuid4())
        run.dispatched_at = timezone.now()
        run.save()
        transaction.on_commit(lambda: _send(run))
    return "sent"


def agent_runs_lock(*, conversations: QuerySet[Conversation], nowait: bool = False) -> None:
    """Lock these conversations' runs, in the caller's transaction (``nowait``: or raise at
    once if another holds one). Whoever locks a run and its conversation takes the run first, as
    a worker does (``_start`` claims a run and its conversation in one statement, in that
    order; a turn's outcome locks its run, then ``_silenced`` the conversation): a delete that
    held a conversation while it waited for a run deadlocked with that run starting."""
    list(
        AgentRun.objects.select_for_update(nowait=nowait)
        .filter(conversation__in=conversations.values("pk"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def conversation_runs_cancel(*, conversation_id: uuid.UUID) -> int:
    """Cancel the conversation's runs not yet finished (its customer closed it): a queued one
    never calls the model, a running one stops at its next step. How many."""
    cancelled = 0
    unfinished = AgentRun.objects.filter(
        conversation_id=conversation_id,
        status__in=[AgentRun.Status.QUEUED, AgentRun.Status.RUNNING],
    ).order_by("created_at")
    for run in unfinished:
        try:
            agent_run_cancel(run=run)
        except ApplicationError:
            continue  # finished meanwhile
        cancelled += 1
    return cancelled


def agent_run_cancel(*, run: AgentRun) -> AgentRun:
    with transaction.atomic():
        locked = AgentRun.objects.select_for_update().filter(pk=run.pk).first()
        if locked is None:
            raise DeletedMeanwhile
        run = locked
        if run.is_finished:
            raise ApplicationError(
                f"The run has already {run.status}.", code="run_finished", status_code=409
            )
        was_running = run.status == AgentRun.Status.RUNNING
        run.status = AgentRun.Status.CANCELLED
        run.error = "Cancelled by the customer."
        if not was_running:
            run.finished_at = timezone.now()
            _after_finish(run)
        run.save()
    return run
