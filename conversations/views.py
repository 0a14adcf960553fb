from django.views.generic import TemplateView


class ChatPageView(TemplateView):
    """The shop's chat box: a guest session talking to the API (static JS, no build step)."""

    template_name = "chat/chat.html"
