import pytest
from django.test import Client

from agents.models import AgentRun
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
