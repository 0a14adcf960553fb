import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agents.models import AgentRun
from agents.pricing import Usage
from agents.services import agent_run_usage_add
from conversations.models import Message
from tests.agents.factories import AgentRunFactory
from tests.conversations.factories import (
    ConversationFactory,
    MessageFactory,
    ReplyFeedbackFactory,
    StaffFactory,
)

pytestmark = pytest.mark.django_db


def test_a_superuser_cannot_delete_a_run_on_its_own(client: Client) -> None:
    client.force_login(StaffFactory.create())
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)
    run_page = f"/admin/agents/agentrun/{run.pk}/"

    page = client.get(f"{run_page}change/").content.decode()
    listing = client.get("/admin/agents/agentrun/").content.decode()
    deleted = client.post(f"{run_page}delete/", {"post": "yes"})
    bulk = client.post(
        "/admin/agents/agentrun/",
        {"action": "delete_selected", "_selected_action": [str(run.pk)], "post": "yes"},
    )

    assert f"{run_page}delete/" not in page
    assert "delete_selected" not in listing
    assert deleted.status_code == 403
    assert bulk.status_code in (200, 302)
    assert AgentRun.objects.filter(pk=run.pk).exists()


RUNS = "/admin/agents/agentrun/"


@pytest.mark.parametrize(
    "params",
    [
        {"error__regex": "("},
        {"celery_task_id__iregex": "("},
        {"route": "\x00"},
        {"provider": "\x00"},
        {"status__exact": "\x00"},
    ],
)
def test_the_runs_list_refuses_a_regex_lookup_or_a_nul_in_its_url_with_400(
    client: Client, params: dict[str, str]
) -> None:
    client.force_login(StaffFactory.create())

    response = client.get(RUNS, params)

    assert response.status_code == 400


@pytest.mark.parametrize("params", [{"route": "bogus"}, {"provider": "someone-else"}])
def test_the_runs_list_ignores_a_route_or_provider_it_does_not_offer(
    client: Client, params: dict[str, str]
) -> None:
    client.force_login(StaffFactory.create())
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation, route="sales", provider="offline")

    page = client.get(RUNS, params)

    assert list(page.context["cl"].result_list) == [run]


def test_staff_find_the_runs_whose_reply_a_customer_found_unhelpful(client: Client) -> None:
    client.force_login(StaffFactory.create())
    conversation = ConversationFactory.create()
    runs = {}
    for rating in ("helpful", "unhelpful", None):
        run = AgentRunFactory.create(conversation=conversation)
        reply = MessageFactory.create(
            conversation=conversation, role=Message.Role.ASSISTANT, run=run
        )
        if rating is not None:
            ReplyFeedbackFactory.create(reply=reply, rating=rating, comment=f"{rating} reply")
        runs[rating] = run

    listing = client.get(RUNS, {"replies__feedback__rating": "unhelpful"})
    page = client.get(f"{RUNS}{runs['unhelpful'].pk}/change/").content.decode()
    unrated = client.get(f"{RUNS}{runs[None].pk}/change/")

    assert list(listing.context["cl"].result_list) == [runs["unhelpful"]]
    assert "unhelpful: unhelpful reply" in page
    assert unrated.status_code == 200


def test_a_run_s_page_lays_out_each_tool_call_s_arguments_and_answer(client: Client) -> None:
    client.force_login(StaffFactory.create())
    answer = json.dumps({"products": [{"sku": "BH-RAW-005", "name": "Heather Honey"}]})
    run = AgentRunFactory.create(
        tool_calls=[
            {
                "node": "sales",
                "tool": "search_products",
                "args": {"query": "heather"},
                "result": answer,
            },
            {"node": "sales", "tool": "get_product", "args": {}, "result": "raised DataError"},
        ]
    )

    page = client.get(f"{RUNS}{run.pk}/change/").content.decode()

    assert "<pre>{\n  &quot;query&quot;: &quot;heather&quot;\n}</pre>" in page
    assert "&quot;sku&quot;: &quot;BH-RAW-005&quot;" in page  # not \&quot;, as a quoted string
    assert "<td>get_product</td><td><pre>{}</pre></td><td><pre>raised DataError</pre>" in page


