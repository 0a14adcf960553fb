from celery import shared_task
from django.core.management import call_command


@shared_task(name="conversations.flush_expired_tokens", ignore_result=True)
def flush_expired_tokens() -> None:
    """Delete refresh tokens past their expiry, and their blacklist entries: every refresh adds
    one (it rotates the token), and nothing else removes them."""
    call_command("flushexpiredtokens", verbosity=0)
