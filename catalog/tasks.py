import logging
from datetime import timedelta

import openai
from celery import Task, shared_task
from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from beemanhoney.celery import retry_wait_longest, task_connections_close_old
from catalog import services

logger = logging.getLogger(__name__)

# HTTP statuses of the OpenAI API that a later try can pass, as its own client judges them:
# a request timeout, a conflict, rate limiting, and the server's own errors (5xx).
PASSING_STATUSES = frozenset({408, 409, 429})
EMBED_RETRY_BACKOFF_MAX_SECONDS = 600


def embed_retry_wait_max() -> int:
    """The longest an embedding retry waits (``retry_wait_longest``, at most 10 minutes)."""
    return min(EMBED_RETRY_BACKOFF_MAX_SECONDS, retry_wait_longest())


def can_succeed_on_retry(error: Exception) -> bool:
    """Whether a later try can succeed: the database or the OpenAI API away, overloaded or
    rate-limiting (the client's own retries are quick; these wait longer). Not a bad request, a
    refused key, an exhausted quota (a 429 too, which no wait fixes) or a bug."""
    if isinstance(error, OperationalError | InterfaceError | openai.APIConnectionError):
        return True  # APIConnectionError includes timeouts
    if isinstance(error, openai.APIStatusError):
        if error.code == "insufficient_quota":
            return False
        return error.status_code in PASSING_STATUSES or error.status_code >= 500
    return False


@shared_task(bind=True, name="catalog.embed_rows", acks_late=True, max_retries=3)
def embed_rows(self: Task, kind: str, ids: list[int], force: bool = False) -> dict[str, int]:
    """Embed these rows if their text or the model changed; a redelivery finds them current."""
    try:
        report = services.embeddings_refresh(kind=kind, ids=ids, force=force)
    except Exception as error:
        if not can_succeed_on_retry(error):
            raise
        countdown = get_exponential_backoff_interval(
            factor=settings.EMBEDDING_RETRY_BACKOFF_SECONDS,
            retries=self.request.retries,
            maximum=embed_retry_wait_max(),
            full_jitter=True,
        )
        # A broken connection goes now, so that Celery records the retry on a new one.
        task_connections_close_old(self)
        # After max_retries, retry() raises the error itself.
        raise self.retry(exc=error, countdown=countdown) from error
    return {"embedded": report.embedded, "current": report.current}


@shared_task(name="catalog.repair_stale_embeddings", ignore_result=True)
def repair_stale_embeddings() -> None:
    saved_before = timezone.now() - timedelta(seconds=settings.EMBEDDING_REPAIR_AFTER_SECONDS)
    embedded = services.embeddings_repair(
        saved_before=saved_before, limit=settings.EMBEDDING_REPAIR_MAX_ROWS
    )
    if any(embedded.values()):
        logger.warning("catalog.stale_embeddings_repaired", extra=embedded)


@shared_task(name="catalog.prune_product_name_words", ignore_result=True)
def prune_product_name_words() -> None:
    pruned = services.product_name_words_prune()
    logger.info("catalog.product_name_words_pruned", extra={"pruned": pruned})
