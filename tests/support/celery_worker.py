"""A real Celery worker process for end-to-end tests, pointed at the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import redis
from django.db import connection

from beemanhoney.celery import app as celery_app

PROJECT_DIR = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """The URL of the database the tests run against (pytest-django's ``test_`` copy)."""
    db = connection.settings_dict
    if not db["NAME"].startswith("test"):
        raise RuntimeError("start test workers after django_db_setup, on the test database")
    credentials = quote(db["USER"], safe="")
    if db.get("PASSWORD"):
        credentials += ":" + quote(db["PASSWORD"], safe="")
    host = quote(db["HOST"] or "localhost", safe="")
    port = db["PORT"] or 5432
    return f"postgresql://{credentials}@{host}:{port}/{db['NAME']}"


class WorkerProcess:
    def __init__(
        self, *, broker_url: str, queue: str, extra_env: dict[str, str] | None = None
    ) -> None:
        self.name = f"test-{uuid.uuid4().hex[:8]}@localhost"
        self.broker_url = broker_url
        self.queue = queue
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = PROJECT_DIR / "var" / "test-logs" / f"{self.name.split('@')[0]}.log"

    def start(self, timeout: float = 60) -> WorkerProcess:
        env = {
            **os.environ,
            "DATABASE_URL": test_database_url(),
            "REDIS_URL": self.broker_url,
            "CELERY_QUEUE": self.queue,
            **self.extra_env,
        }
        command = [
            sys.executable, "-m", "celery", "-A", "beemanhoney", "worker",
            "--pool", "solo", "--loglevel", "INFO", "--hostname", self.name,
            "--without-gossip", "--without-mingle",
        ]  # fmt: skip
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log_path.read_text()[-3000:]}")
            if celery_app.control.ping(destination=[self.name], timeout=0.5):
                return self
        self.stop()
        raise RuntimeError(f"worker did not answer within {timeout}s:\n{self.log()[-3000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextmanager
def tasks_sent_to(queue: str) -> Iterator[None]:
    """Send this process's tasks to ``queue`` (a worker of the test's own) while inside."""
    default_queue = celery_app.conf.task_default_queue
    celery_app.conf.task_default_queue = queue
    try:
        yield
    finally:
        celery_app.conf.task_default_queue = default_queue


def _forget_broker_connections() -> None:
    """Make the app look its connection pool up again for the current broker URL (kombu keeps
    one pool per URL, so the default broker's pool is found again, still open, afterwards)."""
    # Private attributes, which celery-types does not declare: what Celery's own _after_fork
    # resets (the public app.close() would deregister the app as well).
    celery_app._pool = None  # type: ignore[attr-defined]
    celery_app.amqp._producer_pool = None  # type: ignore[attr-defined]


@contextmanager
def producing_to_broker(url: str) -> Iterator[None]:
    """This process sends tasks through the broker at ``url`` while inside."""
    default_url = celery_app.conf.broker_url
    _forget_broker_connections()
    celery_app.conf["broker_url"] = url
    try:
        yield
    finally:
        _forget_broker_connections()
        celery_app.conf["broker_url"] = default_url


# Every queue name this session made up, for ``queues_removed`` to clear from the broker.
_queues_named: set[str] = set()


def new_queue_name(prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    _queues_named.add(name)
    return name


def queues_removed(broker_url: str) -> None:
    """Delete from the broker what is left of the session's queues: their messages, and kombu's
    bindings (the embedded broker keeps its data from one run to the next)."""
    broker = redis.Redis.from_url(broker_url)
    left = [key for name in _queues_named for key in broker.scan_iter(match=f"*{name}*")]
    if left:
        broker.delete(*left)


def worker_of_its_own_queue(
    prefix: str, *, broker_url: str, blocker: Any, extra_env: dict[str, str]
) -> Iterator[str]:
    """For a module-scoped fixture: a worker with ``extra_env`` reading a new queue of its own,
    whose name it yields, started with database access let through ``blocker`` (pytest-django's
    ``django_db_blocker``) and stopped after."""
    queue = new_queue_name(prefix)
    worker = WorkerProcess(broker_url=broker_url, queue=queue, extra_env=extra_env)
    with blocker.unblock():
        worker.start()
    yield queue
    worker.stop()


def openai_worker_env(base_url: str, **settings: str) -> dict[str, str]:
    """Environment for a worker whose OpenAI provider talks to the loopback server."""
    return {
        "LLM_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-loopback-secret-key",
        "OPENAI_BASE_URL": base_url,
        "OPENAI_MAX_RETRIES": "0",
        **settings,
    }
