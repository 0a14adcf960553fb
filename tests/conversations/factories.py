import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from conversations.models import Conversation, Message, ReplyFeedback


class UserFactory(factory.django.DjangoModelFactory[User]):
    """Every test's users, the catalog's too: one username sequence, so no two share a name."""

    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"customer{n:04d}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery")


class StaffFactory(UserFactory):
    username = factory.Sequence(lambda n: f"staff{n:04d}")
    is_staff = True
    is_superuser = True


class ConversationFactory(factory.django.DjangoModelFactory[Conversation]):
    class Meta:
        model = Conversation

    owner = factory.SubFactory(UserFactory)


class MessageFactory(factory.django.DjangoModelFactory[Message]):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    role = Message.Role.USER
    content = "Do you have any heather honey?"


class ReplyFeedbackFactory(factory.django.DjangoModelFactory[ReplyFeedback]):
    class Meta:
        model = ReplyFeedback

    reply = factory.SubFactory(MessageFactory, role=Message.Role.ASSISTANT, content="We do.")
    rating = ReplyFeedback.Rating.HELPFUL
