"""docker-compose.yml is the production path: every command it runs must exist here."""

import copy
import importlib
import os
import re
import runpy
import socket
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from celery.beat import PersistentScheduler
from celery.schedules import maybe_schedule
from celery.utils.nodenames import default_nodename
from django.core.management import get_commands

from beemanhoney.celery import app as celery_app
from tests.support.celery_worker import PROJECT_DIR, WorkerProcess, new_queue_name

COMPOSE = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
SETTINGS_SOURCE = (PROJECT_DIR / "beemanhoney" / "settings.py").read_text()
ENV_EXAMPLE = (PROJECT_DIR / ".env.example").read_text()


def _command(service: str) -> list[str]:
    command = COMPOSE["services"][service]["command"]
    return command.split() if isinstance(command, str) else list(command)


def _import_target(dotted: str) -> object:
    module_name, _, attribute = dotted.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def test_compose_defines_the_production_services() -> None:
    services = COMPOSE["services"]

    assert set(services) >= {"db", "redis", "api", "worker", "migrate"}
    assert "healthcheck" in services["db"]
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in services["db"]["volumes"])


def test_every_image_is_pinned_to_a_release_line() -> None:
    # A floating tag (pg16, 7-alpine, 3.11-slim) moved to a new pgvector, Redis or Debian
    # release under an unchanged compose file.
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()

    assert COMPOSE["services"]["db"]["image"] == "pgvector/pgvector:0.8.5-pg16"
    assert COMPOSE["services"]["redis"]["image"] == "redis:7.4-alpine"
    assert re.findall(r"^FROM (\S+)", dockerfile, re.M) == ["python:3.11-slim-bookworm"]


def test_the_api_runs_gunicorn_on_an_importable_wsgi_application() -> None:
    command = _command("api")

    assert command[0] == "gunicorn"
    assert callable(_import_target(command[1]))


def test_the_worker_runs_celery_on_the_project_app() -> None:
    command = _command("worker")

    app_module = command[command.index("-A") + 1]
    assert command[0] == "celery"
    assert "worker" in command
    app_package = _import_target(app_module)
    assert isinstance(app_package, ModuleType)
    assert app_package.celery_app.main == "beemanhoney"


def test_the_migrate_service_runs_an_existing_management_command() -> None:
    command = _command("migrate")

    assert command[:2] == ["python", "manage.py"]
    assert command[2] in get_commands()


def test_every_environment_variable_compose_sets_is_read_by_settings_and_documented() -> None:
    app_env = COMPOSE["x-app"]["environment"]

    for name in app_env:
        assert re.search(rf'env_\w+\("{name}"|"{name}"', SETTINGS_SOURCE), name
        assert re.search(rf"^#? ?{name}=", ENV_EXAMPLE, re.MULTILINE), name


def test_the_image_is_built_from_this_project() -> None:
    dockerfile = Path(PROJECT_DIR / "Dockerfile").read_text()

    assert COMPOSE["x-app"]["build"] == "."
    assert "requirements.txt" in dockerfile


def test_beat_schedules_only_registered_tasks() -> None:
    from django.conf import settings

    from beemanhoney.celery import app

    command = _command("beat")
    app.loader.import_default_modules()

    assert command[:4] == ["celery", "-A", "beemanhoney", "beat"]
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks


def test_beat_runs_the_nightly_jobs_at_fixed_times_whenever_it_started() -> None:
    """A beat started again each deploy must still reach the jobs it runs once a day."""
    from django.conf import settings

    zone = ZoneInfo(settings.TIME_ZONE)
    morning, afternoon = (datetime(2026, 12, 5, hour, tzinfo=zone) for hour in (9, 15))

    def next_run(schedule: Any, started: datetime) -> datetime:
        schedule = copy.copy(maybe_schedule(schedule, app=celery_app))
        schedule.nowfun = lambda: started
        return started + schedule.remaining_estimate(started)

    nightly = {
        name: entry["schedule"]
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
        if next_run(entry["schedule"], morning) - morning > timedelta(hours=1)
    }

    assert len(nightly) == 5
    for schedule in nightly.values():
        assert next_run(schedule, morning) == next_run(schedule, afternoon)
        assert next_run(schedule, morning).date() == date(2026, 12, 6)


def _megabytes(size: str) -> float:
    number, unit = re.fullmatch(r"(\d+)\s*([kmg])b?", size.lower()).groups()  # type: ignore[union-attr]
    return int(number) * {"k": 1 / 1024, "m": 1, "g": 1024}[unit]


def test_the_database_has_shared_memory_for_a_parallel_index_build() -> None:
    db = COMPOSE["services"]["db"]
    setting = next(arg for arg in db["command"] if arg.startswith("maintenance_work_mem="))

    # A parallel HNSW build takes maintenance_work_mem of /dev/shm in one segment, and more.
    assert _megabytes(db["shm_size"]) >= 2 * _megabytes(setting.split("=")[1])


