"""The one settings module. Every knob comes from the environment; see .env.example."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TypeVar
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import dj_database_url
from celery.schedules import crontab
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "", *, blank_is_default: bool = True) -> str:
    """``name``'s value; a blank one (``CELERY_QUEUE=`` in an .env file) is the default, as
    unset, unless ``blank_is_default`` is off (where blank means something of its own)."""
    raw = os.environ.get(name)
    if raw is None or (blank_is_default and not raw.strip()):
        return default
    return raw


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


Number = TypeVar("Number", int, float)


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None
    return _within(name, value, raw, "an integer", minimum, maximum)


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None
) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ImproperlyConfigured(f"{name} must be a finite number, got {raw!r}")
    return _within(name, value, raw, "a number", minimum, maximum)


def _within(
    name: str, value: Number, raw: str, kind: str, minimum: Number | None, maximum: Number | None
) -> Number:
    """``value``, if it is within the bounds given: a number out of them (an ef_search of 0, a
    sweep every 0 s) was taken, and failed every search or flooded the queue once served."""
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if maximum is None:
            bounds = f"of at least {minimum}"
        elif minimum is None:
            bounds = f"of at most {maximum}"
        else:
            bounds = f"from {minimum} to {maximum}"
        raise ImproperlyConfigured(f"{name} must be {kind} {bounds}, got {raw!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_origins(name: str) -> list[str]:
    """Comma-separated web origins (``scheme://host[:port]``), lower-cased as browsers send them."""
    origins = [origin.lower() for origin in env_list(name, [])]
    for origin in origins:
        parts = urlsplit(origin)
        if (
            parts.scheme not in {"http", "https"}
            or not parts.hostname
            or origin != f"{parts.scheme}://{parts.netloc}"
        ):
            raise ImproperlyConfigured(
                f"{name} must list origins such as https://shop.example.com (a scheme and a host,"
                f" no path or trailing slash), got {origin!r}"
            )
    return origins


def env_decimal(name: str, default: str) -> Decimal:
    raw = os.environ.get(name) or default
    try:
        value = Decimal(raw)
    except ArithmeticError:
        raise ImproperlyConfigured(f"{name} must be a number such as 0.50, got {raw!r}") from None
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"{name} must be a number of 0 or more, got {raw!r}")
    return value


# How a throttle rate reads: DRF takes the period by its first letter ("20/hours" too).
_RATE = re.compile(r"[1-9][0-9]*/[smhd][a-z]*")


def env_rate(name: str, default: str) -> str:
    raw = os.environ.get(name) or default
    if not _RATE.fullmatch(raw):
        raise ImproperlyConfigured(
            f"{name} must be a rate such as 20/hour (a count, then /second, /minute, /hour or"
            f" /day), got {raw!r}"
        )
    return raw


def env_redis_url(name: str, default: str = "", *, socket_allowed: bool = True) -> str:
    """A Redis URL; ``socket_allowed``: a unix:// one too, which redis-py (the cache) reads and
    Celery's broker does not."""
    raw = env_str(name, default)
    parts = urlsplit(raw)
    if raw and parts.scheme == "unix" and not socket_allowed:
        raise ImproperlyConfigured(
            f"{name} must be a redis:// or rediss:// URL: it is Celery's broker too, which"
            " cannot use a unix:// socket URL"
        )
    if raw and (
        parts.scheme not in {"redis", "rediss", "unix"}
        or (parts.scheme != "unix" and (not parts.hostname or not _port_readable(parts)))
    ):
        # Its scheme and host only: the URL may hold a password.
        raise ImproperlyConfigured(
            f"{name} must be a URL such as redis://redis:6379/0, got one with scheme"
            f" {parts.scheme!r} and host {parts.hostname!r}"
        )
    return raw


def _port_readable(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - a port of letters, or past 65535, raises
    except ValueError:
        return False
    return True


def _is_http_url(url: str) -> bool:
    """An http(s) URL with a host (and a port that is one, if any)."""
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.hostname) and _port_readable(parts)


