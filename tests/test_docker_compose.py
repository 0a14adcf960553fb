"""docker-compose.yml is the production path: every command it runs must exist here."""

import importlib
import re
from pathlib import Path
from types import ModuleType

import yaml
from django.core.management import get_commands

from tests.support.celery_worker import PROJECT_DIR

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
    assert services["db"]["image"] == "pgvector/pgvector:pg16"
    assert "healthcheck" in services["db"]
    assert any(volume.endswith(":/var/lib/postgresql/data") for volume in services["db"]["volumes"])
    assert services["redis"]["image"] == "redis:7-alpine"


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
    assert (PROJECT_DIR / "manage.py").exists()


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
