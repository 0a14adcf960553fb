"""Every read of conversations and messages; a customer only ever sees their own."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from uuid import UUID

from django.contrib.auth.models import User
from django.db.models import Case, Count, Exists, F, Model, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce, Greatest
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from agents.models import AgentRun
from agents.selectors import agent_run_silenced
from conversations.models import (
    GUEST_GROUP,
    STAFF_HANDOFF_REASONS,
    Conversation,
    Message,
    ReplyFeedback,
)


def abandoned_guests(*, now: datetime) -> QuerySet[User]:
    """Guests who never opened a conversation and cannot sign in again: no refresh token of
    theirs was valid within an access token's lifetime before ``now`` (so no access token of
    theirs is either), and they joined before that."""
    signed_in_until = now - jwt_settings.ACCESS_TOKEN_LIFETIME
    return (
        User.objects.filter(
            groups__name=GUEST_GROUP,
            date_joined__lt=signed_in_until - jwt_settings.REFRESH_TOKEN_LIFETIME,
            conversations__isnull=True,
        )
        .exclude(outstandingtoken__expires_at__gt=signed_in_until)
        .order_by("pk")
    )


def conversations_past_retention(*, untouched_since: datetime) -> QuerySet[Conversation]:
    """Conversations no one has written in since ``untouched_since``, but those waiting for
    staff (a customer still owed an answer)."""
    return (
        Conversation.objects.filter(updated_at__lt=untouched_since)
        .exclude(status=Conversation.Status.NEEDS_HUMAN)
        .order_by("pk")
    )


def conversations_waiting_unanswered(
    *, handed_off_before: datetime | None
) -> QuerySet[Conversation]:
    """Conversations the assistant handed to staff (before ``handed_off_before``, if given)
    that no staff message has answered since, longest waiting first."""
    answered = Message.objects.filter(
        conversation=OuterRef("pk"),
        role=Message.Role.STAFF,
        created_at__gte=OuterRef("handoff_at"),
    )
    waiting = (
        Conversation.objects.filter(status=Conversation.Status.NEEDS_HUMAN)
        .exclude(handoff_reason__in=STAFF_HANDOFF_REASONS)
        .exclude(Exists(answered))
    )
    if handed_off_before is not None:
        waiting = waiting.filter(handoff_at__lt=handed_off_before)
    return waiting.order_by("handoff_at")


def conversation_list(*, owner: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner=owner).order_by("-created_at", "-id")


def conversation_get(*, owner: User, conversation_id: UUID) -> Conversation | None:
    return Conversation.objects.filter(owner=owner, pk=conversation_id).first()


# What deleting a conversation deletes with it (its cascades, which a test holds to Django's
# collector), each by the path from its rows to their conversation.
CONVERSATION_CASCADES: dict[type[Model], str] = {
    Message: "conversation",
    AgentRun: "conversation",
    ReplyFeedback: "reply__conversation",
}


def conversation_rows_deleted_with(
    *, conversations: QuerySet[Conversation]
) -> dict[type[Model], Counter[UUID]]:
    """For each kind of row deleting ``conversations`` deletes with them, how many go with each
    conversation (those with none left out): a query a kind, counting from the indexes that
    lead with the conversation, however many rows there are."""
    ids = conversations.order_by().values("pk")
    return {
        model: Counter(
            dict(
                model._default_manager.filter(**{f"{path}__in": ids})
                .values_list(path)
                .annotate(rows=Count("pk"))
                .order_by()
            )
        )
        for model, path in CONVERSATION_CASCADES.items()
    }


# A run's trace, which can run to many kilobytes: a message shows only its run's id and status.
ANSWERING_RUN_TRACE = (
    "answering_run__node_sequence",
    "answering_run__tool_calls",
    "answering_run__error",
)


def message_list(*, conversation: Conversation, after: int | None = None) -> QuerySet[Message]:
    messages = (
        conversation.messages.select_related("answering_run", "feedback")
        .defer(*ANSWERING_RUN_TRACE)
        .order_by("id")
    )
    return messages.filter(id__gt=after) if after is not None else messages


def message_get(*, conversation: Conversation, message_id: int) -> Message | None:
    """One of the conversation's messages, with its feedback if it is a rated reply."""
    return conversation.messages.filter(pk=message_id).select_related("feedback").first()


def reply_feedback_of_run(*, run_id: UUID) -> ReplyFeedback | None:
    """The customer's verdict on the reply the run wrote, if they gave one."""
    return ReplyFeedback.objects.filter(reply__run_id=run_id).first()


def message_by_idempotency_key(*, conversation: Conversation, key: str) -> Message | None:
    """The message the customer posted with this ``Idempotency-Key``, with its run."""
    return (
        Message.objects.filter(conversation=conversation, idempotency_key=key)
        .select_related("answering_run")
        .first()
    )


def conversation_history(
    *, conversation: Conversation, up_to: Message, limit: int
) -> list[Message]:
    """The last ``limit`` messages up to and including ``up_to``, oldest first, with the replies
    stored since to the customer's earlier messages, each right after the message it answers.

    A customer who sends a second message while the first is being answered gets the first's
    reply stored after the second: read up to the second, the history held both questions and
    no answer, and the second turn answered the first again. Staff messages answer no run and
    keep their place.
    """
    # An assistant message follows the message its run answered; any other, its own place.
    answered = Coalesce(F("run__user_message_id"), F("id"))
    recent = (
        conversation.messages.filter(
            Q(id__lte=up_to.id) | Q(role=Message.Role.ASSISTANT, run__user_message_id__lt=up_to.id)
        )
        .annotate(answered=answered)
        .order_by("-answered", "-id")[:limit]
    )
    return list(reversed(recent))


def unanswered_customer_message(*, conversation: Conversation) -> Message | None:
    """The conversation's last message if the customer wrote it and no run answered it: it
    was sent while staff had the conversation (it has no run), or staff took the conversation
    over before its run answered (the run was silenced); None otherwise."""
    last = conversation.messages.select_related("answering_run").order_by("-id").first()
    if last is None or last.role != Message.Role.USER:
        return None
    run = getattr(last, "answering_run", None)
    return last if run is None or agent_run_silenced(run=run) else None


def conversations_waiting_since_annotated(
    *, conversations: QuerySet[Conversation]
) -> QuerySet[Conversation]:
    """``conversations``, each with ``waiting_since``: since when its customer has waited for
    staff, or None when staff's last reply has the last word. With no staff reply, since the
    hand-off; after one, since the customer's first message after it, or the hand-off if that
    came later (a reply of an earlier turn with staff, the assistant's turns since). A reply
    that took the conversation over is stored just before its hand-off: it counts as one."""
    messages = Message.objects.filter(conversation=OuterRef("pk"))
    last_staff_reply = messages.filter(role=Message.Role.STAFF).order_by("-id")
    rows = conversations.annotate(
        last_staff_reply_at=Subquery(last_staff_reply.values("created_at")[:1])
    )
    first_since = messages.filter(
        role=Message.Role.USER, created_at__gt=OuterRef("last_staff_reply_at")
    ).order_by("id")
    rows = rows.annotate(first_message_since=Subquery(first_since.values("created_at")[:1]))
    return rows.annotate(
        waiting_since=Case(
            When(last_staff_reply_at=None, then=F("handoff_at")),
            When(first_message_since=None, then=None),
            default=Greatest("handoff_at", "first_message_since"),
        )
    )


def conversation_last_message_id(*, conversation_id: UUID) -> int | None:
    return (
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