def test_the_database_password_must_be_set_and_is_never_a_default() -> None:
    password = COMPOSE["services"]["db"]["environment"]["POSTGRES_PASSWORD"]

    assert password.startswith("${POSTGRES_PASSWORD:?")
    assert "${POSTGRES_PASSWORD:?" in COMPOSE["x-app"]["environment"]["DATABASE_URL"]
    assert re.search(r"^POSTGRES_PASSWORD=$", ENV_EXAMPLE, re.MULTILINE)


def test_the_worker_s_concurrency_is_configurable() -> None:
    assert "--concurrency=${CELERY_CONCURRENCY:-2}" in _command("worker")


def _seconds(duration: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([sm])", duration).groups()  # type: ignore[union-attr]
    return int(number) * {"s": 1, "m": 60}[unit]


def _healthcheck_shell(service: str) -> str:
    test = COMPOSE["services"][service]["healthcheck"]["test"]
    assert test[0] == "CMD-SHELL"
    return test[1].replace("$$", "$")  # compose's escape of a literal $


def _run_shell(command: str, **env: str) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return subprocess.run(
        ["sh", "-c", command],
        cwd=PROJECT_DIR,
        env={**os.environ, "PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_migrate_runs_once_the_database_is_healthy_and_is_not_restarted() -> None:
    # With a restart policy, `up` failed at migrate's first failure while the engine went on
    # retrying it in the background.
    migrate = COMPOSE["services"]["migrate"]

    assert "restart" not in migrate
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    for service in ("api", "worker", "beat"):
        depends_on = COMPOSE["services"][service]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully"


def test_the_api_s_healthcheck_gives_a_worker_as_long_to_boot_as_gunicorn_does() -> None:
    gunicorn_timeout = runpy.run_path(str(PROJECT_DIR / "gunicorn.conf.py"))["timeout"]

    start_period = COMPOSE["services"]["api"]["healthcheck"]["start_period"]

    assert _seconds(start_period) == gunicorn_timeout == 120


def test_the_worker_s_healthcheck_pings_the_worker_s_own_node() -> None:
    command = _command("worker")
    healthcheck = COMPOSE["services"]["worker"]["healthcheck"]

    # No -n/--hostname: the node is Celery's default, celery@<the container's hostname>.
    assert not [arg for arg in command if arg == "-n" or arg.startswith("--hostname")]
    assert default_nodename("") == f"celery@{socket.gethostname()}"
    assert "celery -A beemanhoney inspect ping -d celery@$HOSTNAME " in _healthcheck_shell("worker")
    assert _seconds(healthcheck["start_period"]) >= 120
    assert _seconds(healthcheck["timeout"]) > 10  # the ping's own --timeout


@pytest.mark.django_db
def test_the_worker_s_healthcheck_passes_while_its_node_answers(
    test_broker_url: str, tmp_path: Path
) -> None:
    host = f"healthcheck-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(broker_url=test_broker_url, queue=new_queue_name("healthcheck"))
    worker.name = f"celery@{host}"
    worker.log_path = tmp_path / "worker.log"
    worker.start()
    try:
        alive = _run_shell(_healthcheck_shell("worker"), HOSTNAME=host, REDIS_URL=test_broker_url)
        other = _run_shell(
            _healthcheck_shell("worker"), HOSTNAME=f"{host}-gone", REDIS_URL=test_broker_url
        )
    finally:
        worker.stop()

    assert alive.returncode == 0, alive.stdout + alive.stderr
    assert other.returncode != 0


def test_beat_s_healthcheck_watches_the_schedule_file_beat_keeps_writing(tmp_path: Path) -> None:
    (option,) = [arg for arg in _command("beat") if arg.startswith("--schedule=")]
    schedule = Path(option.removeprefix("--schedule="))
    shell = _healthcheck_shell("beat")
    here = shell.replace(f"find {schedule.parent} ", f"find {tmp_path} ", 1)
    eleven_minutes_ago = time.time() - 11 * 60

    scheduler = PersistentScheduler(app=celery_app, schedule_filename=str(tmp_path / schedule.name))
    try:
        started = _run_shell(here).returncode  # beat writes the file as it starts
        for path in tmp_path.iterdir():
            os.utime(path, (eleven_minutes_ago, eleven_minutes_ago))
        stale = _run_shell(here).returncode
        # Each tick reads the schedule; each sync (every 3 min or so) writes it back.
        assert scheduler.schedule
        scheduler.sync()
        synced = _run_shell(here).returncode
    finally:
        scheduler.close()

    assert shell.startswith(f"find {schedule.parent} -maxdepth 1 -name '{schedule.name}*' ")
    assert (started, stale, synced) == (0, 1, 0)
