"""System checks of the assistant's settings."""

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core import checks


def turn_seconds_longest() -> float:
    """How long an OpenAI turn may take at most: each of its model calls waiting out the
    timeout on every attempt, and the longest Retry-After between attempts."""
    attempts = settings.OPENAI_MAX_RETRIES + 1
    waits = settings.OPENAI_RETRY_AFTER_MAX_SECONDS * settings.OPENAI_MAX_RETRIES
    call = settings.OPENAI_TIMEOUT_SECONDS * attempts + waits
    return call * settings.AGENT_MAX_MODEL_CALLS


def turn_time_check(app_configs: Sequence[Any] | None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.LLM_PROVIDER != "openai":
        return []
    longest, limit = turn_seconds_longest(), settings.CELERY_TASK_SOFT_TIME_LIMIT
    if longest < limit:
        return []
    return [
        checks.Warning(
            f"A turn of slow model calls can take {longest:g} s, past the soft time limit"
            f" ({limit} s): such turns are cut short, and the fallback provider answers them.",
            hint="Lower OPENAI_TIMEOUT_SECONDS, OPENAI_MAX_RETRIES or AGENT_MAX_MODEL_CALLS, or"
            " raise CELERY_TASK_SOFT_TIME_LIMIT (and the limits above it).",
            id="agents.W001",
        )
    ]
