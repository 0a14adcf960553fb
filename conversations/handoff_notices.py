"""Telling staff that a conversation waits for a person: by email, and by a webhook's POST."""

from __future__ import annotations

import http.client
import json
import logging
import smtplib
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from beemanhoney.common.text import clip
from conversations.models import Conversation, Message
from conversations.selectors import conversations_waiting_unanswered

logger = logging.getLogger(__name__)

# How much of the customer's last message a notice quotes.
EXCERPT_CHARS = 300
# How long a notice sent is remembered, so a task delivered twice does not send it twice.
SENT_MARKER_SECONDS = 24 * 3600
# How long one delivery holds a notice while it sends it: past any send's timeout, so a copy
# delivered meanwhile waits for it, and short of the task's retries (~25 min), so the copy
# sends the notice itself if the holder's process died mid-send.
SENDING_LEASE_SECONDS = 5 * 60


class NoticeNotDelivered(Exception):
    """The webhook refused the notice or did not answer; its task tries again later."""


class NoticeBeingSent(NoticeNotDelivered):
    """Another delivery of the same task is sending this notice now; this one tries again later,
    and finds it sent (or, if that delivery died, sends it)."""


# What a channel that failed raises: the webhook's refusal or silence, SMTP's errors, a refused
# connection.
CHANNEL_ERRORS = (NoticeNotDelivered, smtplib.SMTPException, OSError)


def _still_waiting(conversation_id: UUID | str, *, reminder: bool) -> Conversation | None:
    """The conversation while it waits for staff: a notice for one handed back or closed since
    is not sent, nor a reminder for one staff have answered since."""
    waiting = (
        conversations_waiting_unanswered(handed_off_before=None)
        if reminder
        else Conversation.objects.filter(status=Conversation.Status.NEEDS_HUMAN)
    )
    return waiting.filter(pk=conversation_id).first()


