from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agents.models import AgentRun
from conversations.models import Message
from tests.agents.factories import AgentRunFactory
from tests.conversations.factories import (
    ConversationFactory,
    MessageFactory,
    StaffFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("wait", ["nan", "NaN", "inf", "-inf", "-1", ["0", "30"]])
def test_a_wait_that_is_not_one_finite_number_of_seconds_is_refused(wait: str | list[str]) -> None:
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)
    client = APIClient()
    client.force_authenticate(conversation.owner)

    response = client.get(f"/api/runs/{run.pk}/", {"wait": wait})

    assert response.status_code == 400
    assert "wait" in response.json()["errors"]


@pytest.mark.parametrize(
    "wait",
    [
        "1_0",
        "\u0663",
        "1e1",
        # Too large for a float: read as infinity, it waited the longest wait.
        "1" * 401,
        "-" + "1" * 401,
        "1" * 400 + ".5",
    ],
)
def test_a_wait_not_written_as_a_plain_finite_number_is_refused(wait: str) -> None:
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(conversation=conversation)
    client = APIClient()
    client.force_authenticate(conversation.owner)

    response = client.get(f"/api/runs/{run.pk}/", {"wait": wait})

    assert response.status_code == 400
    assert response.json()["errors"] == {"wait": ["A valid number is required."]}


def _finished_run(owner: User) -> AgentRun:
    return AgentRunFactory.create(
        conversation__owner=owner,
        status=AgentRun.Status.SUCCEEDED,
        model_name="gpt-4o-mini",
        prompt_tokens=120,
        completion_tokens=30,
        model_calls=2,
        cost_usd=Decimal("0.000036"),
    )


def test_a_run_s_reply_is_read_with_what_it_shows_in_one_statement() -> None:
    run = _finished_run(owner=UserFactory.create())
    reply = MessageFactory.create(
        conversation=run.conversation, role=Message.Role.ASSISTANT, run=run, content="£8.50."
    )
    client = APIClient()
    client.force_authenticate(run.conversation.owner)

    with CaptureQueriesContext(connection) as queries:
        detail = client.get(f"/api/runs/{run.pk}/").json()

    assert detail["reply"]["id"] == reply.pk
    assert detail["reply"]["answering_run"] is None
    assert detail["reply"]["feedback"] is None
    # Asking a reply for the run answering it (none) or its feedback reads nothing more.
    assert not [q for q in queries if '"agents_agentrun"."user_message_id" =' in q["sql"]]
    assert not [q for q in queries if 'FROM "conversations_replyfeedback"' in q["sql"]]


def test_a_customer_s_run_hides_the_model_tokens_and_cost() -> None:
    run = _finished_run(owner=UserFactory.create())
    client = APIClient()
    client.force_authenticate(run.conversation.owner)

    detail = client.get(f"/api/runs/{run.pk}/").json()
    posted = client.post(
        f"/api/conversations/{run.conversation.pk}/messages/", {"content": "And in 1kg?"}
    ).json()

    assert detail["status"] == "succeeded"
    assert "usage" not in detail
    assert "usage" not in posted["run"]


def test_staff_who_may_view_runs_see_a_run_s_usage() -> None:
    staff = StaffFactory.create(is_superuser=False)
    staff.user_permissions.set(Permission.objects.filter(codename="view_agentrun"))
    run = _finished_run(owner=staff)
    client = APIClient()
    client.force_authenticate(staff)

    detail = client.get(f"/api/runs/{run.pk}/").json()

    assert detail["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "model_calls": 2,
        "model": "gpt-4o-mini",
        "cost_usd": "0.000036",
    }


def test_staff_who_may_not_view_runs_see_no_usage() -> None:
    staff = StaffFactory.create(is_superuser=False)
    run = _finished_run(owner=staff)
    client = APIClient()
    client.force_authenticate(staff)

    detail = client.get(f"/api/runs/{run.pk}/").json()

    assert "usage" not in detail
