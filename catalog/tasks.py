from celery import shared_task

from catalog import services


@shared_task(name="catalog.embed_rows", acks_late=True, max_retries=3, default_retry_delay=10)
def embed_rows(kind: str, ids: list[int], force: bool = False) -> dict[str, int]:
    """Embed these rows if their text or the model changed; a redelivery finds them current."""
    report = services.embeddings_refresh(kind=kind, ids=ids, force=force)
    return {"embedded": report.embedded, "current": report.current}
