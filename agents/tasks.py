from celery import Task, shared_task

from agents import services


@shared_task(name="agents.execute_run", bind=True, acks_late=True, reject_on_worker_lost=True)
def execute_run(self: Task, run_id: str) -> str | None:
    """Answer one run. Provider retries happen inside the client; this task never retries."""
    run = services.agent_run_execute(run_id=run_id, task_id=self.request.id or "")
    return run.status if run is not None else None


@shared_task(name="agents.sweep_runs", ignore_result=True)
def sweep_runs() -> None:
    """Periodic (Celery beat): recover runs left behind by lost workers or a broker outage."""
    services.agent_runs_sweep()
