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
from django.core.mail import send_mail
from django.urls import reverse

from conversations.models import Conversation, Message

logger = logging.getLogger(__name__)

# How much of the customer's last message a notice quotes.
EXCERPT_CHARS = 300


class NoticeNotDelivered(Exception):
    """The webhook refused the notice or did not answer; its task tries again later."""


def _still_waiting(conversation_id: UUID | str) -> Conversation | None:
    """The conversation while it waits for staff: a notice for one handed back or closed since
    is not sent."""
    return Conversation.objects.filter(
        pk=conversation_id, status=Conversation.Status.NEEDS_HUMAN
    ).first()


def handoff_notice(conversation: Conversation) -> dict[str, Any]:
    """What a notice says: why, the customer's last words, and where to answer them."""
    last_words = (
        conversation.messages.filter(role=Message.Role.USER)
        .order_by("-id")
        .values_list("content", flat=True)
        .first()
    ) or ""
    if len(last_words) > EXCERPT_CHARS:
        last_words = last_words[: EXCERPT_CHARS - 1] + "…"
    admin_url = settings.SITE_URL + reverse(
        "admin:conversations_handoffqueueentry_change", args=[conversation.pk]
    )
    text = (
        f"A customer is waiting for a person ({conversation.handoff_reason}). "
        f'Their last message: "{last_words}" Answer them at {admin_url}'
    )
    return {
        "text": text,
        "conversation": str(conversation.pk),
        "reason": conversation.handoff_reason,
        "handoff_at": conversation.handoff_at.isoformat() if conversation.handoff_at else None,
        "customer_message": last_words,
        "admin_url": admin_url,
    }


def handoff_notice_email(*, conversation_id: UUID | str) -> bool:
    """Email the notice to ``HANDOFF_NOTICE_EMAILS``; False if the conversation no longer
    waits. SMTP errors propagate (the task tries again)."""
    conversation = _still_waiting(conversation_id)
    if conversation is None:
        return False
    notice = handoff_notice(conversation)
    send_mail(
        subject=f"A customer is waiting for a person: {conversation}",
        message=notice["text"],
        from_email=None,
        recipient_list=settings.HANDOFF_NOTICE_EMAILS,
    )
    return True


def handoff_notice_post(*, conversation_id: UUID | str) -> bool:
    """POST the notice as JSON to ``HANDOFF_NOTICE_WEBHOOK_URL``; False if the conversation no
    longer waits; ``NoticeNotDelivered`` unless the webhook answers 2xx in time."""
    conversation = _still_waiting(conversation_id)
    if conversation is None:
        return False
    # http or https only: settings refuse any other scheme.
    request = urllib.request.Request(  # noqa: S310
        settings.HANDOFF_NOTICE_WEBHOOK_URL,
        data=json.dumps(handoff_notice(conversation)).encode(),
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
    return True


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
