import logging

import redis
from celery import shared_task
from django.core.management import call_command
from django.db import InterfaceError, OperationalError

from conversations import handoff_notices, services

logger = logging.getLogger(__name__)


@shared_task(name="conversations.flush_expired_tokens", ignore_result=True)
def flush_expired_tokens() -> None:
    deleted = services.expired_refresh_tokens_delete()
    logger.info("conversations.expired_tokens_deleted", extra={"deleted": deleted})


@shared_task(name="conversations.clear_expired_sessions", ignore_result=True)
def clear_expired_sessions() -> None:
    """Delete the admin's expired sessions: every staff login stores one, and nothing else
    removes it."""
    call_command("clearsessions")


@shared_task(name="conversations.delete_abandoned_guests", ignore_result=True)
def delete_abandoned_guests() -> None:
    deleted = services.abandoned_guests_delete()
    logger.info("conversations.abandoned_guests_deleted", extra={"deleted": deleted})


@shared_task(name="conversations.delete_conversations_past_retention", ignore_result=True)
def delete_conversations_past_retention() -> None:
    deleted = services.conversations_past_retention_delete()
    logger.info("conversations.past_retention_deleted", extra={"deleted": deleted})


NOTICE_SENDERS = {
    "email": handoff_notices.handoff_notice_email,
    "webhook": handoff_notices.handoff_notice_post,
}


@shared_task(
    name="conversations.send_handoff_notice",
    ignore_result=True,
    # The channel failing, or the database or Redis (its sent markers) away for a moment.
    autoretry_for=(
        *handoff_notices.CHANNEL_ERRORS,
        OperationalError,
        InterfaceError,
        redis.ConnectionError,
        redis.TimeoutError,
    ),
    # Waits of 10, 20, 40, 80, 160 s, then 240 s five times: ~25 minutes in all. Each stays
    # under the broker's visibility timeout, past which a waiting task is delivered again.
    retry_backoff=10,
    retry_backoff_max=240,
    retry_jitter=False,
    max_retries=10,
)
def send_handoff_notice(conversation_id: str, channel: str, reminder: bool = False) -> None:
    """Tell staff on ``channel`` ("email" or "webhook") that the conversation waits for them
    (``reminder``: still, unanswered); tried again while the channel fails (above). Delivered
    twice, it sends once."""
    sent = NOTICE_SENDERS[channel](conversation_id=conversation_id, reminder=reminder)
    logger.info(
        "conversation.handoff_notice_sent" if sent else "conversation.handoff_notice_stale",
        extra={"conversation": conversation_id, "channel": channel, "reminder": reminder},
    )


@shared_task(name="conversations.remind_staff_of_waiting_customers", ignore_result=True)
def remind_staff_of_waiting_customers() -> None:
    """Beat's sweep: notices the broker did not take as their hand-off committed, and
    reminders of customers still unanswered."""
    handoff_notices.handoff_notices_sweep()
