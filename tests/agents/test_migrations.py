import pytest

from tests.conversations.factories import ConversationFactory, MessageFactory
from tests.support.migrations import migrated_through, model_as_of

BEFORE, AFTER = ("agents", "0008_daily_spend"), ("agents", "0009_run_silence")


@pytest.mark.django_db(transaction=True)
def test_runs_silenced_before_the_field_get_their_silence_from_their_note() -> None:
    old_run = model_as_of(BEFORE, "AgentRun")
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

    new_run = migrated_through(AFTER).get_model("agents", "AgentRun")

    silences = {note: new_run.objects.get(pk=pk).silence for note, pk in runs.items()}
    assert silences == {"with_staff": "with_staff", "closed": "closed", "": ""}
