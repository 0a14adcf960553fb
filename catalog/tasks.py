import openai
from celery import shared_task
from django.db import InterfaceError, OperationalError

from catalog import services

# What can succeed on a later try: the database or the OpenAI API being away, overloaded or
# rate-limiting (the client's own retries are quick; these wait longer). Not a bad request,
# a refused key or a bug, which would fail the same way again.
RETRYABLE_ERRORS = (
    OperationalError,
    InterfaceError,
    openai.APIConnectionError,  # includes timeouts
    openai.RateLimitError,
    openai.InternalServerError,
)


@shared_task(
    name="catalog.embed_rows",
    acks_late=True,
    autoretry_for=RETRYABLE_ERRORS,
    max_retries=3,
    retry_backoff=10,
)
def embed_rows(kind: str, ids: list[int], force: bool = False) -> dict[str, int]:
    """Embed these rows if their text or the model changed; a redelivery finds them current."""
    report = services.embeddings_refresh(kind=kind, ids=ids, force=force)
    return {"embedded": report.embedded, "current": report.current}
