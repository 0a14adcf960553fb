import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from beemanhoney.common.models import TimeStampedModel

MAX_MESSAGE_LENGTH = 4000
MAX_FEEDBACK_COMMENT_LENGTH = 1000
# The group of the customers a chat widget makes (``services.guest_customer_create``).
GUEST_GROUP = "guests"

STAFF_REPLY_HANDOFF_REASON = "A staff member replied."
STAFF_TAKE_OVER_REASON = "Taken over by staff."
# A hand-off for any other reason is the assistant's: the customer asked, or the budget ran out.
STAFF_HANDOFF_REASONS = frozenset({STAFF_REPLY_HANDOFF_REASON, STAFF_TAKE_OVER_REASON})


class Conversation(TimeStampedModel):
    class Status(models.TextChoices):
        ACTIVE = "active"
        NEEDS_HUMAN = "needs_human"
        CLOSED = "closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Indexed by conversation_owner_recent, which leads with it.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="conversations",
        db_index=False,
    )
    title = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    handoff_reason = models.CharField(max_length=200, blank=True)
    handoff_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="conversation_owner_recent"),
            models.Index(fields=["status", "handoff_at"], name="conversation_status_handoff"),
            # The admin's list sorts by these columns too, over every status.
            models.Index(fields=["updated_at"], name="conversation_updated"),
            models.Index(fields=["handoff_at"], name="conversation_handoff"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {str(self.id)[:8]}"


class Message(TimeStampedModel):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"
        STAFF = "staff"

    # Indexed by message_conversation_order, which leads with it.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(max_length=MAX_MESSAGE_LENGTH)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    agent = models.CharField(max_length=40, blank=True, help_text="The agent that wrote it.")
    run = models.ForeignKey(
        "agents.AgentRun",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replies",
        help_text="For an assistant reply, the run that produced it.",
    )
    # NULL, not "", for "no key": the uniqueness constraint ignores NULLs.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    cards = models.JSONField(
        default=list, blank=True, help_text="Products the reply names: sku, name, price, stock."
    )

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="message_idempotency_key_unique",
            ),
            # A run answers exactly one user message, so this is one reply per user message.
            models.UniqueConstraint(
                fields=["run"],
                condition=Q(role="assistant"),
                name="message_one_reply_per_run",
            ),
            models.CheckConstraint(
                condition=Q(role__in=["user", "assistant", "staff"]), name="message_role_valid"
            ),
        ]
        indexes = [models.Index(fields=["conversation", "id"], name="message_conversation_order")]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class ReplyFeedback(TimeStampedModel):
    """The customer's verdict on one of the assistant's replies (one per reply, changeable),
    for staff reading the runs that went wrong."""

    class Rating(models.TextChoices):
        HELPFUL = "helpful"
        UNHELPFUL = "unhelpful"

    reply = models.OneToOneField(
        Message, on_delete=models.CASCADE, primary_key=True, related_name="feedback"
    )
    rating = models.CharField(max_length=10, choices=Rating.choices)
    comment = models.TextField(max_length=MAX_FEEDBACK_COMMENT_LENGTH, blank=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__in=["helpful", "unhelpful"]), name="reply_feedback_rating_valid"
            ),
        ]
        indexes = [models.Index(fields=["-updated_at"], name="reply_feedback_recent")]
        verbose_name_plural = "reply feedback"

    def __str__(self) -> str:
        return f"{self.rating}: {self.comment}" if self.comment else self.rating


class HandoffQueueEntry(Conversation):
    """Conversations waiting for staff, oldest first: the admin's "needs human" queue."""

    class Meta:
        proxy = True
        ordering = ["handoff_at"]
        verbose_name = "conversation waiting for staff"
        verbose_name_plural = "needs human queue"
