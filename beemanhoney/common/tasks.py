from celery import shared_task


@shared_task(name="common.worker_ping")
def worker_ping(token: str) -> str:
    """Echo ``token`` back: proves a worker consumes the queue and stores results in Postgres."""
    return token
