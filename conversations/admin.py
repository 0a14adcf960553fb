import uuid
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.timesince import timesince

from agents.models import AgentRun
from agents.selectors import conversation_cost_usd
from beemanhoney.common.admin import (
    DELETE_PAGE_ROWS_LISTED,
    ShopModelAdmin,
    admin_link,
    more_rows_line,
    viewable_annotated,
)
from beemanhoney.common.exceptions import ApplicationError, DeletedMeanwhile
from beemanhoney.common.permissions import authenticated_user, model_permission
from beemanhoney.common.text import clip
from conversations.models import (
    MAX_MESSAGE_LENGTH,
    STAFF_TAKE_OVER_REASON,
    Conversation,
    HandoffQueueEntry,
    Message,
    ReplyFeedback,
)
from conversations.selectors import (
    ANSWERING_RUN_TRACE,
    conversation_last_message_id,
    conversation_rows_deleted_with,
    conversations_waiting_since_annotated,
)
from conversations.services import (
    conversation_handoff,
    conversation_retitle,
    conversations_close,
    conversations_delete,
    conversations_hand_back,
    message_content_checked,
    staff_message_post,
    users_delete,
)

# The latest messages shown on a conversation's page: a long chat stays one light page.
TRANSCRIPT_MESSAGES = 200
# Set on a request whose staff reply the service refused after the form took it.
REPLY_REFUSED = "_staff_reply_refused"


class _PageMarkField(forms.Field):
    """A hidden value of the page as it was shown, for its save to check against: not a change
    to put in the history."""

    def has_changed(self, initial: Any, data: Any) -> bool:
        return False


class _ReplyKeyField(_PageMarkField, forms.CharField):
    pass


class _LastMessageShownField(_PageMarkField, forms.IntegerField):
    pass


