import re

from tests.support.celery_worker import PROJECT_DIR

SETTINGS_SOURCE = (PROJECT_DIR / "beemanhoney" / "settings.py").read_text()
ENV_EXAMPLE = (PROJECT_DIR / ".env.example").read_text()


def test_every_environment_variable_settings_reads_is_documented() -> None:
    names = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', SETTINGS_SOURCE))

    undocumented = {name for name in names if not re.search(rf"^#? ?{name}=", ENV_EXAMPLE, re.M)}

    assert len(names) > 20
    assert undocumented == set()


def test_celery_redelivers_only_after_the_hard_time_limit(settings) -> None:
    assert settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT
    assert settings.CELERY_TASK_TIME_LIMIT < settings.CELERY_VISIBILITY_TIMEOUT
    assert settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"] == (
        settings.CELERY_VISIBILITY_TIMEOUT
    )
    assert settings.CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS["visibility_timeout"] == (
        settings.CELERY_VISIBILITY_TIMEOUT
    )


def test_a_turn_of_slow_model_calls_fits_inside_the_soft_time_limit(settings) -> None:
    attempts = settings.OPENAI_MAX_RETRIES + 1
    worst_case = settings.OPENAI_TIMEOUT_SECONDS * attempts * settings.AGENT_MAX_MODEL_CALLS

    assert worst_case < settings.CELERY_TASK_SOFT_TIME_LIMIT