def _finished_run(conversation, *, route: str, status: str, latency_ms: int | None = None):
    return AgentRunFactory.create(
        conversation=conversation,
        route=route,
        status=status,
        latency_ms=latency_ms,
        prompt_tokens=100,
        completion_tokens=20,
        cost_usd=Decimal("0.001"),
    )


def _rate(run: AgentRun, rating: str) -> None:
    reply = MessageFactory.create(
        conversation=run.conversation, role=Message.Role.ASSISTANT, run=run
    )
    ReplyFeedbackFactory.create(reply=reply, rating=rating)


REPORT = f"{RUNS}report/"


def test_the_report_sums_a_period_s_runs_by_route_and_by_day(client: Client) -> None:
    client.force_login(StaffFactory.create())
    conversation = ConversationFactory.create()
    for latency in (100, 200, 300, 400):
        _rate(_finished_run(conversation, route="sales", status="succeeded", latency_ms=latency),
              "helpful")  # fmt: skip
    _rate(_finished_run(conversation, route="support", status="succeeded", latency_ms=50),
          "unhelpful")  # fmt: skip
    _finished_run(conversation, route="support", status="failed", latency_ms=9000)
    _finished_run(conversation, route="", status="failed")  # before routing
    old = _finished_run(conversation, route="sales", status="succeeded", latency_ms=100)
    _rate(old, "unhelpful")
    AgentRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))

    week = client.get(REPORT)
    month = client.get(REPORT, {"days": 30})

    by_route = {line["route"]: line for line in week.context["by_route"]}
    assert week.status_code == 200
    assert [line["route"] for line in week.context["by_route"]] == ["", "sales", "support", None]
    assert by_route["sales"]["runs"] == 4
    assert by_route["sales"]["latency_p50_ms"] == 250
    assert by_route["sales"]["helpful"] == 4
    assert by_route["support"]["failed_share"] == "50%"
    assert by_route["support"]["latency_p95_ms"] == 50  # the failed run's 9 s is not latency
    assert by_route["support"]["unhelpful_share"] == "100%"
    assert by_route[None]["runs"] == 7
    assert by_route[None]["tokens"] == 7 * 120
    assert by_route[None]["cost_usd"] == Decimal("0.007")
    assert [line["runs"] for line in week.context["by_day"]] == [7, 7]
    assert month.context["by_route"][-1]["runs"] == 8
    assert (by_route[None]["unhelpful"], month.context["by_route"][-1]["unhelpful"]) == (1, 2)
    assert [line["unhelpful"] for line in month.context["by_day"]] == [1, 1, 2]
    assert "(not routed)" in week.content.decode()
    assert f'<a href="{RUNS}">Agent runs</a> &rsaquo;\n  Report' in week.content.decode()
    page = week.content.decode()
    assert page.count("status__exact=failed") == 2  # not for the runs with no route
    # Each link lists the runs its figure counts: the week's, not the older one's.
    links = {
        (line["route"], kind): (line[kind], line[f"{kind}_url"])
        for line in week.context["by_route"]
        if "failed_url" in line
        for kind in ("failed", "unhelpful")
    }
    assert set(links) == {
        (route, kind) for route in ["sales", "support", None] for kind in ("failed", "unhelpful")
    }
    for (route, kind), (figure, url) in links.items():
        listed = client.get(url).context["cl"].result_count
        assert listed == figure, (route, kind, url)
    assert links[(None, "unhelpful")][0] == 1  # the older rated run is not counted, nor listed


def test_the_report_refuses_a_period_it_does_not_offer(client: Client) -> None:
    client.force_login(StaffFactory.create())

    response = client.get(REPORT, {"days": "365"})

    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_the_report_needs_the_permission_to_view_runs(client: Client) -> None:
    staff = StaffFactory.create(is_superuser=False)
    client.force_login(staff)

    refused = client.get(REPORT)
    staff.user_permissions.add(Permission.objects.get(codename="view_agentrun"))
    allowed = client.get(REPORT)
    listing = client.get(RUNS).content.decode()

    assert refused.status_code == 403
    assert allowed.status_code == 200
    assert f'href="{REPORT}"' in listing