DEBUG = env_bool("DEBUG", False)
# The image sets EMBEDDED_SERVICES=0: a container missing either URL would otherwise run a
# database and broker of its own, inside it, and lose them with it.
EMBEDDED_SERVICES = env_bool("EMBEDDED_SERVICES", True)
if not EMBEDDED_SERVICES and not (env_str("DATABASE_URL") and env_str("REDIS_URL")):
    raise ImproperlyConfigured(
        "DATABASE_URL and REDIS_URL must both be set: EMBEDDED_SERVICES=0 (as in the image)"
        " refuses to start the embedded PostgreSQL and Valkey"
    )
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY and (DEBUG or not env_str("DATABASE_URL")):
    # A developer's checkout (the embedded services, or `DATABASE_URL=... make run` with DEBUG
    # on) signs with a key made once into var/: a key in the source would let anyone who
    # reaches the server forge a staff token.
    from beemanhoney.embedded import local_secret_key

    SECRET_KEY = local_secret_key()
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
# It also signs the API's tokens: a short or copied key lets anyone forge a staff login.
SECRET_KEY_MIN_LENGTH = 50
if not DEBUG and (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or SECRET_KEY.startswith(("change-me", "django-insecure"))
):
    raise ImproperlyConfigured(
        f"SECRET_KEY must be a random string of at least {SECRET_KEY_MIN_LENGTH} characters when"
        " DEBUG is off (python -c 'import secrets; print(secrets.token_urlsafe(50))')"
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
for _host in ALLOWED_HOSTS:
    if "/" in _host or "@" in _host:
        # "https://shop.example.com/" refused every request (400 DisallowedHost).
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS must list host names such as shop.example.com or .example.com (no"
            f" scheme or path), got {_host!r}"
        )
CSRF_TRUSTED_ORIGINS = env_origins("CSRF_TRUSTED_ORIGINS")
# Web pages of other origins whose scripts may call the API (a chat widget on the shop's own
# site): none by default, "*" for any. The API authenticates by bearer token, never by cookie, so
# no credentials are allowed across origins.
_cors_origins = env_str("CORS_ALLOWED_ORIGINS").strip()
CORS_ALLOW_ALL_ORIGINS = _cors_origins == "*"
CORS_ALLOWED_ORIGINS = [] if CORS_ALLOW_ALL_ORIGINS else env_origins("CORS_ALLOWED_ORIGINS")
CORS_URLS_REGEX = r"^/api/"
CORS_ALLOW_HEADERS = (
    *cors_default_headers,
    "idempotency-key",
    "if-match",
    "if-none-match",
    "last-event-id",
    "x-request-id",
)
CORS_EXPOSE_HEADERS = ("etag", "location", "retry-after", "x-request-id")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "corsheaders",
    # Refresh tokens on record, so a logout or a rotation can revoke one (its admin pages are
    # replaced in beemanhoney/common/admin.py).
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "beemanhoney.common",
    "catalog",
    "conversations",
    "agents",
]

MIDDLEWARE = [
    "beemanhoney.common.request_ids.RequestIdMiddleware",
    "beemanhoney.common.health.HealthCheckMiddleware",
    # Before anything that may answer: a preflight is answered here, and every API answer, errors
    # included, carries the allowed origin (so a page on it can read the error).
    "corsheaders.middleware.CorsMiddleware",
    "beemanhoney.common.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # An ETag on every GET's answer, and 304 with no body to a client sending it back unchanged.
    "beemanhoney.common.middleware.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "beemanhoney.common.middleware.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "beemanhoney.urls"
WSGI_APPLICATION = "beemanhoney.wsgi.application"
ASGI_APPLICATION = "beemanhoney.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- services: the given servers, or the embedded ones under ./var/ -------------------------
DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_redis_url("REDIS_URL", socket_allowed=False)
if not DATABASE_URL or not REDIS_URL:
    from beemanhoney import embedded

    try:
        DATABASE_URL = DATABASE_URL or embedded.ensure_postgres().url()
        REDIS_URL = REDIS_URL or embedded.ensure_valkey()
    except embedded.EmbeddedServiceError as error:
        raise ImproperlyConfigured(str(error)) from None

try:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
            conn_health_checks=True,
        )
    }
