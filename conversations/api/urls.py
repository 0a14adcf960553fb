from django.urls import path

import beemanhoney.common.path_converters  # noqa: F401  (registers any_case_uuid)
from conversations.api import views

urlpatterns = [
    path("auth/guest/", views.GuestCreateApi.as_view(), name="auth-guest"),
    path("conversations/", views.ConversationListApi.as_view(), name="conversation-list"),
    path(
        "conversations/<any_case_uuid:conversation_id>/",
        views.ConversationDetailApi.as_view(),
        name="conversation-detail",
    ),
    path(
        "conversations/<any_case_uuid:conversation_id>/close/",
        views.ConversationCloseApi.as_view(),
        name="conversation-close",
    ),
    path(
        "conversations/<any_case_uuid:conversation_id>/messages/",
        views.MessageListApi.as_view(),
        name="message-list",
    ),
    path(
        "conversations/<any_case_uuid:conversation_id>/messages/<int:message_id>/feedback/",
        views.ReplyFeedbackApi.as_view(),
        name="reply-feedback",
    ),
]