def test_an_empty_period_reports_no_runs(client: Client) -> None:
    client.force_login(StaffFactory.create())

    response = client.get(REPORT, {"days": 1})

    assert response.context["by_route"] == []
    assert "No runs in this period." in response.content.decode()


def _run_to_search_for() -> AgentRun:
    run = _finished_run(ConversationFactory.create(), route="sales", status="failed")
    AgentRun.objects.filter(pk=run.pk).update(
        celery_task_id="7b1c3a52-39b4-4c1e-9d0e-2f9f0c7e1a11",
        request_id="req-42",
        error="TimeoutError: the provider did not answer",
    )
    _finished_run(ConversationFactory.create(), route="sales", status="succeeded")  # not found
    return run


@pytest.mark.parametrize(
    "term",
    [
        lambda run: str(run.pk),
        lambda run: str(run.conversation_id).upper(),
        lambda run: "7b1c3a52-39b4-4c1e-9d0e-2f9f0c7e1a11",
    ],
    ids=["its id", "its conversation's id", "its task's id"],
)
def test_the_run_search_finds_a_run_by_each_of_its_ids_through_indexes(
    client: Client, term: Callable[[AgentRun], str]
) -> None:
    client.force_login(StaffFactory.create())
    run = _run_to_search_for()

    with CaptureQueriesContext(connection) as queries:
        listing = client.get(RUNS, {"q": term(run)})

    assert list(listing.context["cl"].result_list) == [run]
    assert not [q for q in queries if "::text" in q["sql"] and "LIKE" in q["sql"]]


@pytest.mark.parametrize("term", ["req-42", "did not answer"])
def test_the_run_search_finds_a_run_by_its_request_id_or_its_error(
    client: Client, term: str
) -> None:
    client.force_login(StaffFactory.create())
    run = _run_to_search_for()

    listing = client.get(RUNS, {"q": term})

    assert list(listing.context["cl"].result_list) == [run]


@pytest.mark.parametrize(
    ("params", "index"),
    [
        ({"status__exact": "failed"}, "run_failed_or_cancelled"),
        ({"route": "sales"}, "run_route_recent"),
        ({"q": "did not answer"}, "run_with_error"),
    ],
    ids=["status", "route", "error"],
)
def test_the_runs_list_counts_the_runs_of_a_status_a_route_or_an_error_from_an_index(
    client: Client, params: dict[str, str], index: str
) -> None:
    client.force_login(StaffFactory.create())
    run = _run_to_search_for()  # failed, by sales, with an error

    with CaptureQueriesContext(connection) as queries:
        listing = client.get(RUNS, params)
    [count] = [q["sql"] for q in queries if q["sql"].startswith('SELECT COUNT(*) AS "__count"')]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # the index, if one holds the rows
        cursor.execute(f"EXPLAIN {count}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert run in listing.context["cl"].result_list
    assert index in plan


def test_the_run_list_sorts_only_by_what_an_index_orders(client: Client) -> None:
    client.force_login(StaffFactory.create())

    listing = client.get(RUNS)

    assert listing.context["cl"].sortable_by == ["id", "created_at"]


def test_staff_see_each_day_s_spend_against_the_daily_budget_read_only(
    client: Client, settings
) -> None:
    settings.DAILY_BUDGET_USD = Decimal("20.00")
    run = _finished_run(ConversationFactory.create(), route="sales", status="succeeded")
    agent_run_usage_add(run_id=str(run.pk), usage=Usage(cost_usd=Decimal("5.00")))
    run.conversation.delete()  # the day's spend stays
    client.force_login(StaffFactory.create())

    page = client.get("/admin/agents/dailyspend/")
    change = client.get(f"/admin/agents/dailyspend/{timezone.localdate().isoformat()}/change/")

    assert page.status_code == 200
    assert "5.000000" in page.content.decode()
    assert "25%" in page.content.decode()
    assert "Add daily spend" not in page.content.decode()
    assert "Save" not in change.content.decode()