except ValueError:
    raise ImproperlyConfigured(
        "DATABASE_URL is not a valid URL: it must look like postgresql://user:password@host:5432"
        "/name, and a password with any of / + = ? # @ : must be percent-encoded (or use"
        " letters, digits and - _ . ~ only)"
    ) from None
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    # Its scheme only: the URL holds a password. sqlite:// passed the checks, and migrate died.
    raise ImproperlyConfigured(
        "DATABASE_URL must be a PostgreSQL URL such as postgresql://user:password@host:5432/name,"
        f" got one with scheme {urlsplit(DATABASE_URL).scheme!r}"
    )
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int(
    "DATABASE_CONNECT_TIMEOUT",
    5,
    minimum=1,  # 0: libpq waits for ever
)
# Lets two test runs share one server (pytest-django's default is test_<name>).
if env_str("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env_str("TIME_ZONE", "Europe/London")
try:
    ZoneInfo(TIME_ZONE)
except (ZoneInfoNotFoundError, ValueError):
    raise ImproperlyConfigured(
        f"TIME_ZONE must be an IANA time zone such as Europe/London, got {TIME_ZONE!r}"
    ) from None
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# --- security: production defaults unless DEBUG ---------------------------------------------
# Proxies in front of gunicorn whose X-Forwarded-For (client address) and X-Forwarded-Proto
# (HTTPS) are trusted. With none, any client could send either header.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0, minimum=0)
if TRUSTED_PROXY_COUNT > 0:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 60 * 60 * 24 * 365, minimum=0)
# Both bind every subdomain to HTTPS for the whole max-age, and preload past it: opt-in.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# check --deploy asks for both; they are the deployment's to choose (README, "The proxy").
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
X_FRAME_OPTIONS = "DENY"

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's, refusing tokens issued before the user's password last changed.
        "beemanhoney.common.authentication.PasswordBoundJWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "beemanhoney.common.permissions.MethodAnswered",
        "rest_framework.permissions.IsAuthenticated",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "beemanhoney.common.parsers.JSONParser",
        "beemanhoney.common.parsers.FormParser",
        "beemanhoney.common.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "beemanhoney.common.pagination.StandardPagination",
    "DEFAULT_THROTTLE_CLASSES": ["beemanhoney.common.throttling.ReadThrottle"],
    # 0: a client is the peer address (rate limits count it).
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
    "PAGE_SIZE": 20,
    # A "format" parameter is an unknown parameter, ignored as the others: as DRF reads it,
    # "?format=xml" made a product that exists a 404.
    "URL_FORMAT_OVERRIDE": None,
    "EXCEPTION_HANDLER": "beemanhoney.common.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "beemanhoney.common.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["beemanhoney.common.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Beeman Honey assistant API",
    "DESCRIPTION": "Catalogue search and the shop assistant's conversations.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Conversations and runs both have a "status": each its own enum, named for what it is.
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatusEnum": "conversations.models.Conversation.Status",
        "RunStatusEnum": "agents.models.AgentRun.Status",
    },
    "PATH_CONVERTER_OVERRIDES": {"any_case_uuid": {"type": "string", "format": "uuid"}},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "beemanhoney.common.openapi.partial_bodies_without_defaults",
    ],
    # Swagger UI from the drf-spectacular-sidecar wheel: the docs work with no network.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

THROTTLE_RATES = {
    "message_post": env_rate("THROTTLE_MESSAGE_POST", "12/min"),
    "message_daily": env_rate("THROTTLE_MESSAGE_DAILY", "300/day"),
    "message_daily_address": env_rate("THROTTLE_MESSAGE_DAILY_PER_IP", "1000/day"),
    "guest_create": env_rate("THROTTLE_GUEST_CREATE", "20/hour"),
    "conversation_create": env_rate("THROTTLE_CONVERSATION_CREATE", "30/hour"),
    "login": env_rate("THROTTLE_LOGIN", "10/min"),
    "login_account": env_rate("THROTTLE_LOGIN_ACCOUNT", "20/hour"),
    "read": env_rate("THROTTLE_READ", "600/min"),
}

# A Redis that hangs rather than refusing (a failover, or a firewall or NAT dropping the
# connection without a word) must not hold a request thread or a turn for ever, which redis-py
# and kombu do by default: a command waits this long for its answer (redis-py retries it three
# times), a blocking read as long as it blocks and this long more.
REDIS_SOCKET_TIMEOUT_SECONDS = 2.0

