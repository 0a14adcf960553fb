from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.timesince import timesince

from agents.selectors import conversation_cost_usd
from conversations.models import Conversation, HandoffQueueEntry, Message
from conversations.services import conversation_hand_back, staff_message_post


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "role", "agent", "content", "run"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["id"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ConversationAdminForm(forms.ModelForm):
    staff_reply = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Sent to the customer as a staff message when you save.",
    )

    class Meta:
        model = Conversation
        fields = ["title", "status"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    form = ConversationAdminForm
    list_display = ["__str__", "owner", "status", "handoff_reason", "handoff_at", "updated_at"]
    list_filter = ["status"]
    search_fields = ["id", "owner__username", "title", "messages__content"]
    readonly_fields = [
        "id", "owner", "handoff_reason", "handoff_at", "total_cost", "created_at", "updated_at",
    ]  # fmt: skip
    inlines = [MessageInline]
    actions = ["hand_back_to_assistant"]

    @admin.display(description="model cost (USD)")
    def total_cost(self, conversation: Conversation) -> str:
        return str(conversation_cost_usd(conversation_id=conversation.pk))

    @admin.action(description="Hand back to the assistant")
    def hand_back_to_assistant(
        self, request: HttpRequest, queryset: QuerySet[Conversation]
    ) -> None:
        for conversation in queryset:
            conversation_hand_back(conversation=conversation)
        self.message_user(request, f"{queryset.count()} conversation(s) handed back.")

    def save_model(self, request: HttpRequest, obj: Conversation, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        reply = form.cleaned_data.get("staff_reply", "").strip()
        if reply:
            staff_message_post(conversation=obj, author=request.user, content=reply)
            self.message_user(request, "Your reply was sent to the customer.", messages.SUCCESS)


@admin.register(HandoffQueueEntry)
class HandoffQueueAdmin(ConversationAdmin):
    """The "needs human" queue: conversations waiting for staff, oldest first, with the reason."""

    list_display = ["__str__", "owner", "handoff_reason", "handoff_at", "waiting"]
    list_filter = []
    ordering = ["handoff_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).filter(status=Conversation.Status.NEEDS_HUMAN)

    @admin.display(description="waiting for")
    def waiting(self, conversation: Conversation) -> str:
        return timesince(conversation.handoff_at) if conversation.handoff_at else "-"
