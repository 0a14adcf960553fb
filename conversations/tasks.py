import logging

from celery import shared_task
from django.core.management import call_command

from conversations import services

logger = logging.getLogger(__name__)


@shared_task(name="conversations.flush_expired_tokens", ignore_result=True)
def flush_expired_tokens() -> None:
    """Delete refresh tokens past their expiry, and their blacklist entries: every refresh adds
    one (it rotates the token), and nothing else removes them."""
    call_command("flushexpiredtokens", verbosity=0)


@shared_task(name="conversations.delete_abandoned_guests", ignore_result=True)
def delete_abandoned_guests() -> None:
    deleted = services.abandoned_guests_delete()
    logger.info("conversations.abandoned_guests_deleted", extra={"deleted": deleted})
