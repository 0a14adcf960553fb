import factory

from agents.models import AgentRun
from tests.conversations.factories import ConversationFactory, MessageFactory


class AgentRunFactory(factory.django.DjangoModelFactory[AgentRun]):
    """A queued run answering a customer's question in its own conversation."""

    class Meta:
        model = AgentRun

    conversation = factory.SubFactory(ConversationFactory)
    user_message = factory.SubFactory(
        MessageFactory, conversation=factory.SelfAttribute("..conversation")
    )
