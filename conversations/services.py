"""Every write to conversations and messages."""

from __future__ import annotations

import logging
import secrets
import time
import unicodedata
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, OperationalError, transaction
from django.db.models import QuerySet, Value
from django.db.models.functions import Concat
from django.utils import timezone
from psycopg.errors import LockNotAvailable

from beemanhoney.common.exceptions import ApplicationError, DeletedMeanwhile
from conversations.handoff_notices import handoff_notices_queue
from conversations.models import (
    GUEST_GROUP,
    MAX_MESSAGE_LENGTH,
    STAFF_HANDOFF_REASONS,
    STAFF_REPLY_HANDOFF_REASON,
    Conversation,
    Message,
    ReplyFeedback,
)
from conversations.selectors import (
    abandoned_guests,
    conversations_past_retention,
    message_by_idempotency_key,
    unanswered_customer_message,
)

if TYPE_CHECKING:
    from agents.models import AgentRun

logger = logging.getLogger(__name__)

# How long ``_locked_with_their_runs`` waits before it locks again, having found a row held
# and let go of all; and for how long it lets go before it waits for the rows instead.
LOCK_RETRY_SECONDS = 0.05
LOCK_RETRIES_FOR_SECONDS = 10.0


def guest_customer_create() -> User:
    """A customer with no login of their own, for a website chat widget."""
    user_model = get_user_model()
    with transaction.atomic():
        user = user_model.objects.create_user(username=f"guest-{secrets.token_hex(8)}")
        user.set_unusable_password()
        user.save(update_fields=["password"])
        group, _ = Group.objects.get_or_create(name=GUEST_GROUP)
        user.groups.add(group)
    return user


def abandoned_guests_delete(*, batch_size: int = 1000) -> int:
    """Delete the guests ``abandoned_guests`` finds, a batch per transaction; how many. A chat
    widget makes a guest for every visitor, and most never write."""
    return _deleted_in_batches(abandoned_guests(now=timezone.now()), batch_size=batch_size)


def conversations_past_retention_delete(*, batch_size: int = 200) -> int:
    """Delete the conversations untouched for ``CONVERSATION_RETENTION_DAYS`` (none when it is
    0), with their messages, runs and feedback, a batch per transaction (as
    ``conversations_delete`` deletes them: followers of a run left unfinished are told); how
    many. Their guests, left with none, go with the abandoned guests."""
    if not settings.CONVERSATION_RETENTION_DAYS:
        return 0
    untouched_since = timezone.now() - timedelta(days=settings.CONVERSATION_RETENTION_DAYS)
    past = conversations_past_retention(untouched_since=untouched_since)
    deleted = 0
    while True:
        with transaction.atomic():
            if not (ids := list(past.values_list("pk", flat=True)[:batch_size])):
                return deleted
            # Locked as every delete locks them (``_locked_with_their_runs``), then read again:
            # one a message was posted to meanwhile is no longer past its retention, and stays.
            _locked_with_their_runs(Conversation.objects.filter(pk__in=ids))
            still_past = list(past.filter(pk__in=ids).values_list("pk", flat=True))
            _locked_deleted(still_past)
            deleted += len(still_past)


def expired_refresh_tokens_delete(*, batch_size: int = 5000) -> int:
    """Delete the refresh tokens past their expiry, with their blacklist entries, a batch per
    transaction; how many. Every refresh adds one (it rotates the token) and every guest sign-up
    another; simplejwt's ``flushexpiredtokens`` loads them all and deletes them in one
    transaction (200k took 15 s and ~400 MB), which past the task's time limit never ends."""
    from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

    expired = OutstandingToken._default_manager.filter(expires_at__lte=timezone.now())
    return _deleted_in_batches(expired, batch_size=batch_size)


def _deleted_in_batches(rows: QuerySet[Any], *, batch_size: int) -> int:
    """Delete the rows ``rows`` selects (with what cascades from them), ``batch_size`` a
    transaction, until it selects none; how many.

    Each batch is selected and locked in one statement: a row written meanwhile is locked once
    that write commits, seen as it is then, and left if ``rows`` no longer selects it.
    """
    locking = rows.select_for_update(of=("self",)).values_list("pk", flat=True)
    deleted = 0
    while True:
        with transaction.atomic():
            if not (ids := list(locking[:batch_size])):
                return deleted
            rows.model._default_manager.filter(pk__in=ids).delete()
        deleted += len(ids)