def _chat_markup_escaped(text: str) -> str:
    """``text`` shown as it is by a Slack-style webhook, not read as markup: the customer's
    words (or a reason the model wrote) could otherwise ping a channel (``<!channel>``) or
    show a link of their own (``<https://...|Answer them here>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _last_words(conversation: Conversation) -> str:
    words = (
        conversation.messages.filter(role=Message.Role.USER)
        .order_by("-id")
        .values_list("content", flat=True)
        .first()
    ) or ""
    return clip(words, EXCERPT_CHARS)


def _admin_url(conversation: Conversation) -> str:
    return settings.SITE_URL + reverse(
        "admin:conversations_handoffqueueentry_change", args=[conversation.pk]
    )


def _notice_text(
    conversation: Conversation, *, last_words: str, escaped: bool, reminder: bool = False
) -> str:
    shown = _chat_markup_escaped if escaped else str
    minutes = settings.HANDOFF_REMINDER_MINUTES
    waiting = (
        f"Still no answer: a customer has waited over {minutes}"
        f" minute{'' if minutes == 1 else 's'} for a person"
        if reminder
        else "A customer is waiting for a person"
    )
    return (
        f"{waiting} ({shown(conversation.handoff_reason)}). "
        f'Their last message: "{shown(last_words)}" '
        f"Answer them at {_admin_url(conversation)}"
    )


def handoff_notice(conversation: Conversation, *, reminder: bool = False) -> dict[str, Any]:
    """The webhook's JSON: why, the customer's last words, and where to answer them; ``text``
    for a chat channel (its markup escaped), the rest as they are, for programs."""
    last_words = _last_words(conversation)
    return {
        "text": _notice_text(conversation, last_words=last_words, escaped=True, reminder=reminder),
        "reminder": reminder,
        "conversation": str(conversation.pk),
        "reason": conversation.handoff_reason,
        "handoff_at": conversation.handoff_at.isoformat() if conversation.handoff_at else None,
        "customer_message": last_words,
        "admin_url": _admin_url(conversation),
    }


def _marker(conversation: Conversation, channel: str, *, reminder: bool, state: str) -> str:
    """A key naming one notice (or reminder) of one hand-off on one channel, ``state`` "sent",
    "sending" or "queued"."""
    handed_off = conversation.handoff_at.isoformat() if conversation.handoff_at else ""
    kind = "reminder" if reminder else "notice"
    return f"handoff-{kind}-{state}:{conversation.pk}:{handed_off}:{channel}"


def _sent_once(
    conversation_id: UUID | str,
    channel: str,
    *,
    reminder: bool,
    send: Callable[[Conversation], None],
) -> bool:
    """``send`` the notice (or reminder) of the conversation's hand-off on ``channel``; False,
    sending nothing, if it no longer waits (``_still_waiting``) or this one was sent already;
    ``NoticeBeingSent`` if another delivery is sending it. What ``send`` raises propagates, and
    the notice is not marked sent (the task tries again)."""
    conversation = _still_waiting(conversation_id, reminder=reminder)
    if conversation is None:
        return False
    sent = _marker(conversation, channel, reminder=reminder, state="sent")
    if cache.get(sent):
        return False
    # Checking the sent marker and then sending is not enough on its own: a copy the broker
    # delivers while this one sends would find no marker and send as well.
    sending = _marker(conversation, channel, reminder=reminder, state="sending")
    if not cache.add(sending, True, SENDING_LEASE_SECONDS):
        raise NoticeBeingSent(f"another delivery is sending the {channel} notice")
    try:
        if cache.get(sent):  # sent by a delivery that let go of the lease just now
            return False
        send(conversation)
        cache.set(sent, True, SENT_MARKER_SECONDS)
    finally:
        cache.delete(sending)
    return True


def handoff_notice_email(*, conversation_id: UUID | str, reminder: bool = False) -> bool:
    """Email the notice (or the reminder) to ``HANDOFF_NOTICE_EMAILS``; False if the
    conversation no longer waits (or, for a reminder, staff have answered), or this hand-off's
    email was sent already. SMTP errors propagate (the task tries again)."""
    return _sent_once(
        conversation_id,
        "email",
        reminder=reminder,
        send=lambda conversation: _email(conversation, reminder=reminder),
    )


def _email(conversation: Conversation, *, reminder: bool) -> None:
    # Not the conversation's title in the subject: the customer writes it, and a line break
    # in a header is refused (BadHeaderError).
    waiting = "still waiting" if reminder else "waiting"
    send_mail(
        subject=f"A customer is {waiting} for a person (conversation {str(conversation.pk)[:8]})",
        message=_notice_text(
            conversation,
            last_words=_last_words(conversation),
            escaped=False,
            reminder=reminder,
        ),
        from_email=None,
        recipient_list=settings.HANDOFF_NOTICE_EMAILS,
    )


def handoff_notice_post(*, conversation_id: UUID | str, reminder: bool = False) -> bool:
    """POST the notice (or the reminder) as JSON to ``HANDOFF_NOTICE_WEBHOOK_URL``; False as
    for an email (``handoff_notice_email``); ``NoticeNotDelivered`` unless the webhook answers
    2xx in time."""
    return _sent_once(
        conversation_id,
        "webhook",
        reminder=reminder,
        send=lambda conversation: _webhook_post(handoff_notice(conversation, reminder=reminder)),
    )


def _webhook_post(notice: dict[str, Any]) -> None:
    """POST ``notice`` as JSON to ``HANDOFF_NOTICE_WEBHOOK_URL``; ``NoticeNotDelivered`` unless
    it answers 2xx in time."""
    # http or https only: settings refuse any other scheme.
    request = urllib.request.Request(  # noqa: S310
        settings.HANDOFF_NOTICE_WEBHOOK_URL,
        data=json.dumps(notice).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "beemanhoney-assistant"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=settings.HANDOFF_NOTICE_TIMEOUT_SECONDS
        ) as response:
            response.read(64 * 1024)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        # The URL's path and query often hold the webhook's secret: name only its host.
        host = urlsplit(settings.HANDOFF_NOTICE_WEBHOOK_URL).hostname
        raise NoticeNotDelivered(
            f"the webhook at {host} did not take the notice: {error}"
        ) from error


TEST_NOTICE_TEXT = (
    "A test notice from the Beeman Honey assistant: staff will be told here when a customer is"
    " waiting for a person."
)


def handoff_notice_test_send() -> tuple[list[str], dict[str, Exception]]:
    """Send a test notice on each channel configured, now, in this process: the channels it
    went to, and the error of each it did not go to (``NoticeNotDelivered``, SMTP's), each
    channel tried whatever the other did. No channel configured is a ``ValueError``."""
    senders: dict[str, Callable[[], object]] = {
        "email": lambda: send_mail(
            subject="A test notice from the Beeman Honey assistant",
            message=TEST_NOTICE_TEXT,
            from_email=None,
            recipient_list=settings.HANDOFF_NOTICE_EMAILS,
        ),
        "webhook": lambda: _webhook_post({"text": TEST_NOTICE_TEXT, "test": True}),
    }
    channels = _channels()
    if not channels:
        raise ValueError(
            "no notice channel is configured (HANDOFF_NOTICE_EMAILS, HANDOFF_NOTICE_WEBHOOK_URL)"
        )
    sent: list[str] = []
    failed: dict[str, Exception] = {}
    for channel in channels:
        try:
            senders[channel]()
        except CHANNEL_ERRORS as error:
            failed[channel] = error
        else:
            sent.append(channel)
    return sent, failed


def _channels() -> list[str]:
    """The notice channels configured (none by default)."""
    configured = {
        "email": bool(settings.HANDOFF_NOTICE_EMAILS),
        "webhook": bool(settings.HANDOFF_NOTICE_WEBHOOK_URL),
    }
    return [channel for channel, is_set in configured.items() if is_set]


def _queue_once(conversation: Conversation, channels: list[str], *, reminder: bool) -> bool:
    """Queue the notice (or reminder) of ``conversation``'s hand-off on each of ``channels`` not
    queued for yet; whether any was. A notice the broker did not take is forgotten, so beat's
    next sweep queues it (``handoff_notices_catch_up``), and the error propagates."""
    from conversations.tasks import send_handoff_notice

    queued = False
    for channel in channels:
        marker = _marker(conversation, channel, reminder=reminder, state="queued")
        if not cache.add(marker, True, SENT_MARKER_SECONDS):  # queued by someone else
            continue
        try:
            send_handoff_notice.delay(str(conversation.pk), channel, reminder=reminder)
        except Exception:
            cache.delete(marker)
            raise
        queued = True
    return queued


def handoff_notices_queue(*, conversation_id: UUID | str) -> None:
    """Queue a notice on each channel configured, once per hand-off and channel."""
    channels = _channels()
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if channels and conversation is not None:
        _queue_once(conversation, channels, reminder=False)


# The most notices or reminders one sweep queues: a backlog goes out over the next minutes.
NOTICES_PER_SWEEP = 100
# How old a hand-off whose notice was never queued (the broker down as it committed) must be
# before beat's sweep queues it: time enough for the queueing on commit to have happened.
NOTICE_CATCH_UP_AFTER = timedelta(minutes=1)
# How old it may be, when reminders are off; with them on, until its reminder is due.
NOTICE_CATCH_UP_UNTIL = timedelta(minutes=15)
# How long a reminder stays due (beat or the broker away when it fell due): shorter than its
# queued marker lives (``SENT_MARKER_SECONDS``), so a customer still waiting when the marker
# expires is not reminded of again, day after day.
REMINDER_DUE_FOR = timedelta(hours=12)


def handoff_notices_sweep() -> None:
    """Beat's sweep: notices the broker did not take as their hand-off committed
    (``handoff_notices_catch_up``), then reminders (``handoff_reminders_queue``)."""
    if caught_up := handoff_notices_catch_up():
        logger.info("conversations.handoff_notices_caught_up", extra={"conversations": caught_up})
    if reminded := handoff_reminders_queue():
        logger.info("conversations.handoff_reminders_queued", extra={"conversations": reminded})


def handoff_notices_catch_up() -> int:
    """Queue the notice of each recent hand-off the assistant made, still unanswered, whose
    notice was never queued (the broker did not take it); how many conversations.

    Recent: handed off before its reminder is due (``HANDOFF_REMINDER_MINUTES``, else
    ``NOTICE_CATCH_UP_UNTIL``). The queued markers live in Redis: one that lost them tells
    staff again of those hand-offs alone, not of every one still waiting."""
    channels = _channels()
    if not channels:
        return 0
    until = timedelta(minutes=settings.HANDOFF_REMINDER_MINUTES) or NOTICE_CATCH_UP_UNTIL
    now = timezone.now()
    missed = conversations_waiting_unanswered(handed_off_before=now - NOTICE_CATCH_UP_AFTER).filter(
        handoff_at__gte=now - until
    )
    # Newest first: any the sweep cannot reach in a backlog get their reminder.
    return _queue_each_once(missed.order_by("-handoff_at"), channels, reminder=False)


def handoff_reminders_queue() -> int:
    """Queue a reminder, once per hand-off and channel, for each conversation the assistant
    handed to staff over ``HANDOFF_REMINDER_MINUTES`` ago that no one has answered, until
    ``REMINDER_DUE_FOR`` past that; how many conversations. None when that is 0, or no channel
    is configured."""
    channels = _channels()
    if not settings.HANDOFF_REMINDER_MINUTES or not channels:
        return 0
    due = timezone.now() - timedelta(minutes=settings.HANDOFF_REMINDER_MINUTES)
    overdue = conversations_waiting_unanswered(handed_off_before=due).filter(
        handoff_at__gte=due - REMINDER_DUE_FOR
    )
    return _queue_each_once(overdue, channels, reminder=True)


def _queue_each_once(
    conversations: QuerySet[Conversation], channels: list[str], *, reminder: bool
) -> int:
    """``_queue_once`` for each of ``conversations`` in turn until ``NOTICES_PER_SWEEP`` were
    queued; how many. Those queued for already are passed over, not counted: taking the first
    ``NOTICES_PER_SWEEP`` of them, a backlog already reminded held every later one back."""
    queued = 0
    for conversation in conversations.iterator(chunk_size=NOTICES_PER_SWEEP):
        queued += _queue_once(conversation, channels, reminder=reminder)
        if queued >= NOTICES_PER_SWEEP:
            break
    return queued