# Throttle counters must be shared by every gunicorn worker: Redis, not process memory.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": env_redis_url("CACHE_URL") or REDIS_URL,
        "KEY_PREFIX": "bh-cache",
        "TIMEOUT": 300,
        "OPTIONS": {
            "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
            "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
        },
    }
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 30, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "UPDATE_LAST_LOGIN": False,
    # A refresh answers with a new refresh token and revokes the one it was given, so a stolen
    # token works until its owner's next refresh, not for its whole lifetime.
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
}

# --- Celery -------------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A new worker process loads torch and the embedding model before it reports up (~10 s here);
# at Celery's default of 4 s, a process replacing one killed by the hard time limit would be
# killed in turn, again and again.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 60.0
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 120, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 150, minimum=1)
# Redis redelivers an unacknowledged task after this long: it must outlast the hard limit.
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=1)
if not 0 < CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT < CELERY_VISIBILITY_TIMEOUT:
    # A task still running when Redis redelivers it runs twice at once.
    raise ImproperlyConfigured(
        "CELERY_TASK_SOFT_TIME_LIMIT < CELERY_TASK_TIME_LIMIT < CELERY_VISIBILITY_TIMEOUT must"
        f" hold, got {CELERY_TASK_SOFT_TIME_LIMIT} < {CELERY_TASK_TIME_LIMIT} <"
        f" {CELERY_VISIBILITY_TIMEOUT}"
    )
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # A worker's BRPOP blocks for 1 s (kombu's polling interval), well within it.
    "socket_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT_SECONDS,
    # A worker asks for the queues in sorted order, the customers' before its background one.
    "queue_order_strategy": "sorted",
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "beemanhoney")
# Work no customer waits for (embedding catalogue rows: an import of 100k rows queues ~20 min of
# it here) goes to a queue of its own, which a worker reads only when the customers' queue is empty
# (beemanhoney.celery.route_background_tasks): a reply waits for the task a worker process is
# running, not for the backlog. Its name sorts after the customers' queue's.
BACKGROUND_QUEUE_SUFFIX = "-background"
CELERY_TASK_QUEUES = [
    Queue(CELERY_TASK_DEFAULT_QUEUE),
    Queue(CELERY_TASK_DEFAULT_QUEUE + BACKGROUND_QUEUE_SUFFIX),
]
CELERY_TASK_ROUTES = ["beemanhoney.celery.route_background_tasks"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery closes a task's database connections after every task unless they may be reused this
# many times; beemanhoney.celery instead drops broken or aged ones around each task, as Django
# does around a request (CONN_MAX_AGE, health checks). A new connection cost every turn 2-7 ms.
CELERY_DB_REUSE_MAX = 1_000_000
# With the broker down, posting a message must answer quickly: the sweeper dispatches later.
CELERY_BROKER_CONNECTION_TIMEOUT = env_float("CELERY_BROKER_CONNECTION_TIMEOUT", 2.0, minimum=0.1)
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
RUN_SWEEP_INTERVAL_SECONDS = env_int("RUN_SWEEP_INTERVAL_SECONDS", 60, minimum=1)
RUN_SWEEP_GRACE_SECONDS = env_int("RUN_SWEEP_GRACE_SECONDS", 30, minimum=0)
# The nightly jobs run at fixed times (TIME_ZONE), not every 24 h from beat's start: a beat
# started again more often than daily (each deploy) would otherwise never reach them.
CELERY_BEAT_SCHEDULE = {
    "sweep-agent-runs": {"task": "agents.sweep_runs", "schedule": RUN_SWEEP_INTERVAL_SECONDS},
    "remind-staff-of-waiting-customers": {
        "task": "conversations.remind_staff_of_waiting_customers",
        "schedule": 60,
    },
    "repair-stale-embeddings": {
        "task": "catalog.repair_stale_embeddings",
        "schedule": crontab(minute=45),
    },
    "flush-expired-tokens": {
        "task": "conversations.flush_expired_tokens",
        "schedule": crontab(hour=3, minute=0),
    },
    "clear-expired-sessions": {
        "task": "conversations.clear_expired_sessions",
        "schedule": crontab(hour=3, minute=5),
    },
    "prune-product-name-words": {
        "task": "catalog.prune_product_name_words",
        "schedule": crontab(hour=3, minute=10),
    },
    "delete-abandoned-guests": {
        "task": "conversations.delete_abandoned_guests",
        "schedule": crontab(hour=3, minute=20),
    },
    "delete-conversations-past-retention": {
        "task": "conversations.delete_conversations_past_retention",
        "schedule": crontab(hour=3, minute=30),
    },
}

# --- models and search ------------------------------------------------------------------------
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL") or None
if OPENAI_BASE_URL and not _is_http_url(OPENAI_BASE_URL):
    # A URL without its scheme ("api.openai.com/v1") failed every call as "Connection error".
    raise ImproperlyConfigured(
        "OPENAI_BASE_URL must be a URL such as https://api.openai.com/v1 (a scheme and a host),"
        f" got {OPENAI_BASE_URL!r}"
    )
OPENAI_TIMEOUT_SECONDS = env_float("OPENAI_TIMEOUT_SECONDS", 10.0, minimum=0.1)
OPENAI_MAX_RETRIES = env_int("OPENAI_MAX_RETRIES", 1, minimum=0, maximum=10)
# The longest wait a 429's or 503's Retry-After gets before the retry (the client honours up to
# 2 min): a customer's turn falls back rather than wait (beemanhoney.common.openai_http).
OPENAI_RETRY_AFTER_MAX_SECONDS = env_float("OPENAI_RETRY_AFTER_MAX_SECONDS", 2.0, minimum=0)
OPENAI_EMBEDDING_MODEL = env_str("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small")
# After the embedding API fails a search's query, searches rank by keywords alone for this long
# (per process) instead of each waiting out the timeout and retries again.
OPENAI_QUERY_EMBEDDING_PAUSE_SECONDS = env_float(
    "OPENAI_QUERY_EMBEDDING_PAUSE_SECONDS", 30.0, minimum=0
)
EMBEDDING_BACKEND = env_str("EMBEDDING_BACKEND", "local")
if EMBEDDING_BACKEND not in {"local", "openai"}:
    raise ImproperlyConfigured("EMBEDDING_BACKEND must be 'local' or 'openai'")
# Rows whose own embedding task gave up (or was never sent) are embedded by beat's hourly repair
# once they have waited this long (a backlog's tasks are not done twice), this many of each kind
# an hour: a few seconds of the local model's time.
EMBEDDING_REPAIR_AFTER_SECONDS = 3600
EMBEDDING_REPAIR_MAX_ROWS = 500
# An embedding task that met a passing error (the API or the database away) tries again after a
# random wait of up to this many seconds, doubled at each retry (at most 10 minutes; 3 retries).
EMBEDDING_RETRY_BACKOFF_SECONDS = env_int("EMBEDDING_RETRY_BACKOFF_SECONDS", 10, minimum=0)
# Texts the local model encodes at once (a backfill's and an embedding task's).
EMBEDDING_BATCH_SIZE = env_int("EMBEDDING_BATCH_SIZE", 64, minimum=1)
# The local model embeds search queries on ONNX Runtime (~4 ms) or torch (~11 ms); the ONNX
# graph is exported once into EMBEDDING_CACHE_DIR and checked against torch when loaded.
EMBEDDING_QUERY_RUNTIME = env_str("EMBEDDING_QUERY_RUNTIME", "onnx")
if EMBEDDING_QUERY_RUNTIME not in {"onnx", "torch"}:
    raise ImproperlyConfigured("EMBEDDING_QUERY_RUNTIME must be 'onnx' or 'torch'")
# ONNX Runtime's threads for one query embedding: 1 by default (Celery workers and commands, whose
# processes embed at once under load); gunicorn.conf.py gives web workers 2.
EMBEDDING_QUERY_THREADS = env_int("EMBEDDING_QUERY_THREADS", 1, minimum=1, maximum=64)
# A backfill that re-embeds at least this many rows, and at least half the table, drops the HNSW
# index and builds it once at the end instead of inserting into it row by row.
EMBEDDING_INDEX_REBUILD_MIN_ROWS = env_int("EMBEDDING_INDEX_REBUILD_MIN_ROWS", 5000, minimum=0)
EMBEDDING_CACHE_DIR = Path(env_str("EMBEDDING_CACHE_DIR") or BASE_DIR / "var" / "models")
# How many candidates each half of hybrid search contributes before fusion.
SEARCH_CANDIDATES = env_int("SEARCH_CANDIDATES", 100, minimum=1)
# HNSW search breadth: higher = better recall, slower queries (pgvector default 40).
SEARCH_HNSW_EF_SEARCH = env_int("SEARCH_HNSW_EF_SEARCH", 200, minimum=1, maximum=1000)
# A search filtered by category, tags or price down to at most this many products, and at most
# √(SEARCH_EXACT_ORDER_SCALE * the rows of the graph it would walk), orders them all exactly
# instead of walking the HNSW graph for them (docs/benchmarks/journal.md, 2026-12-02: "a few
# filtered rows ordered exactly", and 2026-12-05: "which way a filtered search takes").
SEARCH_EXACT_ORDER_MAX_ROWS = env_int("SEARCH_EXACT_ORDER_MAX_ROWS", 10_000, minimum=0)
SEARCH_EXACT_ORDER_SCALE = env_int("SEARCH_EXACT_ORDER_SCALE", 1_000, minimum=1)

# --- the assistant -----------------------------------------------------------------------------
# "openai" (ChatOpenAI with tool calling) or "offline" (semantic routing + template replies).
LLM_PROVIDER = env_str("LLM_PROVIDER") or ("openai" if OPENAI_API_KEY else "offline")
if LLM_PROVIDER not in {"openai", "offline"}:
    raise ImproperlyConfigured("LLM_PROVIDER must be 'openai' or 'offline'")
# Answer with this provider when the main one fails (after its own retries); "" = apologise.
LLM_FALLBACK_PROVIDER = env_str("LLM_FALLBACK_PROVIDER", "offline", blank_is_default=False)
if LLM_FALLBACK_PROVIDER not in {"", "openai", "offline"}:
    raise ImproperlyConfigured("LLM_FALLBACK_PROVIDER must be 'offline', 'openai' or empty")
# The client refuses to send a request without a key: every search and turn failed.
for _setting, _value in [
    ("EMBEDDING_BACKEND", EMBEDDING_BACKEND),
    ("LLM_PROVIDER", LLM_PROVIDER),
    ("LLM_FALLBACK_PROVIDER", LLM_FALLBACK_PROVIDER),
]:
    if _value == "openai" and not OPENAI_API_KEY.strip():
        raise ImproperlyConfigured(
            f"OPENAI_API_KEY must be set when {_setting} is 'openai' (any value for an"
            " OpenAI-compatible server that takes none)"
        )
OPENAI_CHAT_MODEL = env_str("OPENAI_CHAT_MODEL", "gpt-4o-mini")
OPENAI_TEMPERATURE = env_float("OPENAI_TEMPERATURE", 0.2, minimum=0, maximum=2)
# Tokens one model call may write (sent as max_completion_tokens); a reply cut off there gets the
# fallback reply. 0: no limit (the model's own).
OPENAI_MAX_COMPLETION_TOKENS = env_int("OPENAI_MAX_COMPLETION_TOKENS", 1024, minimum=0)
# Model calls one turn may make (supervisor + agent steps) before it stops politely: at least
# the router's, a tool call's and the answer's (with 1 or 2, every turn that looked anything up
# ended in the step-limit apology, its calls paid for).
AGENT_MAX_MODEL_CALLS = env_int("AGENT_MAX_MODEL_CALLS", 5, minimum=3)


def env_model_prices(name: str, default: str) -> dict[str, dict[str, float]]:
    """{"model": {"prompt": x, "completion": y}}, and optionally "cached_prompt" (a prompt
    token the provider read from its cache; at the prompt rate when left out), each price a
    number of 0 or more. A table of another shape priced no call (the usage callback failed,
    and only logged it), so neither spending limit below could ever be reached."""
    raw = os.environ.get(name) or default
    shape = (
        f'{name} must be JSON such as {{"gpt-4o-mini": {{"prompt": 0.15, "completion": 0.60}}}}'
        ' (US dollars per million tokens, one entry a model; "cached_prompt" may be added)'
    )
    try:
        prices = json.loads(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{shape}; it is not JSON") from None
    if not isinstance(prices, dict) or not prices:
        raise ImproperlyConfigured(f"{shape}; it names no model")
    for model, price in prices.items():
        if not (
            isinstance(price, dict)
            and {"prompt", "completion"} <= set(price) <= {"prompt", "cached_prompt", "completion"}
            and all(
                isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
                for value in price.values()
            )
        ):
            raise ImproperlyConfigured(f"{shape}; got {price!r} for {model!r}")
    return prices


# US dollars per million tokens, per model.
MODEL_PRICES_PER_MILLION = env_model_prices(
    "MODEL_PRICES_JSON",
    '{"gpt-4o-mini": {"prompt": 0.15, "cached_prompt": 0.075, "completion": 0.60},'
    ' "gpt-4o": {"prompt": 2.50, "cached_prompt": 1.25, "completion": 10.00},'
    ' "gpt-4.1-mini": {"prompt": 0.40, "cached_prompt": 0.10, "completion": 1.60}}',
)
# Spending limits: past either, the model stops and staff take over (reason "budget"). Checked
# as each run starts: runs already under way finish, so they can pass a limit by their cost.
CONVERSATION_BUDGET_USD = env_decimal("CONVERSATION_BUDGET_USD", "0.50")
DAILY_BUDGET_USD = env_decimal("DAILY_BUDGET_USD", "25.00")
# Previous messages of the conversation the graph sees.
AGENT_HISTORY_MESSAGES = env_int("AGENT_HISTORY_MESSAGES", 12, minimum=1)
# A run whose worker died this many times is failed instead of retried again.
AGENT_MAX_DELIVERIES = env_int("AGENT_MAX_DELIVERIES", 3, minimum=1)
# A turn the database failed under (a restart or failover closes the worker's connection, so
# not even its failure can be stored) is sent again after this many seconds, doubled at each
# of AGENT_RUN_DATABASE_RETRIES retries; past them the sweeper sends it, minutes later.
AGENT_RUN_DATABASE_RETRY_SECONDS = env_float("AGENT_RUN_DATABASE_RETRY_SECONDS", 5.0, minimum=0)
AGENT_RUN_DATABASE_RETRIES = 3
# Live run events (Redis Streams): kept this long, at most this many per run.
RUN_EVENTS_TTL_SECONDS = env_int("RUN_EVENTS_TTL_SECONDS", 3600, minimum=60)
RUN_EVENTS_MAX_LENGTH = env_int("RUN_EVENTS_MAX_LENGTH", 2000, minimum=1)
# An SSE connection closes after this long (clients resume with Last-Event-ID) and sends a
# comment line this often so proxies keep it open.
SSE_MAX_STREAM_SECONDS = env_int("SSE_MAX_STREAM_SECONDS", 300, minimum=1)
SSE_HEARTBEAT_SECONDS = env_int("SSE_HEARTBEAT_SECONDS", 15, minimum=1)
# Open streams one server process serves before answering 503 + Retry-After: keep it below
# gunicorn's --threads (GUNICORN_THREADS, 32) so ordinary requests always find a thread.
SSE_MAX_STREAMS_PER_PROCESS = env_int("SSE_MAX_STREAMS_PER_PROCESS", 24, minimum=0)
# Open streams and ?wait requests one user holds across every process before a stream is
# answered 429 (and a wait at once): a tab holds one, two while it reconnects.
SSE_MAX_STREAMS_PER_USER = env_int("SSE_MAX_STREAMS_PER_USER", 4, minimum=0)
# Redis connections per process for run events: one per open stream, plus headroom.
RUN_EVENTS_REDIS_MAX_CONNECTIONS = env_int("RUN_EVENTS_REDIS_MAX_CONNECTIONS", 1024, minimum=1)
# Longest a client may wait on GET /api/runs/{id}/?wait=N for a run to finish.
RUN_WAIT_MAX_SECONDS = env_int("RUN_WAIT_MAX_SECONDS", 25, minimum=0)

# --- retention ---------------------------------------------------------------------------------
# Conversations untouched for this many days are deleted daily (beat), with their messages, runs
# and feedback; one waiting for staff is kept. 0 (the default) keeps them for ever.
CONVERSATION_RETENTION_DAYS = env_int("CONVERSATION_RETENTION_DAYS", 0)
if CONVERSATION_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("CONVERSATION_RETENTION_DAYS must be 0 (keep) or a number of days")

# --- staff notices -----------------------------------------------------------------------------
# When the assistant hands a conversation to a person (asked for, or over budget), staff are told
# by email to these addresses and/or by a JSON POST to this URL (Slack-style {"text": ...}, with
# the conversation's id, reason and admin link); neither by default. Staff taking a
# conversation over themselves tell no one.
HANDOFF_NOTICE_EMAILS = env_list("HANDOFF_NOTICE_EMAILS", [])
for _address in HANDOFF_NOTICE_EMAILS:
    try:
        validate_email(_address)
    except ValidationError as _error:
        raise ImproperlyConfigured(
            f"HANDOFF_NOTICE_EMAILS must list email addresses, got {_address!r}"
        ) from _error
HANDOFF_NOTICE_WEBHOOK_URL = env_str("HANDOFF_NOTICE_WEBHOOK_URL").strip()
_webhook = urlsplit(HANDOFF_NOTICE_WEBHOOK_URL)
if HANDOFF_NOTICE_WEBHOOK_URL and (
    _webhook.scheme not in {"http", "https"} or not _webhook.hostname
):
    # Its scheme and host only: the path of a webhook's URL is often its secret.
    raise ImproperlyConfigured(
        "HANDOFF_NOTICE_WEBHOOK_URL must be an http(s) URL such as"
        f" https://hooks.example.com/T000/B000, got one with scheme {_webhook.scheme!r} and"
        f" host {_webhook.hostname!r}"
    )
if not _port_readable(_webhook):
    raise ImproperlyConfigured(
        f"HANDOFF_NOTICE_WEBHOOK_URL's port must be a number from 0 to 65535 (host"
        f" {_webhook.hostname!r})"
    )
HANDOFF_NOTICE_TIMEOUT_SECONDS = env_float("HANDOFF_NOTICE_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# A customer the assistant handed to staff and no staff message has answered this long after
# is reminded of, once, on the same channels; 0 sends no reminders.
HANDOFF_REMINDER_MINUTES = env_int("HANDOFF_REMINDER_MINUTES", 15, minimum=0)
# Where staff reach this site, for the admin links in notices.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")
if not _is_http_url(SITE_URL):
    # "shop.example.com" gave the notices' admin links no scheme.
    raise ImproperlyConfigured(
        f"SITE_URL must be a URL such as https://shop.example.com, got {SITE_URL!r}"
    )
# Email: SMTP when EMAIL_HOST is set, else printed to the log (console backend).
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1, maximum=65535)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
# Implicit TLS (port 465) or STARTTLS (587): one or the other.
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", not EMAIL_USE_SSL)
if EMAIL_USE_SSL and EMAIL_USE_TLS:
    raise ImproperlyConfigured(
        "EMAIL_USE_SSL (port 465) and EMAIL_USE_TLS (587) exclude each other"
    )
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "assistant@beemanhoney.co.uk")
if HANDOFF_NOTICE_EMAILS and not EMAIL_HOST and not DEBUG:
    # The console backend would print the notices (customers' words) and tell no one.
    raise ImproperlyConfigured("HANDOFF_NOTICE_EMAILS needs EMAIL_HOST (SMTP) unless DEBUG=1")
if (HANDOFF_NOTICE_EMAILS or HANDOFF_NOTICE_WEBHOOK_URL) and not DEBUG and not env_str("SITE_URL"):
    raise ImproperlyConfigured(
        "SITE_URL must be set (https://assistant.example.com) for hand-off notices unless"
        " DEBUG=1: their admin links would point at 127.0.0.1"
    )

# --- health -------------------------------------------------------------------------------------
HEALTHCHECK_TIMEOUT_SECONDS = env_float("HEALTHCHECK_TIMEOUT_SECONDS", 2.0, minimum=0.1)

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}"
    )
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # The event name, then what the call passed in extra= as key=<JSON> pairs.
        "plain": {
            "class": "beemanhoney.common.logging.ExtraFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    # Every line written while a request (or a task it queued) is served names it: request_id.
    "filters": {"request_id": {"()": "beemanhoney.common.request_ids.RequestIdFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # torch's own notes (its FakeTensor cache's statistics, written as a process that
        # exported the query model exits: after a command's last line), not the shop's.
        "torch": {"level": "WARNING"},
    },
}
