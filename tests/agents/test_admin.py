import pytest
from django.contrib import admin
from django.test import Client

from agents.models import AgentRun
from beemanhoney.common.admin import ShopModelAdmin
from conversations.models import Message, ReplyFeedback
from tests.conversations.factories import ConversationFactory, MessageFactory, StaffFactory

pytestmark = pytest.mark.django_db


def test_a_superuser_cannot_delete_a_run_on_its_own(client: Client) -> None:
    client.force_login(StaffFactory.create())
    conversation = ConversationFactory.create()
    run = AgentRun.objects.create(
        conversation=conversation, user_message=MessageFactory.create(conversation=conversation)
    )
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
    run = AgentRun.objects.create(
        conversation=conversation,
        user_message=MessageFactory.create(conversation=conversation),
        route="sales",
        provider="offline",
    )

    page = client.get(RUNS, params)

    assert list(page.context["cl"].result_list) == [run]


def test_the_runs_admin_refuses_the_lookups_postgresql_cannot_run() -> None:
    assert isinstance(admin.site._registry[AgentRun], ShopModelAdmin)


def test_staff_find_the_runs_whose_reply_a_customer_found_unhelpful(client: Client) -> None:
    client.force_login(StaffFactory.create())
    conversation = ConversationFactory.create()
    runs = {}
    for rating in ("helpful", "unhelpful", None):
        question = MessageFactory.create(conversation=conversation)
        run = AgentRun.objects.create(conversation=conversation, user_message=question)
        reply = MessageFactory.create(
            conversation=conversation, role=Message.Role.ASSISTANT, run=run
        )
        if rating is not None:
            ReplyFeedback.objects.create(reply=reply, rating=rating, comment=f"{rating} reply")
        runs[rating] = run

    listing = client.get(RUNS, {"replies__feedback__rating": "unhelpful"})
    page = client.get(f"{RUNS}{runs['unhelpful'].pk}/change/").content.decode()
    unrated = client.get(f"{RUNS}{runs[None].pk}/change/")

    assert list(listing.context["cl"].result_list) == [runs["unhelpful"]]
    assert "unhelpful: unhelpful reply" in page
    assert unrated.status_code == 200