class ConversationAdminForm(forms.ModelForm):
    staff_reply = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=MAX_MESSAGE_LENGTH,
        help_text="Sent to the customer as a staff message when you save. The assistant then "
        "stays silent until the conversation is handed back to it.",
    )
    # One per page load: the same form submitted twice sends its reply once.
    reply_key = _ReplyKeyField(
        widget=forms.HiddenInput, required=False, max_length=32, initial=lambda: uuid.uuid4().hex
    )
    # The newest message the page showed (0: none): a customer's message after it refuses the
    # reply, which would mark it answered unread.
    last_message_shown = _LastMessageShownField(
        widget=forms.HiddenInput, required=False, min_value=0
    )

    class Meta:
        model = Conversation
        fields = ["title"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The page posts the title it showed too: the title counts as changed only when the
        # staff changed it, not when a colleague renamed it since (which would be undone).
        if "title" in self.fields:  # not read-only (staff who may only view)
            self.fields["title"].show_hidden_initial = True
        if "last_message_shown" in self.fields and self.instance.pk is not None:
            # Read before the page's transcript is: a message between the two is shown and
            # refuses the reply all the same, rather than counting as read unshown.
            last = conversation_last_message_id(conversation_id=self.instance.pk)
            self.fields["last_message_shown"].initial = last or 0
        if "staff_reply" in self.fields and self.instance.status == Conversation.Status.CLOSED:
            # Greyed out in the page, not taken out of the form: a page shown before a colleague
            # closed the chat still posts its reply, and is told it was not sent.
            self.fields["staff_reply"].widget.attrs.update(
                disabled=True, placeholder="This conversation is closed: it takes no more messages."
            )

    def clean_staff_reply(self) -> str:
        reply = self.cleaned_data["staff_reply"].strip()
        if not reply:
            return reply
        if self.instance.status == Conversation.Status.CLOSED:
            raise forms.ValidationError("This conversation is closed.")
        try:
            # As the reply's post will check it: refused there, the page would say it saved.
            return message_content_checked(reply)
        except ApplicationError as error:
            raise forms.ValidationError(error.message, code=error.code) from None


def _run_link(message: Message, *, linked: bool) -> str:
    """The run that wrote an assistant reply, or the run that answered (or was to answer) a
    customer's message, with its status: a cancelled run writes no reply, and its reason is
    on its page. A link only when ``linked`` (the staff may view runs), else the same words."""
    if message.run_id:
        run_id, label = message.run_id, "run"
    elif (run := getattr(message, "answering_run", None)) is not None:
        run_id, label = run.pk, f"run ({run.status})"
    else:
        return ""
    if not linked:
        return label
    url = reverse("admin:agents_agentrun_change", args=[run_id])
    return format_html('<a href="{}">{}</a>', url, label)


def _written_by(message: Message) -> str:
    """The agent that wrote an assistant's reply, or the staff member who wrote theirs."""
    if message.role == Message.Role.STAFF and message.author is not None:
        return message.author.get_username()
    return message.agent


def _feedback_shown(message: Message) -> str:
    feedback = getattr(message, "feedback", None)
    return "" if feedback is None else str(feedback)


@admin.register(Conversation)
class ConversationAdmin(ShopModelAdmin):
    """Status changes go through the actions (take over, hand back, close) and a staff reply,
    each a conditional update in ``conversations.services``: a form saving the status it
    loaded would undo a hand-off the assistant made meanwhile."""

    form = ConversationAdminForm
    list_display = ["__str__", "owner", "status", "handoff_reason", "handoff_at", "updated_at"]
    list_filter = ["status"]
    # What get_search_results searches; Django shows the search box when this is not empty.
    search_fields = ["id", "owner__username", "owner__email", "title"]
    search_help_text = (
        "A conversation's id, or the start of its customer's username or email, or words of its"
        " title."
    )
    # No count of every conversation beside a search's (a second read of the whole table).
    show_full_result_count = False
    readonly_fields = [
        "id", "owner", "status", "handoff_reason", "handoff_at", "total_cost", "created_at",
        "updated_at", "transcript",
    ]  # fmt: skip
    actions = ["take_over", "hand_back_to_assistant", "close_conversations"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # customers open conversations, through the API

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Conversation], search_term: str
    ) -> tuple[QuerySet[Conversation], bool]:
        """An id finds its conversation by the primary key. Other text finds the customers whose
        username or email starts with it, and the titles holding it: not the messages, whose
        every row a search for a word within them read (seconds at 500k messages). The
        customers are found first, by their own indexes (conversations/0007), and their
        conversations by a set of their ids: joined to every conversation, each user's name
        was read and compared (0.3 to 0.6 s at 300k conversations, 0.08 to 0.12 s now)."""
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            conversation_id = uuid.UUID(term)
        except ValueError:
            customers = User.objects.filter(
                Q(username__istartswith=term) | Q(email__istartswith=term)
            ).values("pk")
            found = Q(owner__in=customers) | Q(title__icontains=term)
            return queryset.filter(found), False
        return queryset.filter(pk=conversation_id), False

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, int], set[str], list[Any]]:
        """What deleting these conversations takes with it, counted by a query a kind of row,
        and a few of them listed, each with its counts. Django's page loaded and listed every
        message and run of them: 0.55 s for a chat of 5,000 messages, 0.65 s for a page of
        100 chats, 6 s for a customer's 1,000 (0.02, 0.05 and 1 s now). As on Django's page,
        the staff need the permission to delete each kind of row that goes."""
        if not isinstance(objs, QuerySet):  # the delete page's one conversation
            objs = Conversation.objects.filter(pk__in=[row.pk for row in objs])
        going = conversation_rows_deleted_with(conversations=objs)
        total = objs.count()
        listed: list[Any] = []
        for conversation in objs.order_by("pk")[:DELETE_PAGE_ROWS_LISTED]:
            url = reverse("admin:conversations_conversation_change", args=[conversation.pk])
            listed.append(format_html('Conversation: <a href="{}">{}</a>', url, conversation))
            listed.append(
                [
                    f"{capfirst(model._meta.verbose_name_plural)}: {counts[conversation.pk]:,}"
                    for model, counts in going.items()
                    if counts[conversation.pk]
                ]
            )
        if total > DELETE_PAGE_ROWS_LISTED:
            listed.append(more_rows_line(total - DELETE_PAGE_ROWS_LISTED))
        model_count = {str(Conversation._meta.verbose_name_plural): total}
        model_count.update(
            (str(model._meta.verbose_name_plural), counts.total())
            for model, counts in going.items()
            if counts
        )
        deleted: list[type[Model]] = [Conversation, *(m for m, counts in going.items() if counts)]
        perms_needed = {
            str(model._meta.verbose_name)
            for model in deleted
            if self.admin_site.is_registered(model)
            and not self.admin_site.get_model_admin(model).has_delete_permission(request)
        }
        return [row for row in listed if row], model_count, perms_needed, []

    # Deleted through the service, so that whoever follows one of their runs is told at once.
    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        conversations_delete(conversations=Conversation.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        conversations_delete(conversations=queryset)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        rows = super().get_queryset(request)
        return viewable_annotated(self, request, rows, runs_viewable=AgentRun)

    def get_fields(self, request: HttpRequest, obj: Conversation | None = None) -> Any:
        fields = super().get_fields(request, obj)
        if self.has_change_permission(request, obj):
            return fields
        # Staff who may only view get no reply box (it would read "Sent ... when you save").
        return [field for field in fields if field not in ("staff_reply", "reply_key")]

    @admin.display(description="model cost (USD)")
    def total_cost(self, conversation: Conversation) -> str:
        return str(conversation_cost_usd(conversation_id=conversation.pk))

    @admin.display(description="messages")
    def transcript(self, conversation: Conversation) -> str:
        linked = getattr(conversation, "runs_viewable", False)
        count = conversation.messages.count()
        latest = reversed(
            conversation.messages.select_related("answering_run", "feedback", "author")
            .defer(*ANSWERING_RUN_TRACE)
            .order_by("-id")[:TRANSCRIPT_MESSAGES]
        )
        rows = format_html_join(
            "",
            '<tr><td style="white-space:nowrap">{}</td><td>{}</td><td>{}</td>'
            '<td style="white-space:pre-wrap">{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    f"{timezone.localtime(message.created_at):%Y-%m-%d %H:%M:%S}",
                    message.role,
                    _written_by(message),
                    message.content,
                    _run_link(message, linked=linked),
                    _feedback_shown(message),
                )
                for message in latest
            ),
        )
        shown = (
            f"The latest {TRANSCRIPT_MESSAGES} of {count} messages."
            if count > TRANSCRIPT_MESSAGES
            else f"{count} message(s)."
        )
        return format_html(
            "<p>{}</p><table><tr><th>time</th><th>role</th><th>by</th><th>content</th>"
            "<th></th><th>customer's feedback</th></tr>{}</table>",
            shown,
            rows,
        )

    def _history_add(self, request: HttpRequest, ids: list[UUID], change: str) -> None:
        """A line in the history of each conversation an action changed: who did what, when."""
        changed = Conversation.objects.filter(pk__in=ids).only("pk", "title")
        LogEntry.objects.log_actions(
            user_id=authenticated_user(request).pk,
            queryset=changed,
            action_flag=CHANGE,
            change_message=change,
        )

    @admin.action(description="Take over (the assistant stays silent)", permissions=["change"])
    def take_over(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        taken = [
            pk
            for pk in queryset.values_list("pk", flat=True)
            if conversation_handoff(conversation_id=pk, reason=STAFF_TAKE_OVER_REASON)
        ]
        self._history_add(request, taken, "Took over from the assistant.")
        self.message_user(request, f"{len(taken)} conversation(s) taken over (active ones only).")

    @admin.action(description="Hand back to the assistant", permissions=["change"])
    def hand_back_to_assistant(
        self, request: HttpRequest, queryset: QuerySet[Conversation]
    ) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        report = conversations_hand_back(conversation_ids=ids)
        self._history_add(request, report.handed, "Handed back to the assistant.")
        self.message_user(
            request, f"{len(report.handed)} conversation(s) handed back (those with staff)."
        )
        for reason in sorted(set(report.over_budget)):
            self.message_user(
                request,
                f"Not handed back ({reason}): the assistant would hand them straight back to"
                " staff. Answer them yourself.",
                messages.WARNING,
            )

    @admin.action(description="Close (no more messages)", permissions=["change"])
    def close_conversations(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        closed = conversations_close(conversation_ids=list(queryset.values_list("pk", flat=True)))
        self._history_add(request, closed, "Closed.")
        self.message_user(request, f"{len(closed)} conversation(s) closed.")

    def save_model(self, request: HttpRequest, obj: Conversation, form: Any, change: bool) -> None:
        # Only what the staff changed: the status and hand-off fields were read when the
        # request began, and writing them back would undo a take-over or hand-off since.
        if "title" in form.changed_data:
            conversation_retitle(conversation_id=obj.pk, title=obj.title)
        reply = form.cleaned_data.get("staff_reply", "")
        if not reply:
            return
        try:
            staff_message_post(
                conversation=obj,
                author=authenticated_user(request),
                content=reply,
                reply_key=form.cleaned_data.get("reply_key") or None,
                last_message_shown=form.cleaned_data.get("last_message_shown"),
            )
        except DeletedMeanwhile:
            raise  # ShopModelAdmin's page says so
        except ApplicationError as error:  # closed or written to meanwhile, or sent twice
            self.message_user(
                request, f"Your reply was not sent ({error.message}): {reply}", messages.ERROR
            )
            setattr(request, REPLY_REFUSED, True)
            return
        self.message_user(request, "Your reply was sent to the customer.", messages.SUCCESS)

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> list[dict[str, Any]]:
        message = super().construct_change_message(request, form, formsets, add)
        if getattr(request, REPLY_REFUSED, False):
            # A reply refused was not sent: the history names what did change (the title), or
            # nothing (``log_change``).
            refused = str(form.fields["staff_reply"].label or "staff_reply")
            for entry in message:
                if changed := entry.get("changed"):
                    changed["fields"] = [name for name in changed["fields"] if name != refused]
            message = [entry for entry in message if entry.get("changed", {}).get("fields")]
        return message

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if getattr(request, REPLY_REFUSED, False) and not message:
            return None  # nothing changed: the reply was refused
        return super().log_change(request, obj, message)

    def response_change(self, request: HttpRequest, obj: Conversation) -> HttpResponse:
        if getattr(request, REPLY_REFUSED, False):
            # The page again, under the error: not Django's "changed successfully" beside it.
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)


@admin.register(HandoffQueueEntry)
class HandoffQueueAdmin(ConversationAdmin):
    """The "needs human" queue: conversations waiting for staff, oldest first, with the reason."""

    list_display = ["__str__", "owner", "handoff_reason", "handoff_at", "waiting"]
    list_filter = []
    ordering = ["handoff_at"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        waiting = super().get_queryset(request).filter(status=Conversation.Status.NEEDS_HUMAN)
        return conversations_waiting_since_annotated(conversations=waiting)

    # A proxy model has permissions of its own, which no one thinks to grant: staff who may
    # view or change conversations may do the same here.
    def _may(self, request: HttpRequest, action: str) -> bool:
        return request.user.has_perm(model_permission(action, Conversation))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_view_permission(request, obj) or self._may(request, "view")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) or self._may(request, "change")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) or self._may(request, "delete")

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        # Under the conversation, not this proxy: the conversation's history shows a reply sent
        # from the queue.
        return super().log_change(request, Conversation(pk=obj.pk, title=obj.title), message)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> Conversation | None:
        # Any conversation, not only those still waiting: one handed back or closed by a
        # colleague while this page was open still saves, and a reply typed meanwhile is sent
        # (or refused as the conversation page refuses it) rather than thrown away.
        queryset = ConversationAdmin.get_queryset(self, request)
        try:
            return queryset.get(pk=self.opts.pk.to_python(object_id))
        except (HandoffQueueEntry.DoesNotExist, ValidationError, ValueError):
            return None

    @admin.display(description="waiting for")
    def waiting(self, conversation: Conversation) -> str:
        since = getattr(conversation, "waiting_since", None)
        return timesince(since) if since else "answered"


