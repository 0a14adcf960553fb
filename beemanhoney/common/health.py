"""Liveness of the services every request depends on: the database and the broker."""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_safe
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceState:
    ok: bool
    error: str = ""
    # The error's own words ('database "shop" does not exist'), for the log: the answer, which
    # anyone may read, names only the error's kind.
    detail: str = ""

    @classmethod
    def down(cls, error: Exception) -> ServiceState:
        return cls(ok=False, error=type(error).__name__, detail=str(error).strip()[:300])

    def as_dict(self, *, detailed: bool = False) -> dict[str, str]:
        return {
            "status": "up" if self.ok else "down",
            **({"error": self.error} if self.error else {}),
            **({"detail": self.detail} if detailed and self.detail else {}),
        }


def database_state(alias: str = "default") -> ServiceState:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        connections[alias].close()
        return ServiceState.down(exc)
    return ServiceState(ok=True)


BROKER_CLIENT_NAME = "beemanhoney-healthz"
# Probes at once per process that get their own connection; more wait for one (up to the
# health-check timeout), so a burst of probes cannot leave a worker holding dozens.
BROKER_PROBE_CONNECTIONS = 2


def broker_client_name() -> str:
    return f"{BROKER_CLIENT_NAME}-{os.getpid()}"


_broker_client_lock = threading.Lock()


def _probe_client(url: str, timeout: float) -> redis.Redis:
    """One pooled client per broker URL: a probe every few seconds reuses its connection.

    Locked: probes that arrive at once in a new process (gthread) would each build a pool of
    their own, and the pools not kept would hold their connections until collected.
    """
    with _broker_client_lock:
        return _broker_client(url, timeout)


@functools.cache
def _broker_client(url: str, timeout: float) -> redis.Redis:
    """One immediate retry lets a connection the broker dropped (a restart) be opened again
    within the same probe; a broker that is down still answers within two connect attempts."""
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=BROKER_PROBE_CONNECTIONS,
        timeout=timeout,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), retries=1),
        # With the process id: which process holds a connection, in the broker's CLIENT LIST.
        client_name=broker_client_name(),
    )
    return redis.Redis(connection_pool=pool)


def broker_state() -> ServiceState:
    client = _probe_client(settings.CELERY_BROKER_URL, settings.HEALTHCHECK_TIMEOUT_SECONDS)
    try:
        client.ping()
    except redis.RedisError as exc:
        return ServiceState.down(exc)
    return ServiceState(ok=True)


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    database, broker = database_state(), broker_state()
    healthy = database.ok and broker.ok
    if not healthy:
        logger.warning(
            "healthz.unhealthy",
            extra={
                "database": database.as_dict(detailed=True),
                "broker": broker.as_dict(detailed=True),
            },
        )
    body = {
        "status": "ok" if healthy else "unavailable",
        "database": database.as_dict(),
        "broker": broker.as_dict(),
    }
    response = JsonResponse(body, status=200 if healthy else 503)
    # Logged above, with what failed: not again as django.request's "Service Unavailable".
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


class HealthCheckMiddleware:
    """Answers ``/healthz`` ahead of every other middleware.

    A container's probe asks for ``http://127.0.0.1:8000/healthz``: that host is not one the
    site answers to in production (``ALLOWED_HOSTS``), and the probe speaks plain HTTP behind
    the TLS proxy, so CommonMiddleware would answer 400 and SecurityMiddleware a redirect.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return healthz(request)
        return self.get_response(request)
