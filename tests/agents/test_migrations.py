import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from tests.conversations.factories import ConversationFactory, MessageFactory

BEFORE, AFTER = ("agents", "0008_daily_spend"), ("agents", "0009_run_silence")


@pytest.mark.django_db(transaction=True)
def test_runs_silenced_before_the_field_get_their_silence_from_their_note() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate([BEFORE])
    old_run = executor.loader.project_state([BEFORE]).apps.get_model("agents", "AgentRun")
    notes = {
        "with_staff": "The conversation is with staff; the assistant stays silent.",
        "closed": "The conversation was closed; the assistant stays silent. the turn had failed",
        "": "Cancelled by the customer.",
    }
    runs = {}
    for silence, note in notes.items():
        conversation = ConversationFactory.create()
        message = MessageFactory.create(conversation=conversation)
        runs[silence] = old_run.objects.create(
            conversation_id=conversation.pk,
            user_message_id=message.pk,
            status="cancelled",
            error=note,
        ).pk

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([AFTER])
    new_run = executor.loader.project_state([AFTER]).apps.get_model("agents", "AgentRun")
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())  # as the other tests expect

    silences = {note: new_run.objects.get(pk=pk).silence for note, pk in runs.items()}
    assert silences == {"with_staff": "with_staff", "closed": "closed", "": ""}