@admin.register(ReplyFeedback)
class ReplyFeedbackAdmin(ShopModelAdmin):
    """What customers said of the assistant's replies, newest first: the customer's words, so
    never changed here (staff with the delete permission may delete one). A reply's run (its
    route, tool calls and tokens) is a click away."""

    list_display = ["updated_at", "rating", "comment", "reply_excerpt", "agent", "run_link"]
    list_filter = ["rating"]
    list_select_related = ["reply"]
    search_fields = ["comment"]
    fields = (
        "rating", "comment", "reply_excerpt", "agent", "run_link", "conversation_link",
        "created_at", "updated_at",
    )  # fmt: skip
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[ReplyFeedback]:
        rows = super().get_queryset(request)
        return viewable_annotated(
            self, request, rows, runs_viewable=AgentRun, conversations_viewable=Conversation
        )

    @admin.display(description="reply")
    def reply_excerpt(self, feedback: ReplyFeedback) -> str:
        return clip(feedback.reply.content, 120)

    @admin.display(description="agent")
    def agent(self, feedback: ReplyFeedback) -> str:
        return feedback.reply.agent

    @admin.display(description="run")
    def run_link(self, feedback: ReplyFeedback) -> str:
        if feedback.reply.run_id is None:
            return "-"
        allowed = getattr(feedback, "runs_viewable", False)
        return admin_link(AgentRun, feedback.reply.run_id, allowed=allowed)

    @admin.display(description="conversation")
    def conversation_link(self, feedback: ReplyFeedback) -> str:
        allowed = getattr(feedback, "conversations_viewable", False)
        return admin_link(Conversation, feedback.reply.conversation_id, allowed=allowed)


class UserAdmin(ShopModelAdmin, auth_admin.UserAdmin):
    """Django's user admin, whose deletes take an account's conversations through
    ``users_delete``, so that whoever follows one of their runs is told.

    Unlike Django's, staff who may change users but are not superusers cannot grant what they
    lack: an account's superuser status, groups and permissions are shown to them, not
    editable (they could otherwise make themselves superusers), and another staff account is
    not theirs to change (its password, say, and then sign in with its permissions) or
    delete: they look after customers' accounts, and their own."""

    PRIVILEGES = ("is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        return [*readonly, *self.PRIVILEGES]

    def _another_staff_account(self, request: HttpRequest, obj: Any) -> bool:
        """Whether ``obj`` is a staff account not the user's own, for a user not a superuser."""
        if obj is None or request.user.is_superuser or obj.pk == request.user.pk:
            return False
        return bool(obj.is_staff or obj.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self._another_staff_account(request, obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if self._another_staff_account(request, obj):
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: User) -> None:
        users_delete(users=User.objects.filter(pk=obj.pk))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        users_delete(users=queryset)


admin.site.unregister(User)
admin.site.register(User, UserAdmin)
