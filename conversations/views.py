from django.views.generic import TemplateView

from conversations.models import MAX_MESSAGE_LENGTH


class ChatPageView(TemplateView):
    """The shop's chat box: a guest session talking to the API (static JS, no build step)."""

    template_name = "chat/chat.html"
    extra_context = {"max_message_length": MAX_MESSAGE_LENGTH}
