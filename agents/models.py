import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q

from beemanhoney.common.models import TimeStampedModel


class AgentRun(TimeStampedModel):
    """One execution of the graph answering one user message; its full trace for staff."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINAL_STATUSES = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    class Silence(models.TextChoices):
        """Why a cancelled run posted nothing, when staff were the reason, not the customer."""

        WITH_STAFF = "with_staff"
        CLOSED = "closed"
        ANSWERED_BY_STAFF = "answered_by_staff"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by run_conversation_order, which leads with it.
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="runs", db_index=False
    )
    user_message = models.OneToOneField(
        "conversations.Message", on_delete=models.CASCADE, related_name="answering_run"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    route = models.CharField(max_length=20, blank=True)
    agent = models.CharField(max_length=40, blank=True)
    node_sequence = models.JSONField(default=list, blank=True)
    tool_calls = models.JSONField(default=list, blank=True)
    provider = models.CharField(max_length=20, blank=True)
    model_name = models.CharField(max_length=100, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    model_calls = models.PositiveSmallIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=10, decimal_places=6, default=Decimal(0))
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    silence = models.CharField(max_length=20, choices=Silence.choices, blank=True)
    celery_task_id = models.CharField(max_length=255, blank=True)
    # The X-Request-ID of the request that queued it (beemanhoney.common.request_ids): its task
    # carries it, whichever process dispatches the run.
    request_id = models.CharField(max_length=128, blank=True)
    deliveries = models.PositiveSmallIntegerField(default=0)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["conversation", "created_at"], name="run_conversation_order"),
            models.Index(
                fields=["status", "dispatched_at"],
                name="run_unfinished",
                condition=Q(status__in=["queued", "running"]),
            ),
            # What the admin's search finds a run by, besides its id and its conversation's.
            models.Index(fields=["request_id"], name="run_request_id"),
            models.Index(fields=["celery_task_id"], name="run_celery_task_id"),
            # The runs whose error the admin's search reads: few, where it read every run
            # (0.6 s at 500k runs).
            models.Index(fields=["created_at"], name="run_with_error", condition=~Q(error="")),
            # The admin's list filtered by status (the failed runs its report links to) or by
            # route, newest first: each count read every run (0.25 s at 500k). Only the few
            # runs that failed or were cancelled for the status: the others are most runs,
            # which an index would not spare reading.
            models.Index(
                fields=["status", "created_at"],
                name="run_failed_or_cancelled",
                condition=Q(status__in=["failed", "cancelled"]),
            ),
            models.Index(fields=["route", "created_at"], name="run_route_recent"),
            # The few runs cancelled while a worker ran them, which the sweeper reads every
            # minute (agents.services.CANCELLED_MID_TURN): no index held them, so it read all.
            models.Index(
                fields=["updated_at"],
                name="run_cancelled_mid_turn",
                condition=Q(status="cancelled", started_at__isnull=False, finished_at__isnull=True),
            ),
        ]

    def __str__(self) -> str:
        return f"Run {str(self.id)[:8]} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def usage(self) -> dict[str, int | str]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "model_calls": self.model_calls,
            "model": self.model_name,
            "cost_usd": str(self.cost_usd),
        }


class DailySpend(models.Model):
    """What the model calls cost on each day of the shop's (``TIME_ZONE``), kept apart from the
    runs: a deleted conversation takes its runs with it, not what they spent, and a run spends
    on the day it calls the model, not the day it was queued. The daily budget reads it."""

    day = models.DateField(primary_key=True)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=Decimal(0))

    def __str__(self) -> str:
        return f"{self.day}: {self.cost_usd} USD"
