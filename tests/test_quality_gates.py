"""The project's own gates, run as part of `make test`."""

import os
import subprocess
import sys

from tests.support.celery_worker import PROJECT_DIR

BIN_DIR = os.path.dirname(sys.executable)


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
