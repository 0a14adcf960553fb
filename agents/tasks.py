from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from agents import services
from beemanhoney.celery import retry_wait_longest, task_connections_close_old


@shared_task(name="agents.execute_run", bind=True, acks_late=True, reject_on_worker_lost=True)
def execute_run(self: Task, run_id: str) -> str | None:
    """Answer one run. Provider retries happen inside the client. A turn whose run could not be
    finished because the database went away (a restart, a failover) is sent again within
    seconds, not left running until the sweeper finds it minutes later."""
    try:
        run = services.agent_run_execute(run_id=run_id, task_id=self.request.id or "")
    except (OperationalError, InterfaceError) as exc:
        # The broken connection goes now, so that Celery records the retry on a new one.
        task_connections_close_old(self)
        doubled = settings.AGENT_RUN_DATABASE_RETRY_SECONDS * 2**self.request.retries
        wait = min(doubled, retry_wait_longest())
        raise self.retry(
            exc=exc, countdown=wait, max_retries=settings.AGENT_RUN_DATABASE_RETRIES
        ) from exc
    return run.status if run is not None else None


@shared_task(name="agents.sweep_runs", ignore_result=True)
def sweep_runs() -> None:
    """Periodic (Celery beat): recover runs left behind by lost workers or a broker outage."""
    services.agent_runs_sweep()
