"""Every request has an id: in its answer, in the log lines written while it is served, and in
the worker's log lines of the agent run it queued."""

import io
import logging
import re
import time
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from agents.models import AgentRun
from beemanhoney.common.logging import ExtraFormatter
from beemanhoney.common.request_ids import RequestIdFilter
from tests.agents.shop import customer_in_small_shop


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """What the project's console handler would write, from every logger."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(ExtraFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)
    yield written
    logging.getLogger().removeHandler(handler)


@pytest.mark.django_db
def test_an_answer_carries_a_new_request_id_when_the_request_sent_none() -> None:
    first = APIClient().get("/api/categories/")
    second = APIClient().get("/api/categories/")

    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"])
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("edge-7f3a.2026:12", True),
        ("two words", False),
        ("x" * 129, False),
        ("line\\nbreak", False),
    ],
)
def test_a_plausible_request_id_sent_is_kept_and_any_other_replaced(sent: str, kept: bool) -> None:
    response = APIClient().get("/api/categories/", headers={"X-Request-ID": sent})

    assert (response["X-Request-ID"] == sent) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", response["X-Request-ID"])


@pytest.mark.django_db
def test_django_s_own_log_line_for_a_request_names_its_id(log_lines: io.StringIO) -> None:
    response = APIClient().get("/api/no-such-thing/", headers={"X-Request-ID": "req-404"})

    assert response.status_code == 404
    assert "Not Found: /api/no-such-thing/" in log_lines.getvalue()
    assert 'request_id="req-404"' in log_lines.getvalue()


@pytest.mark.django_db
def test_a_line_written_outside_any_request_names_none(log_lines: io.StringIO) -> None:
    APIClient().get("/api/categories/", headers={"X-Request-ID": "req-done"})

    logging.getLogger("tests").warning("after.the.request")

    assert "after.the.request" in log_lines.getvalue()
    assert "req-done" not in log_lines.getvalue()


def test_the_project_s_console_handler_adds_the_request_id() -> None:
    console = next(
        handler
        for handler in logging.getLogger().handlers
        if type(handler) is logging.StreamHandler and isinstance(handler.formatter, ExtraFormatter)
    )

    assert any(isinstance(each, RequestIdFilter) for each in console.filters)


@pytest.mark.django_db(transaction=True)
def test_the_worker_s_line_for_a_run_names_the_request_that_queued_it(celery_worker) -> None:
    client, conversation = customer_in_small_shop()

    posted = client.post(
        f"/api/conversations/{conversation.id}/messages/",
        {"content": "How long does delivery take?"},
        headers={"X-Request-ID": "req-run-1"},
    )
    run_id = posted.json()["run"]["id"]
    client.get(f"/api/runs/{run_id}/?wait=60")
    deadline = time.monotonic() + 10
    while f'"{run_id}"' not in celery_worker.log() and time.monotonic() < deadline:
        time.sleep(0.1)  # the line is written as the run's transaction commits

    assert AgentRun.objects.get(pk=run_id).status == AgentRun.Status.SUCCEEDED
    lines = [line for line in celery_worker.log().splitlines() if f'"{run_id}"' in line]
    assert any(
        "agent_run.finished" in line and 'request_id="req-run-1"' in line for line in lines
    ), lines


@pytest.mark.django_db(transaction=True)
def test_a_run_queued_behind_another_keeps_the_id_of_its_own_request(celery_worker) -> None:
    client, conversation = customer_in_small_shop()
    url = f"/api/conversations/{conversation.id}/messages/"

    first = client.post(url, {"content": "Any beeswax wraps?"}, headers={"X-Request-ID": "req-a"})
    second = client.post(url, {"content": "And candles?"}, headers={"X-Request-ID": "req-b"})
    second_id = second.json()["run"]["id"]
    client.get(f"/api/runs/{second_id}/?wait=60")
    deadline = time.monotonic() + 10
    while f'"{second_id}"' not in celery_worker.log() and time.monotonic() < deadline:
        time.sleep(0.1)

    runs = {run.request_id: run for run in AgentRun.objects.all()}
    assert set(runs) == {"req-a", "req-b"}
    # Queued behind the first: dispatched by the first's task as it finished, in the worker.
    dispatched, finished = runs["req-b"].dispatched_at, runs["req-a"].finished_at
    assert dispatched is not None
    assert finished is not None
    assert dispatched >= finished
    assert first.status_code == 202
    lines = [line for line in celery_worker.log().splitlines() if f'"{second_id}"' in line]
    assert any("agent_run.finished" in line and 'request_id="req-b"' in line for line in lines), (
        lines
    )