def message_content_checked(content: str) -> str:
    """``content`` stripped; an ``ApplicationError`` on "content" if it is empty or too long
    (the check of every message a customer or staff post)."""
    content = content.strip()
    if not any(_readable(char) for char in content):
        raise ApplicationError("This field may not be blank.", code="blank", field="content")
    if len(content) > MAX_MESSAGE_LENGTH:
        raise ApplicationError(
            f"Ensure this field has no more than {MAX_MESSAGE_LENGTH} characters.",
            code="max_length",
            field="content",
        )
    return content


def _readable(char: str) -> bool:
    """Whether ``char`` shows something: not a space, an invisible character (a zero-width
    space, a control) or a mark with no letter to sit on (a combining accent). Characters this
    Python's Unicode tables do not know (``Cn``: emoji newer than them, such as U+1FA77) and
    private-use ones (``Co``, which fonts draw) count as readable."""
    category = unicodedata.category(char)
    return category[0] not in "ZM" and category not in ("Cc", "Cf", "Cs")


def _reply_checked(message: Message) -> Message:
    if message.role != Message.Role.ASSISTANT:
        raise ApplicationError("Only the assistant's replies take feedback.", code="not_a_reply")
    return message


def _conversation_locked(conversation_id: UUID, *, no_key: bool = False) -> Conversation:
    """The conversation, locked until the caller's transaction ends; ``DeletedMeanwhile`` if it
    is gone. ``no_key``: a lock that leaves rows referring to it free to be written."""
    locked = (
        Conversation.objects.select_for_update(no_key=no_key).filter(pk=conversation_id).first()
    )
    if locked is None:
        raise DeletedMeanwhile
    return locked


def reply_feedback_give(
    *, reply: Message, rating: str, comment: str = ""
) -> tuple[ReplyFeedback, bool]:
    """Record the customer's ``rating`` of the assistant's ``reply``, replacing any earlier
    verdict on it, and say whether there was none (two first verdicts at once: the second
    replaces the first); an ``ApplicationError`` (``not_a_reply``) for another kind of
    message, and ``DeletedMeanwhile`` if its conversation was deleted after the request read
    the reply."""
    _reply_checked(reply)
    with transaction.atomic():
        # The reply's foreign key is checked only at commit, so a verdict on a reply deleted
        # meanwhile would fail there (a 500); holding its conversation keeps a customer's
        # delete (which locks it first) waiting until this commits.
        _conversation_locked(reply.conversation_id, no_key=True)
        feedback, created = ReplyFeedback.objects.update_or_create(
            reply=reply, defaults={"rating": rating, "comment": comment.strip()}
        )
    logger.info(
        "conversation.reply_rated",
        extra={
            "conversation": str(reply.conversation_id),
            "message_id": reply.pk,
            "rating": rating,
        },
    )
    reply.feedback = feedback
    return feedback, created


def reply_feedback_withdraw(*, reply: Message) -> bool:
    """Delete the customer's verdict on ``reply``; whether there was one."""
    deleted, _ = ReplyFeedback.objects.filter(reply=_reply_checked(reply)).delete()
    return bool(deleted)


def conversation_create(*, owner: User, title: str = "") -> Conversation:
    return Conversation.objects.create(owner=owner, title=title[:120])


def conversation_retitle(*, conversation_id: UUID, title: str) -> None:
    """Staff rename a conversation; ``DeletedMeanwhile`` if it is gone."""
    renamed = Conversation.objects.filter(pk=conversation_id).update(
        title=title, updated_at=timezone.now()
    )
    if not renamed:
        raise DeletedMeanwhile


def message_post(
    *,
    conversation: Conversation,
    author: User,
    content: str,
    idempotency_key: str | None = None,
    quota: AbstractContextManager[object] | None = None,
) -> tuple[Message, AgentRun | None]:
    """Store the customer's message and, unless staff own the conversation, its queued run.

    Both are written in one transaction; the run is dispatched after commit. A repeated
    ``idempotency_key`` returns the original message and run and writes nothing; with other
    content it is refused (422), as a key names one message. ``quota`` (the API's message
    rates) is entered around storing the message alone, and gives back what it counted when
    the block raises: a retry, a post refused, or one that lost a race with its own retry to
    store the key, counts nothing.
    """
    from agents.services import agent_run_create

    content = message_content_checked(content)
    if idempotency_key:
        # A retry of a message stored before the conversation closed still gets its answer.
        existing = _message_by_idempotency_key(conversation, idempotency_key, content=content)
        if existing is not None:
            return existing
    try:
        with transaction.atomic(), quota or nullcontext():
            # The status as it is now, not as the request read it: staff handing the
            # conversation back (or closing it) meanwhile lock it, and could not see this
            # message to answer it (or refuse it).
            locked = _conversation_locked(conversation.pk)
            if locked.status == Conversation.Status.CLOSED:
                raise ApplicationError(
                    "This conversation is closed.", code="conversation_closed", status_code=409
                )
            message = Message.objects.create(
                conversation=locked,
                role=Message.Role.USER,
                content=content,
                author=author,
                idempotency_key=idempotency_key or None,
            )
            Conversation.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
            run = None
            if locked.status == Conversation.Status.ACTIVE:
                run = agent_run_create(conversation=locked, user_message=message)
    except IntegrityError:
        # A concurrent request with the same key won the race: answer with its result.
        existing = _message_by_idempotency_key(conversation, idempotency_key or "", content=content)
        if existing is None:
            raise
        return existing
    logger.info("conversation.message_posted", extra={"conversation": str(conversation.pk)})
    return message, run


