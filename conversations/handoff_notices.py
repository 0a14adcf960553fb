"""Telling staff that a conversation waits for a person: by email, and by a webhook's POST."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.urls import reverse

from conversations.models import Conversation, Message

logger = logging.getLogger(__name__)

# How much of the customer's last message a notice quotes.
EXCERPT_CHARS = 300
# How long a notice sent is remembered, so a task delivered twice does not send it twice.
SENT_MARKER_SECONDS = 24 * 3600


class NoticeNotDelivered(Exception):
    """The webhook refused the notice or did not answer; its task tries again later."""


def _still_waiting(conversation_id: UUID | str) -> Conversation | None:
    """The conversation while it waits for staff: a notice for one handed back or closed since
    is not sent."""
    return Conversation.objects.filter(
        pk=conversation_id, status=Conversation.Status.NEEDS_HUMAN
    ).first()


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
    return words if len(words) <= EXCERPT_CHARS else words[: EXCERPT_CHARS - 1] + "…"


def _admin_url(conversation: Conversation) -> str:
    return settings.SITE_URL + reverse(
        "admin:conversations_handoffqueueentry_change", args=[conversation.pk]
    )


def _notice_text(conversation: Conversation, *, escaped: bool) -> str:
    shown = _chat_markup_escaped if escaped else str
    return (
        f"A customer is waiting for a person ({shown(conversation.handoff_reason)}). "
        f'Their last message: "{shown(_last_words(conversation))}" '
        f"Answer them at {_admin_url(conversation)}"
    )


def handoff_notice(conversation: Conversation) -> dict[str, Any]:
    """The webhook's JSON: why, the customer's last words, and where to answer them; ``text``
    for a chat channel (its markup escaped), the rest as they are, for programs."""
    return {
        "text": _notice_text(conversation, escaped=True),
        "conversation": str(conversation.pk),
        "reason": conversation.handoff_reason,
        "handoff_at": conversation.handoff_at.isoformat() if conversation.handoff_at else None,
        "customer_message": _last_words(conversation),
        "admin_url": _admin_url(conversation),
    }


def _sent_marker(conversation: Conversation, channel: str) -> str:
    handed_off = conversation.handoff_at.isoformat() if conversation.handoff_at else ""
    return f"handoff-notice:{conversation.pk}:{handed_off}:{channel}"


def handoff_notice_email(*, conversation_id: UUID | str) -> bool:
    """Email the notice to ``HANDOFF_NOTICE_EMAILS``; False if the conversation no longer
    waits, or this hand-off's email was sent already. SMTP errors propagate (the task tries
    again)."""
    conversation = _still_waiting(conversation_id)
    if conversation is None or cache.get(marker := _sent_marker(conversation, "email")):
        return False
    # Not the conversation's title in the subject: the customer writes it, and a line break
    # in a header is refused (BadHeaderError).
    send_mail(
        subject=f"A customer is waiting for a person (conversation {str(conversation.pk)[:8]})",
        message=_notice_text(conversation, escaped=False),
        from_email=None,
        recipient_list=settings.HANDOFF_NOTICE_EMAILS,
    )
    cache.set(marker, True, SENT_MARKER_SECONDS)
    return True


def handoff_notice_post(*, conversation_id: UUID | str) -> bool:
    """POST the notice as JSON to ``HANDOFF_NOTICE_WEBHOOK_URL``; False if the conversation no
    longer waits, or this hand-off's notice was posted already; ``NoticeNotDelivered`` unless
    the webhook answers 2xx in time."""
    conversation = _still_waiting(conversation_id)
    if conversation is None or cache.get(marker := _sent_marker(conversation, "webhook")):
        return False
    _webhook_post(handoff_notice(conversation))
    cache.set(marker, True, SENT_MARKER_SECONDS)
    return True


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
    except (urllib.error.URLError, OSError) as error:
        # The URL's path and query often hold the webhook's secret: name only its host.
        host = urlsplit(settings.HANDOFF_NOTICE_WEBHOOK_URL).hostname
        raise NoticeNotDelivered(
            f"the webhook at {host} did not take the notice: {error}"
        ) from error


TEST_NOTICE_TEXT = (
    "A test notice from the Beeman Honey assistant: staff will be told here when a customer is"
    " waiting for a person."
)


def handoff_notice_test_send() -> list[str]:
    """Send a test notice on each channel configured, now, in this process; the channels it
    went to. Errors propagate (``NoticeNotDelivered``, SMTP's), no channel is a ``ValueError``."""
    sent = []
    if settings.HANDOFF_NOTICE_EMAILS:
        send_mail(
            subject="A test notice from the Beeman Honey assistant",
            message=TEST_NOTICE_TEXT,
            from_email=None,
            recipient_list=settings.HANDOFF_NOTICE_EMAILS,
        )
        sent.append("email")
    if settings.HANDOFF_NOTICE_WEBHOOK_URL:
        _webhook_post({"text": TEST_NOTICE_TEXT, "test": True})
        sent.append("webhook")
    if not sent:
        raise ValueError(
            "no notice channel is configured (HANDOFF_NOTICE_EMAILS, HANDOFF_NOTICE_WEBHOOK_URL)"
        )
    return sent


def handoff_notices_queue(*, conversation_id: UUID | str) -> None:
    """Queue a notice on each channel configured (none by default)."""
    from conversations.tasks import send_handoff_notice

    channels = {
        "email": bool(settings.HANDOFF_NOTICE_EMAILS),
        "webhook": bool(settings.HANDOFF_NOTICE_WEBHOOK_URL),
    }
    for channel, configured in channels.items():
        if configured:
            send_handoff_notice.delay(str(conversation_id), channel)
