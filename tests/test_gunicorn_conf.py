import gc
import logging
import runpy
import weakref
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config  # type: ignore[import-untyped]
from gunicorn.glogging import Logger  # type: ignore[import-untyped]

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


@pytest.fixture
def hooks() -> Iterator[dict]:
    threshold = gc.get_threshold()
    yield runpy.run_path(str(CONF))
    gc.set_threshold(*threshold)


def a_worker(threads: int) -> SimpleNamespace:
    return SimpleNamespace(cfg=SimpleNamespace(threads=threads), log=logging.getLogger("gunicorn"))


def test_a_worker_leaves_young_garbage_to_the_end_of_each_request(hooks: dict) -> None:
    hooks["post_worker_init"](worker=a_worker(32))

    assert gc.get_threshold()[0] == hooks["YOUNG_GENERATION_THRESHOLD"]


def test_the_garbage_of_a_request_is_collected_once_it_is_answered(hooks: dict) -> None:
    hooks["post_worker_init"](worker=a_worker(32))
    garbage = weakref.ref(Node())

    hooks["post_request"](worker=None, req=None, environ={}, resp=None)

    assert garbage() is None


def test_web_workers_embed_queries_on_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBEDDING_QUERY_THREADS", raising=False)
    config = Config()

    config.set("raw_env", runpy.run_path(str(CONF))["raw_env"])

    assert config.env == {"EMBEDDING_QUERY_THREADS": "2"}


def test_the_query_threads_the_environment_gives_web_workers_stand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EMBEDDING_QUERY_THREADS", "1")

    assert runpy.run_path(str(CONF))["raw_env"] == []


@pytest.mark.parametrize(("threads", "warned"), [(24, True), (8, True), (25, False)])
def test_a_worker_whose_threads_the_event_streams_could_all_hold_says_so(
    hooks: dict, settings, caplog: pytest.LogCaptureFixture, threads: int, warned: bool
) -> None:
    settings.SSE_MAX_STREAMS_PER_PROCESS = 24

    hooks["post_worker_init"](worker=a_worker(threads))

    warning = (
        f"SSE_MAX_STREAMS_PER_PROCESS (24) is not below gunicorn's --threads ({threads},"
        " GUNICORN_THREADS): open event streams could hold every thread"
    )
    assert caplog.messages == [warning] * warned


def gunicorn_config(hooks: dict) -> Config:
    """The settings gunicorn takes from the file: the names it knows, as it loads them."""
    config = Config()
    for name, value in hooks.items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_a_worker_loading_the_model_is_not_killed_as_silent(hooks: dict) -> None:
    # A worker loads torch and the model before its first heartbeat; 30 s was too little.
    assert gunicorn_config(hooks).timeout == 120


def test_gunicorn_makes_no_control_socket_in_its_user_s_home(hooks: dict) -> None:
    assert gunicorn_config(hooks).control_socket_disable is True


def test_the_access_log_names_the_client_the_proxy_forwarded_and_the_request_id(
    hooks: dict, tmp_path: Path
) -> None:
    config = gunicorn_config(hooks)
    config.set("accesslog", str(tmp_path / "access.log"))
    logger = Logger(config)
    request = SimpleNamespace(headers=[("X-FORWARDED-FOR", "203.0.113.7")])
    response = SimpleNamespace(status="200 OK", headers=[("X-Request-ID", "req-9")], sent=2)
    environ = {
        "REMOTE_ADDR": "172.18.0.1",
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/healthz",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }

    try:
        logger.access(response, request, environ, timedelta(milliseconds=3))
    finally:
        for handler in logger.access_log.handlers[:]:
            logger.access_log.removeHandler(handler)
            handler.close()

    line = (tmp_path / "access.log").read_text()
    assert line.startswith("172.18.0.1 - - [")
    assert line.rstrip().endswith(
        '"GET /healthz HTTP/1.1" 200 2 "-" "-" "203.0.113.7" request_id="req-9" duration_ms=3'
    )