IDEMPOTENCY_KEY_REUSED = (
    "This Idempotency-Key was already used for a different message; "
    "send a new message with a new key."
)


def _message_by_idempotency_key(
    conversation: Conversation, key: str, *, content: str
) -> tuple[Message, AgentRun | None] | None:
    """The message stored under ``key`` and its run; an ``ApplicationError`` if it says
    something other than ``content``: the client reused a key, and answering with the old
    message would silently drop the new one. 422, as the IETF Idempotency-Key draft has it
    (409 here means a closed conversation, which the chat page answers with a new one)."""
    message = message_by_idempotency_key(conversation=conversation, key=key)
    if message is None:
        return None
    if message.content != content:
        raise ApplicationError(
            IDEMPOTENCY_KEY_REUSED,
            code="idempotency_key_reused",
            field="Idempotency-Key",
            status_code=422,
        )
    return message, getattr(message, "answering_run", None)


def conversation_handoff(*, conversation_id: UUID | str, reason: str) -> bool:
    """Staff take over an active conversation: the bot stays silent until they hand it back.
    False when it was not active (with staff already, or closed). Unless staff took it over
    themselves (a reason of ``STAFF_HANDOFF_REASONS``), staff are told once the change commits
    (``handoff_notices``)."""
    updated = Conversation.objects.filter(
        pk=conversation_id, status=Conversation.Status.ACTIVE
    ).update(
        status=Conversation.Status.NEEDS_HUMAN,
        handoff_reason=reason[:200],
        handoff_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if updated:
        logger.info("conversation.handed_off", extra={"conversation": str(conversation_id)})
        if reason not in STAFF_HANDOFF_REASONS:
            transaction.on_commit(
                lambda: handoff_notices_queue(conversation_id=conversation_id), robust=True
            )
    return bool(updated)


@dataclass
class HandBack:
    """What ``conversations_hand_back`` did: which it handed back, and why each one it kept
    with staff over a budget was kept (``budget_exceeded``'s reason, one per conversation)."""

    handed: list[UUID] = field(default_factory=list)
    over_budget: list[str] = field(default_factory=list)


def conversations_hand_back(*, conversation_ids: list[UUID]) -> HandBack:
    """Give the conversations among these that are with staff back to the assistant.

    A customer message that waited unanswered meanwhile (the last message, no staff reply after
    it) is answered by the assistant: otherwise it would wait until the customer wrote again.
    One whose run staff silenced by taking the conversation over gets that run again. One over
    a budget (``budget_exceeded``) stays with staff: its next turn would hand it straight back
    to them, telling the customer a person is on the way.
    """
    from agents.selectors import budget_exceeded
    from agents.services import agent_run_create, agent_run_requeue

    with_staff = Conversation.objects.filter(
        pk__in=conversation_ids, status=Conversation.Status.NEEDS_HUMAN
    )
    with transaction.atomic():
        # Their runs too (a silenced one is queued again), and first, as a worker locks them:
        # holding a conversation while waiting for its run deadlocked with a worker claiming it
        # (a task delivered again). Read again once locked.
        locked = _locked_with_their_runs(with_staff)
        with_staff = with_staff.filter(pk__in=locked).order_by("pk")
        report, handed = HandBack(), []
        for conversation in with_staff:
            if (reason := budget_exceeded(conversation_id=conversation.pk)) is None:
                handed.append(conversation)
            else:
                report.over_budget.append(reason)
        report.handed = [conversation.pk for conversation in handed]
        Conversation.objects.filter(pk__in=report.handed).update(
            status=Conversation.Status.ACTIVE,
            handoff_reason="",
            handoff_at=None,
            updated_at=timezone.now(),
        )
        for conversation in handed:
            waiting = unanswered_customer_message(conversation=conversation)
            if waiting is None:
                continue
            if (silenced := getattr(waiting, "answering_run", None)) is not None:
                agent_run_requeue(run=silenced)
            else:
                agent_run_create(conversation=conversation, user_message=waiting)
    return report


def conversations_close(*, conversation_ids: list[UUID]) -> list[UUID]:
    """Close the open conversations among these (no more messages); which it closed."""
    with transaction.atomic():
        closing = list(
            Conversation.objects.select_for_update()
            .filter(pk__in=conversation_ids)
            .exclude(status=Conversation.Status.CLOSED)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        Conversation.objects.filter(pk__in=closing).update(
            status=Conversation.Status.CLOSED, updated_at=timezone.now()
        )
    return closing


def conversation_close_by_customer(*, conversation: Conversation) -> Conversation:
    """The customer ends the conversation: closed, as staff close one, and its runs not yet
    finished cancelled, so no model call is paid for a reply that would not be posted."""
    from agents.services import conversation_runs_cancel

    with transaction.atomic():
        # Its runs and then the conversation, as a worker locks them: the other order
        # deadlocked with a reply being stored, and the customer's close failed.
        if not _locked_with_their_runs(Conversation.objects.filter(pk=conversation.pk)):
            raise DeletedMeanwhile
        conversation_runs_cancel(conversation_id=conversation.pk)
        conversations_close(conversation_ids=[conversation.pk])
    closed = Conversation.objects.filter(pk=conversation.pk).first()
    if closed is None:
        raise DeletedMeanwhile
    return closed


def conversations_delete(*, conversations: QuerySet[Conversation]) -> None:
    """Delete these conversations with their messages, runs and feedback (in the caller's
    transaction, if any); once that commits, whoever follows one of their unfinished runs (its
    event stream, a ``?wait``) is told ``run.deleted``."""
    with transaction.atomic():
        _locked_deleted(_locked_with_their_runs(conversations))


def _locked_with_their_runs(conversations: QuerySet[Conversation]) -> list[UUID]:
    """Lock these conversations and all their runs, in the caller's transaction; the
    conversations' ids (none: deleted meanwhile). No message can then add a run: its post locks
    its conversation. A delete locks them before it reads the rows to delete: a message posted
    meanwhile is then in before they are read, or its post finds the conversation gone (read
    unlocked, a message stored after the read failed the delete).

    It waits only for the runs, holding nothing else yet: a worker locks a run and then its
    conversation (``agent_runs_lock``). The conversations, and any run a message added between
    the two locks, are taken without waiting; if another holds one, everything is let go (a
    savepoint's rollback) and taken again a moment later, since that other may be waiting for
    what this holds: a worker holding its run waits for the conversation, and the dispatch of a
    conversation's next run holds the conversation and waits for the run. Waiting deadlocked.
    Still held after ``LOCK_RETRIES_FOR_SECONDS``, they are waited for (PostgreSQL ends a
    deadlock, if that is one)."""
    from agents.services import agent_runs_lock

    retry_until = time.monotonic() + LOCK_RETRIES_FOR_SECONDS
    while True:
        nowait = time.monotonic() < retry_until
        try:
            with transaction.atomic():
                agent_runs_lock(conversations=conversations)
                ids = list(
                    Conversation.objects.select_for_update(nowait=nowait)
                    .filter(pk__in=conversations.values("pk"))
                    .order_by("pk")
                    .values_list("pk", flat=True)
                )
                locked = Conversation.objects.filter(pk__in=ids)
                agent_runs_lock(conversations=locked, nowait=nowait)
                return ids
        except OperationalError as exc:
            # Not a wait's ``lock_timeout``, should one be set: that is an error.
            if not (nowait and isinstance(exc.__cause__, LockNotAvailable)):
                raise
        time.sleep(LOCK_RETRY_SECONDS)


def _locked_deleted(ids: list[UUID]) -> None:
    """Delete the conversations ``_locked_with_their_runs`` locked."""
    from agents.run_stream import runs_deleted_publish
    from agents.selectors import conversations_unfinished_run_ids

    locked = Conversation.objects.filter(pk__in=ids)
    run_ids = conversations_unfinished_run_ids(conversations=locked)
    locked.delete()
    _admin_history_scrubbed(Conversation, ids)
    transaction.on_commit(lambda: runs_deleted_publish(run_ids=run_ids))


def _admin_history_scrubbed(model: type[Conversation] | type[User], ids: list[Any]) -> None:
    """The admin's history lines of these deleted rows keep who did what and when, but name
    each row by its id: they named it by its ``str()`` (a conversation's title, which its
    customer may write; an account's username), which would outlive the row and its
    retention. Those written under a proxy of the model too (the admin's queue)."""
    proxies = [m for m in apps.get_models() if m._meta.proxy and m._meta.concrete_model is model]
    content_types = ContentType.objects.get_for_models(
        model, *proxies, for_concrete_models=False
    ).values()
    LogEntry.objects.filter(
        content_type__in=content_types, object_id__in=[str(pk) for pk in ids]
    ).update(object_repr=Concat(Value(f"{model._meta.verbose_name} "), "object_id"))


def users_delete(*, users: QuerySet[User]) -> None:
    """Delete these accounts with their conversations (``conversations_delete``: whoever follows
    one of their unfinished runs is told ``run.deleted``), all or nothing."""
    with transaction.atomic():
        conversations_delete(conversations=Conversation.objects.filter(owner__in=users))
        ids = list(users.values_list("pk", flat=True))
        users.delete()
        _admin_history_scrubbed(User, ids)


def conversation_delete_by_customer(*, conversation: Conversation) -> None:
    """The customer deletes the conversation, with its messages, runs and feedback. Refused
    (409) while a worker writes one of its replies: closing it stops that turn at its next step.
    A run still queued goes with it; the worker that receives it finds nothing to run."""
    from agents.selectors import conversation_turn_in_progress

    with transaction.atomic():
        # A worker starts a run with its conversation locked (agents.services._start), so none
        # starts while this lock is held; nor does a message add one.
        if not _locked_with_their_runs(Conversation.objects.filter(pk=conversation.pk)):
            return  # deleted meanwhile (a second click)
        if conversation_turn_in_progress(conversation_id=conversation.pk):
            raise ApplicationError(
                "A reply to this conversation is being written. Close the conversation, or "
                "wait for the reply, and delete it then.",
                code="reply_in_progress",
                status_code=409,
            )
        _locked_deleted([conversation.pk])
    logger.info("conversation.deleted_by_customer", extra={"conversation": str(conversation.pk)})


STAFF_REPLY_KEY_PREFIX = "staff-reply:"


def staff_message_post(
    *,
    conversation: Conversation,
    author: User,
    content: str,
    reply_key: str | None = None,
    last_message_shown: int | None = None,
) -> Message:
    """A staff member's reply. A reply takes the conversation over if the assistant still had
    it, so the two do not answer the customer at once. A repeated ``reply_key`` (the admin
    form's, sent again by a double click or a resubmitted page) returns the reply it stored
    and writes nothing; with other words (the page sent again with a new reply typed in), it
    is refused rather than reported sent. ``last_message_shown``: the id of the newest message
    the staff's page showed; a customer's message after it refuses the reply, which would have
    counted it answered (no reminder, nothing for the assistant to answer on a hand-back)
    without anyone reading it. ``DeletedMeanwhile`` if the conversation is gone."""
    content = message_content_checked(content)
    key = f"{STAFF_REPLY_KEY_PREFIX}{reply_key}" if reply_key else None
    with transaction.atomic():
        # The lock also serialises two submits of one form: the second finds the first's reply.
        locked = _conversation_locked(conversation.pk)
        if key and (sent := message_by_idempotency_key(conversation=locked, key=key)):
            if sent.content != content:
                raise ApplicationError(
                    "this page's reply was already sent; send the new one from the page as it"
                    " is now",
                    code="reply_already_sent",
                    status_code=409,
                )
            return sent
        if locked.status == Conversation.Status.CLOSED:
            raise ApplicationError(
                "This conversation is closed.", code="conversation_closed", status_code=409
            )
        if last_message_shown is not None and (
            locked.messages.filter(role=Message.Role.USER, pk__gt=last_message_shown).exists()
        ):
            raise ApplicationError(
                "the customer wrote again after the page was shown; read their message, then reply",
                code="customer_wrote_since",
                status_code=409,
            )
        message = Message.objects.create(
            conversation=locked,
            role=Message.Role.STAFF,
            content=content,
            author=author,
            idempotency_key=key,
        )
        # Written in now, as a customer's message marks it (retention, the lists' order).
        Conversation.objects.filter(pk=locked.pk).update(updated_at=timezone.now())
        conversation_handoff(conversation_id=locked.pk, reason=STAFF_REPLY_HANDOFF_REASON)
    return message
