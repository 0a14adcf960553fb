import pytest
from rest_framework.test import APIClient

from agents.models import AgentRun
from tests.conversations.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("wait", ["nan", "NaN", "inf", "-inf", "-1", ["0", "30"]])
def test_a_wait_that_is_not_one_finite_number_of_seconds_is_refused(wait: str | list[str]) -> None:
    conversation = ConversationFactory.create()
    run = AgentRun.objects.create(
        conversation=conversation, user_message=MessageFactory.create(conversation=conversation)
    )
    client = APIClient()
    client.force_authenticate(conversation.owner)

    response = client.get(f"/api/runs/{run.pk}/", {"wait": wait})

    assert response.status_code == 400
    assert "wait" in response.json()["errors"]


@pytest.mark.parametrize("wait", ["1_0", "\u0663", "1e1"])
def test_a_wait_not_written_as_a_plain_number_is_refused(wait: str) -> None:
    conversation = ConversationFactory.create()
    run = AgentRun.objects.create(
        conversation=conversation, user_message=MessageFactory.create(conversation=conversation)
    )
    client = APIClient()
    client.force_authenticate(conversation.owner)

    response = client.get(f"/api/runs/{run.pk}/", {"wait": wait})

    assert response.status_code == 400
    assert response.json()["errors"] == {"wait": ["A valid number is required."]}
