import pytest

from agents.models import AgentRun
from conversations.models import Conversation, Message
from conversations.selectors import conversation_history
from tests.agents.factories import AgentRunFactory
from tests.conversations.factories import ConversationFactory, MessageFactory

pytestmark = pytest.mark.django_db


def _asked(conversation: Conversation, content: str) -> tuple[Message, AgentRun]:
    run = AgentRunFactory.create(conversation=conversation, user_message__content=content)
    return run.user_message, run


def _answered(run: AgentRun, content: str) -> Message:
    return MessageFactory.create(
        conversation=run.conversation, role=Message.Role.ASSISTANT, content=content, run=run
    )


def _contents(messages: list[Message]) -> list[str]:
    return [message.content for message in messages]


def test_a_reply_stored_after_the_next_message_is_read_right_after_its_question() -> None:
    # The customer sent B while A's run was still running: A's reply is stored after B.
    conversation = ConversationFactory.create()
    first, first_run = _asked(conversation, "What's your strongest manuka?")
    second, _ = _asked(conversation, "and how long does delivery take?")
    _answered(first_run, "Our strongest is the UMF 20+.")

    history = conversation_history(conversation=conversation, up_to=second, limit=12)

    assert _contents(history) == [
        "What's your strongest manuka?",
        "Our strongest is the UMF 20+.",
        "and how long does delivery take?",
    ]
    assert history[0] == first


def test_replies_stored_late_keep_to_their_questions_and_later_replies_are_left_out() -> None:
    conversation = ConversationFactory.create()
    _, first_run = _asked(conversation, "A?")
    _, second_run = _asked(conversation, "B?")
    _answered(first_run, "Answer to A.")
    third, third_run = _asked(conversation, "C?")
    _answered(second_run, "Answer to B.")
    MessageFactory.create(conversation=conversation, content="D?")
    _answered(third_run, "Answer to C.")

    history = conversation_history(conversation=conversation, up_to=third, limit=12)

    assert _contents(history) == ["A?", "Answer to A.", "B?", "Answer to B.", "C?"]


def test_the_limit_keeps_the_latest_messages_in_the_order_read() -> None:
    conversation = ConversationFactory.create()
    _, first_run = _asked(conversation, "A?")
    second, _ = _asked(conversation, "B?")
    _answered(first_run, "Answer to A.")

    history = conversation_history(conversation=conversation, up_to=second, limit=2)

    assert _contents(history) == ["Answer to A.", "B?"]


def test_staff_messages_keep_their_place() -> None:
    conversation = ConversationFactory.create()
    first, first_run = _asked(conversation, "A?")
    MessageFactory.create(conversation=conversation, role=Message.Role.STAFF, content="Sam here.")
    second, _ = _asked(conversation, "B?")
    _answered(first_run, "Answer to A.")

    history = conversation_history(conversation=conversation, up_to=second, limit=12)

    assert _contents(history) == ["A?", "Answer to A.", "Sam here.", "B?"]
    assert history[0] == first
