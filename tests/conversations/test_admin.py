import re
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import get_deleted_objects
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from agents.models import AgentRun
from agents.run_stream import run_events_read
from conversations.admin import ConversationAdmin
from conversations.models import Conversation, HandoffQueueEntry, Message, ReplyFeedback
from conversations.services import (
    conversation_handoff,
    conversations_delete,
    conversations_hand_back,
    users_delete,
)
from tests.agents.factories import AgentRunFactory
from tests.conversations.factories import (
    ConversationFactory,
    MessageFactory,
    ReplyFeedbackFactory,
    StaffFactory,
    UserFactory,
)
from tests.support.transactions import saved_meanwhile

pytestmark = pytest.mark.django_db


CHANGELIST = "/admin/conversations/conversation/"


def change_url(conversation: Conversation) -> str:
    return f"{CHANGELIST}{conversation.pk}/change/"


def action_data(action: str, *conversations: Conversation) -> dict[str, object]:
    return {"action": action, "_selected_action": [str(c.pk) for c in conversations]}


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    client.force_login(StaffFactory.create())
    return client


def test_staff_see_the_needs_human_queue_with_messages_inline(staff_client: Client) -> None:
    waiting = ConversationFactory.create(status="needs_human", handoff_reason="Asked for a person")
    MessageFactory.create(conversation=waiting, content="<b>Can I speak to someone?</b>")

    listing = staff_client.get("/admin/conversations/conversation/?status__exact=needs_human")
    detail = staff_client.get(f"/admin/conversations/conversation/{waiting.pk}/change/")

    assert listing.status_code == 200
    assert "Asked for a person" in listing.content.decode()
    assert "&lt;b&gt;Can I speak to someone?&lt;/b&gt;" in detail.content.decode()


def test_a_staff_reply_from_admin_reaches_the_customer(staff_client: Client) -> None:
    conversation = ConversationFactory.create(status="needs_human")

    response = staff_client.post(
        change_url(conversation), {"title": "", "staff_reply": "Hello, this is Sam."}
    )

    assert response.status_code == 302
    reply = conversation.messages.get()
    assert reply.role == "staff"
    assert reply.content == "Hello, this is Sam."
    # Written in now: retention and the lists' order count staff's words as a customer's.
    assert Conversation.objects.get().updated_at >= reply.created_at


@pytest.mark.parametrize("reply", ["\u200b", "\u200b\u2060 \ufeff"])
def test_a_staff_reply_with_nothing_to_read_is_a_field_error_on_the_page(
    staff_client: Client, reply: str
) -> None:
    conversation = ConversationFactory.create(status="needs_human")

    response = staff_client.post(change_url(conversation), {"title": "", "staff_reply": reply})

    assert response.status_code == 200  # the form again, not a redirect saying it was saved
    errors = response.context["adminform"].form.errors
    assert errors["staff_reply"] == ["This field may not be blank."]
    assert not conversation.messages.exists()


@pytest.mark.django_db(transaction=True)
def test_a_staff_reply_to_a_conversation_closed_as_it_was_sent_is_shown_as_not_sent(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="needs_human")
    closing = Conversation.objects.filter(pk=conversation.pk)

    with saved_meanwhile(lambda: closing.update(status="closed")):
        response = staff_client.post(
            change_url(conversation), {"title": "", "staff_reply": "Sam here."}, follow=True
        )

    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["Your reply was not sent (This conversation is closed.): Sam here."]
    assert response.redirect_chain == [(change_url(conversation), 302)]
    assert not conversation.messages.exists()


@pytest.mark.django_db(transaction=True)
def test_a_staff_reply_to_a_conversation_deleted_as_it_was_sent_says_so_and_saves_nothing(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="needs_human")

    with saved_meanwhile(Conversation.objects.filter(pk=conversation.pk).delete):
        response = staff_client.post(
            change_url(conversation), {"title": "", "staff_reply": "Sam here."}, follow=True
        )

    shown = [str(message) for message in response.context["messages"]]
    assert shown == ["This conversation was deleted while you were editing it: nothing was saved."]
    assert response.redirect_chain == [(CHANGELIST, 302)]
    assert not Message.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_user_added_with_a_username_a_colleague_took_meanwhile_is_refused_at_the_field(
    staff_client: Client,
) -> None:
    data = {"username": "alice", "password1": "x8-Kq!v2zR", "password2": "x8-Kq!v2zR"}

    with saved_meanwhile(lambda: User.objects.create_user("alice")):
        response = staff_client.post("/admin/auth/user/add/", data)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "username": ["A user with that username already exists."]
    }
    assert User.objects.filter(username="alice").get().has_usable_password() is False


def test_a_new_reply_sent_again_from_a_page_already_sent_is_refused_not_reported_sent(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="needs_human")
    page = {"title": "", "reply_key": "page-1"}
    staff_client.post(
        change_url(conversation), page | {"staff_reply": "First answer."}, follow=True
    )

    # The browser's Back button brings the sent page back, its key with it.
    response = staff_client.post(
        change_url(conversation), page | {"staff_reply": "Second answer."}, follow=True
    )

    shown = [str(message) for message in response.context["messages"]]
    assert shown == [
        "Your reply was not sent (this page's reply was already sent; send the new one from the"
        " page as it is now): Second answer."
    ]
    assert list(conversation.messages.values_list("content", flat=True)) == ["First answer."]


def test_a_reply_from_a_page_shown_before_a_colleague_renamed_the_chat_keeps_the_new_title(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="needs_human", title="Refund?")
    page = {"title": "Refund?", "initial-title": "Refund?"}
    Conversation.objects.filter(pk=conversation.pk).update(title="VIP: refund promised")

    staff_client.post(change_url(conversation), page | {"staff_reply": "Sam here."})

    conversation.refresh_from_db()
    assert conversation.title == "VIP: refund promised"
    assert conversation.messages.get().content == "Sam here."


def test_staff_rename_a_conversation_from_its_page(staff_client: Client) -> None:
    conversation = ConversationFactory.create(title="Refund?")

    response = staff_client.post(
        change_url(conversation), {"title": "Refund promised", "initial-title": "Refund?"}
    )

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.title == "Refund promised"


def test_an_action_on_a_selected_id_that_is_not_a_conversation_s_is_a_400(
    staff_client: Client,
) -> None:
    response = staff_client.post(CHANGELIST, {"action": "take_over", "_selected_action": ["x"]})

    assert response.status_code == 400


def test_hand_back_returns_only_conversations_with_staff_to_the_assistant(
    staff_client: Client,
) -> None:
    with_staff = ConversationFactory.create(status="needs_human", handoff_reason="Asked")
    closed = ConversationFactory.create(status="closed")

    response = staff_client.post(
        CHANGELIST, action_data("hand_back_to_assistant", with_staff, closed), follow=True
    )

    with_staff.refresh_from_db()
    closed.refresh_from_db()
    assert (with_staff.status, with_staff.handoff_reason) == ("active", "")
    assert closed.status == "closed"
    assert "1 conversation(s) handed back" in response.content.decode()


@pytest.mark.parametrize(
    ("staff_replied", "answered"), [(False, True), (True, False)], ids=["waiting", "staff replied"]
)
def test_hand_back_answers_a_customer_message_left_waiting_meanwhile(
    staff_client: Client, staff_replied: bool, answered: bool
) -> None:
    conversation = ConversationFactory.create(status="needs_human", handoff_reason="Asked")
    waiting = MessageFactory.create(conversation=conversation, content="Do you sell candles?")
    if staff_replied:
        MessageFactory.create(conversation=conversation, role="staff", content="We do!")

    staff_client.post(CHANGELIST, action_data("hand_back_to_assistant", conversation))

    assert AgentRun.objects.filter(user_message=waiting).exists() is answered
    assert AgentRun.objects.count() == int(answered)


def test_a_conversation_over_its_budget_is_not_handed_back_and_staff_are_told_why(
    staff_client: Client, settings
) -> None:
    settings.CONVERSATION_BUDGET_USD = Decimal("0.50")
    conversation = ConversationFactory.create(status="needs_human", handoff_reason="budget")
    earlier = MessageFactory.create(conversation=conversation, content="Manuka?")
    AgentRunFactory.create(
        conversation=conversation, user_message=earlier, status="succeeded", cost_usd="0.60"
    )
    waiting = MessageFactory.create(conversation=conversation, content="Still there?")

    response = staff_client.post(
        CHANGELIST, action_data("hand_back_to_assistant", conversation), follow=True
    )

    conversation.refresh_from_db()
    assert conversation.status == "needs_human"
    assert not AgentRun.objects.filter(user_message=waiting).exists()  # no turn to bounce it
    page = response.content.decode()
    assert "0 conversation(s) handed back" in page
    assert "Not handed back (budget: this conversation reached 0.50 USD)" in page


def test_take_over_silences_the_assistant_on_active_conversations(staff_client: Client) -> None:
    active = ConversationFactory.create(status="active")
    closed = ConversationFactory.create(status="closed")

    staff_client.post(CHANGELIST, action_data("take_over", active, closed))

    active.refresh_from_db()
    closed.refresh_from_db()
    assert (active.status, active.handoff_reason) == ("needs_human", "Taken over by staff.")
    assert active.handoff_at is not None
    assert closed.status == "closed"


def test_close_ends_open_conversations(staff_client: Client) -> None:
    active, with_staff = (
        ConversationFactory.create(status="active"),
        ConversationFactory.create(status="needs_human"),
    )

    staff_client.post(CHANGELIST, action_data("close_conversations", active, with_staff))

    assert set(Conversation.objects.values_list("status", flat=True)) == {"closed"}


def test_each_conversation_s_history_says_who_took_it_over_handed_it_back_and_closed_it() -> None:
    conversation, already_closed = (
        ConversationFactory.create(status="active"),
        ConversationFactory.create(status="closed"),
    )
    clients = {name: Client() for name in ("sam", "alex")}
    for name, client in clients.items():
        client.force_login(StaffFactory.create(username=name))

    for name, action in [
        ("sam", "take_over"),
        ("sam", "hand_back_to_assistant"),
        ("alex", "close_conversations"),
    ]:
        clients[name].post(CHANGELIST, action_data(action, conversation, already_closed))

    history = LogEntry.objects.filter(object_id=str(conversation.pk)).order_by("pk")
    assert list(history.values_list("user__username", "change_message")) == [
        ("sam", "Took over from the assistant."),
        ("sam", "Handed back to the assistant."),
        ("alex", "Closed."),
    ]
    assert not LogEntry.objects.filter(object_id=str(already_closed.pk)).exists()


def test_a_deleted_conversation_s_history_keeps_who_did_what_but_not_its_customer_s_title(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="active", title="My pollen allergy")
    staff_client.post(CHANGELIST, action_data("take_over", conversation))

    conversations_delete(conversations=Conversation.objects.filter(pk=conversation.pk))

    history = LogEntry.objects.filter(object_id=str(conversation.pk))
    assert list(history.values_list("change_message", "object_repr")) == [
        ("Took over from the assistant.", f"conversation {conversation.pk}")
    ]


def test_a_reply_from_the_queue_is_in_the_conversation_s_history_and_loses_its_title_with_it(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(
        status="needs_human", handoff_reason="Asked", title="My pollen allergy"
    )
    queue_page = f"/admin/conversations/handoffqueueentry/{conversation.pk}/change/"
    staff_client.post(queue_page, {"title": "Jo's pollen allergy", "staff_reply": "Sam here."})
    queue_lines = HandoffQueueEntry.objects.filter(pk=conversation.pk)
    LogEntry.objects.log_actions(  # as the queue's own pages write a deletion: under the proxy
        user_id=StaffFactory.create().pk, queryset=queue_lines, action_flag=CHANGE
    )
    history = staff_client.get(f"{CHANGELIST}{conversation.pk}/history/")

    conversations_delete(conversations=Conversation.objects.filter(pk=conversation.pk))

    assert [entry.object_repr for entry in history.context["action_list"]] == [
        "Jo's pollen allergy"
    ]
    kept = LogEntry.objects.filter(object_id=str(conversation.pk))
    assert set(kept.values_list("object_repr", flat=True)) == {f"conversation {conversation.pk}"}
    assert kept.count() == 2


def test_a_deleted_account_s_history_keeps_who_did_what_but_not_its_username() -> None:
    staff, customer = StaffFactory.create(), UserFactory.create(username="jo.bloggs")
    accounts = User.objects.filter(pk=customer.pk)
    LogEntry.objects.log_actions(
        user_id=staff.pk, queryset=accounts, action_flag=CHANGE, change_message="Renamed."
    )

    users_delete(users=accounts)

    history = LogEntry.objects.filter(object_id=str(customer.pk))
    assert list(history.values_list("change_message", "object_repr")) == [
        ("Renamed.", f"user {customer.pk}")
    ]


def test_a_staff_reply_takes_an_active_conversation_over(staff_client: Client) -> None:
    conversation = ConversationFactory.create(status="active")

    staff_client.post(change_url(conversation), {"title": "", "staff_reply": "Sam here."})

    conversation.refresh_from_db()
    assert conversation.status == "needs_human"
    assert conversation.handoff_reason == "A staff member replied."


@pytest.mark.parametrize(
    ("status", "reply", "error"),
    [
        ("closed", "Hello?", "This conversation is closed."),
        ("needs_human", "x" * 4001, "Ensure this value has at most 4000 characters"),
    ],
)
def test_a_staff_reply_that_cannot_be_sent_is_a_form_error(
    staff_client: Client, status: str, reply: str, error: str
) -> None:
    conversation = ConversationFactory.create(status=status)

    response = staff_client.post(change_url(conversation), {"title": "", "staff_reply": reply})

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not conversation.messages.exists()


def test_saving_the_page_keeps_a_hand_off_the_assistant_made_meanwhile(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="active")
    staff_client.get(change_url(conversation))
    Conversation.objects.filter(pk=conversation.pk).update(status="needs_human")

    staff_client.post(change_url(conversation), {"title": "Renamed", "staff_reply": ""})

    conversation.refresh_from_db()
    assert (conversation.title, conversation.status) == ("Renamed", "needs_human")


def test_saving_the_form_keeps_a_take_over_committed_while_the_post_was_handled() -> None:
    conversation = ConversationFactory.create(status="active", title="Website chat")
    request = RequestFactory().post(change_url(conversation))
    request.user = StaffFactory.create()
    model_admin = ConversationAdmin(Conversation, admin.site)
    loaded = model_admin.get_object(request, str(conversation.pk))
    form = model_admin.get_form(request, loaded, change=True)(
        data={"title": "Gift order", "staff_reply": ""}, instance=loaded
    )
    assert form.is_valid()
    conversation_handoff(conversation_id=conversation.pk, reason="The customer asked for a person.")

    model_admin.save_model(request, form.save(commit=False), form, change=True)

    conversation.refresh_from_db()
    assert conversation.title == "Gift order"
    assert conversation.status == "needs_human"
    assert conversation.handoff_reason == "The customer asked for a person."
    assert conversation.handoff_at is not None


def test_conversations_are_not_added_in_the_admin(staff_client: Client) -> None:
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403


def test_staff_who_may_only_view_conversations_get_no_actions(client: Client) -> None:
    viewer = StaffFactory.create(is_superuser=False)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_conversation"))
    client.force_login(viewer)
    conversation = ConversationFactory.create(status="needs_human")

    page = client.get(CHANGELIST)
    client.post(CHANGELIST, action_data("hand_back_to_assistant", conversation))

    assert page.status_code == 200  # the list is theirs to read
    assert b'value="hand_back_to_assistant"' not in page.content
    conversation.refresh_from_db()
    assert conversation.status == "needs_human"


def test_a_long_conversation_shows_its_latest_messages(staff_client: Client) -> None:
    conversation = ConversationFactory.create()
    MessageFactory.create(conversation=conversation, content="the very first")
    MessageFactory.create_batch(203, conversation=conversation, content="in between")
    MessageFactory.create(conversation=conversation, content="the very latest")

    page = staff_client.get(change_url(conversation)).content.decode()

    assert "The latest 200 of 205 messages." in page
    assert "the very latest" in page
    assert "the very first" not in page
    assert page.count("<td>user</td>") == 200


def _deleted_on_its_page(changelist: str, pk: object) -> tuple[str, dict[str, str]]:
    return f"{changelist}{pk}/delete/", {"post": "yes"}


def _deleted_from_the_list(changelist: str, pk: object) -> tuple[str, dict[str, str]]:
    return changelist, {"action": "delete_selected", "_selected_action": str(pk), "post": "yes"}


DELETE_WAYS = pytest.mark.parametrize(
    "deleted", [_deleted_on_its_page, _deleted_from_the_list], ids=["its page", "the list"]
)


@DELETE_WAYS
def test_a_superuser_can_delete_a_conversation_with_its_runs_and_their_followers_are_told(
    staff_client: Client, django_capture_on_commit_callbacks, deleted: Callable
) -> None:
    conversation = ConversationFactory.create()
    queued = AgentRunFactory.create(conversation=conversation)
    answered = AgentRunFactory.create(conversation=conversation, status=AgentRun.Status.SUCCEEDED)

    with django_capture_on_commit_callbacks(execute=True):
        url, data = deleted(CHANGELIST, conversation.pk)
        response = staff_client.post(url, data, follow=True)

    assert response.status_code == 200
    assert not Conversation.objects.exists()
    assert not AgentRun.objects.exists()
    # The queued run's event stream and waits end at once; the answered run had its end.
    assert [event.type for event in run_events_read(run_id=str(queued.pk))] == ["run.deleted"]
    assert run_events_read(run_id=str(answered.pk)) == []


def test_a_customer_s_delete_page_lists_a_few_of_each_kind_and_counts_them_all(
    staff_client: Client,
) -> None:
    customer = UserFactory.create()
    for conversation in ConversationFactory.create_batch(22, owner=customer):
        MessageFactory.create_batch(21, conversation=conversation)

    page = staff_client.get(f"/admin/auth/user/{customer.pk}/delete/")

    assert dict(page.context["model_count"]) == {"users": 1, "conversations": 22, "messages": 462}
    listed = page.context["deleted_objects"]
    assert listed[0] == f'User: <a href="/admin/auth/user/{customer.pk}/change/">{customer}</a>'
    conversations = listed[1]
    assert (len(conversations), conversations[-1]) == (20 * 2 + 1, "… and 2 more")
    messages = conversations[1]
    assert (len(messages), messages[-1]) == (21, "… and 1 more")


def _answered(conversation: Conversation) -> None:
    """A question, the run that answered it, its reply and the customer's feedback on it."""
    run = AgentRunFactory.create(conversation=conversation, status=AgentRun.Status.SUCCEEDED)
    reply = MessageFactory.create(conversation=conversation, role=Message.Role.ASSISTANT, run=run)
    ReplyFeedbackFactory.create(reply=reply)


def test_deleting_conversations_counts_their_messages_and_runs_without_reading_them(
    staff_client: Client,
) -> None:
    conversations = ConversationFactory.create_batch(22)
    for conversation in conversations:
        _answered(conversation)

    with CaptureQueriesContext(connection) as queries:
        page = staff_client.post(CHANGELIST, action_data("delete_selected", *conversations))

    assert dict(page.context["model_count"]) == {
        "conversations": 22,
        "messages": 44,
        "agent runs": 22,
        "reply feedback": 22,
    }
    listed = page.context["deletable_objects"][0]
    assert (len(listed), listed[-1]) == (20 * 2 + 1, "… and 2 more")
    assert listed[1] == ["Messages: 2", "Agent runs: 1", "Reply feedback: 1"]
    read = [q["sql"] for q in queries]
    assert not [sql for sql in read if '"content"' in sql or '"tool_calls"' in sql]


def test_a_conversation_s_delete_page_counts_what_django_s_collector_deletes_with_it(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create()
    _answered(conversation)
    MessageFactory.create(conversation=conversation, role=Message.Role.STAFF)
    request = RequestFactory().get("/")
    request.user = StaffFactory.create()

    page = staff_client.get(f"{CHANGELIST}{conversation.pk}/delete/")
    _, collected, _, protected = get_deleted_objects([conversation], request, admin.site)

    assert dict(page.context["model_count"]) == collected
    assert protected == []


def test_staff_who_may_not_delete_runs_cannot_delete_a_conversation_that_has_some(
    client: Client,
) -> None:
    staff = UserFactory.create(is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(codename__in=["view_conversation", "delete_conversation"])
    )
    client.force_login(staff)
    answered, unanswered = ConversationFactory.create_batch(2)
    _answered(answered)

    refused = client.get(f"{CHANGELIST}{answered.pk}/delete/")
    allowed = client.get(f"{CHANGELIST}{unanswered.pk}/delete/")

    assert refused.context["perms_lacking"] == {"agent run", "reply feedback"}
    assert not allowed.context["perms_lacking"]


def test_agent_runs_are_read_only_with_their_trace(staff_client: Client) -> None:
    conversation = ConversationFactory.create()
    run = AgentRunFactory.create(
        conversation=conversation,
        route="sales",
        tool_calls=[{"tool": "search_products", "args": {"query": "<script>x</script>"}}],
    )

    page = staff_client.get(f"/admin/agents/agentrun/{run.pk}/change/").content.decode()

    assert "search_products" in page
    assert "<script>x</script>" not in page
    assert staff_client.get("/admin/agents/agentrun/add/").status_code == 403


def test_the_needs_human_queue_lists_waiting_conversations_oldest_first(staff_client) -> None:
    newer = ConversationFactory.create(status="needs_human", handoff_reason="budget")
    older = ConversationFactory.create(status="needs_human", handoff_reason="Asked for a person")
    ConversationFactory.create(status="active")
    Conversation.objects.filter(pk=older.pk).update(handoff_at=timezone.now() - timedelta(hours=2))
    Conversation.objects.filter(pk=newer.pk).update(handoff_at=timezone.now())

    page = staff_client.get("/admin/conversations/handoffqueueentry/").content.decode()

    assert page.index("Asked for a person") < page.index("budget")
    assert page.count('class="action-select"') == 2


def test_the_queue_says_how_long_each_customer_has_waited_since_staff_last_answered(
    staff_client: Client,
) -> None:
    now = timezone.now()
    chats = {
        name: ConversationFactory.create(status="needs_human", handoff_at=now - timedelta(hours=3))
        for name in (
            "unanswered", "answered", "asked again", "answered before the hand-off",
            "taken over by a reply",
        )
    }  # fmt: skip
    said = [
        ("answered", "staff", 2),
        ("asked again", "staff", 2),
        ("asked again", "user", 1),
        ("asked again", "user", 0.5),
        # Staff answered, handed back; the assistant answered, then handed over again.
        ("answered before the hand-off", "staff", 4),
        ("answered before the hand-off", "user", 3.5),
        # The reply is stored a moment before the hand-off it makes.
        ("taken over by a reply", "staff", 3.001),
    ]
    for name, role, hours_ago in said:
        message = MessageFactory.create(conversation=chats[name], role=role)
        Message.objects.filter(pk=message.pk).update(created_at=now - timedelta(hours=hours_ago))

    listing = staff_client.get("/admin/conversations/handoffqueueentry/")

    cl = listing.context["cl"]
    waiting = {row.pk: cl.model_admin.waiting(row) for row in cl.result_list}
    assert {name: waiting[chat.pk] for name, chat in chats.items()} == {
        "unanswered": "3\xa0hours",
        "answered": "answered",
        "asked again": "1\xa0hour",
        "answered before the hand-off": "3\xa0hours",
        "taken over by a reply": "answered",
    }


def test_the_runs_list_filters_by_route_without_scanning_for_distinct_values(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create()
    for route in ("sales", "support"):
        AgentRunFactory.create(conversation=conversation, route=route)

    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get("/admin/agents/agentrun/?route=support")

    assert [run.route for run in page.context["cl"].result_list] == ["support"]
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"] and "agentrun" in q["sql"]]


def test_a_reply_from_the_queue_is_sent_when_a_colleague_handed_the_conversation_back_meanwhile(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="needs_human", handoff_reason="Asked")
    queue_page = f"/admin/conversations/handoffqueueentry/{conversation.pk}/change/"
    staff_client.get(queue_page)
    conversations_hand_back(conversation_ids=[conversation.pk])

    response = staff_client.post(queue_page, {"title": "", "staff_reply": "Sam here."})

    assert response.status_code == 302
    assert conversation.messages.get().content == "Sam here."
    conversation.refresh_from_db()
    assert conversation.status == "needs_human"


def test_a_reply_form_submitted_twice_sends_the_reply_once(staff_client: Client) -> None:
    conversation = ConversationFactory.create(status="needs_human")
    page = staff_client.get(change_url(conversation)).content.decode()
    reply_key = re.search(r'name="reply_key" value="(\w+)"', page)
    assert reply_key is not None
    form = {"title": "", "staff_reply": "Sam here.", "reply_key": reply_key[1]}

    first = staff_client.post(change_url(conversation), form)
    second = staff_client.post(change_url(conversation), form)

    assert (first.status_code, second.status_code) == (302, 302)
    assert conversation.messages.get().content == "Sam here."


def page_marks(page: str) -> dict[str, str]:
    """The hidden values a conversation's page carries for its save to check."""
    return {
        name: re.search(rf'name="{name}" value="(\w+)"', page)[1]  # type: ignore[index]
        for name in ("reply_key", "last_message_shown")
    }


def test_a_reply_written_while_the_customer_wrote_again_is_not_sent_and_their_message_waits(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(
        status="needs_human", handoff_reason="Asked", handoff_at=timezone.now()
    )
    MessageFactory.create(conversation=conversation, content="A person, please.")
    queue_page = f"/admin/conversations/handoffqueueentry/{conversation.pk}/change/"
    page = page_marks(staff_client.get(queue_page).content.decode())
    MessageFactory.create(conversation=conversation, content="Also: is the manuka in stock?")

    response = staff_client.post(
        queue_page, page | {"title": "", "staff_reply": "We ship to France."}, follow=True
    )

    notices = [str(message) for message in response.context["messages"]]
    assert notices == [
        "Your reply was not sent (the customer wrote again after the page was shown; read"
        " their message, then reply): We ship to France."
    ]
    assert "Also: is the manuka in stock?" in response.content.decode()
    assert not conversation.messages.filter(role=Message.Role.STAFF).exists()
    assert not LogEntry.objects.filter(object_id=str(conversation.pk)).exists()  # no "Changed"
    waiting = staff_client.get("/admin/conversations/handoffqueueentry/")
    assert waiting.context["cl"].result_list[0].waiting_since is not None
    # From the page as it is now, the reply goes.
    page = page_marks(response.content.decode())
    staff_client.post(queue_page, page | {"title": "", "staff_reply": "Yes, and it is."})
    assert conversation.messages.get(role=Message.Role.STAFF).content == "Yes, and it is."


def test_a_reply_refused_with_a_new_title_leaves_the_title_alone_in_the_history(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="needs_human", title="Order")
    MessageFactory.create(conversation=conversation, content="A person, please.")
    page = page_marks(staff_client.get(change_url(conversation)).content.decode())
    MessageFactory.create(conversation=conversation, content="It's order 1042.")

    staff_client.post(change_url(conversation), page | {"title": "Order 1042", "staff_reply": "Hi"})

    [line] = LogEntry.objects.filter(object_id=str(conversation.pk))
    assert line.get_change_message() == "Changed Title."


def test_staff_who_may_only_view_a_conversation_see_no_reply_box(client: Client) -> None:
    viewer = StaffFactory.create(is_superuser=False)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_conversation"))
    client.force_login(viewer)
    conversation = ConversationFactory.create(status="needs_human")

    page = client.get(change_url(conversation)).content.decode()

    assert "Staff reply" not in page
    assert "Reply key" not in page


def test_a_closed_conversation_s_reply_box_is_greyed_out_saying_why(staff_client: Client) -> None:
    closed, active = (ConversationFactory.create(status=s) for s in ("closed", "active"))

    pages = [staff_client.get(change_url(c)).content.decode() for c in (closed, active)]

    greyed = re.compile(
        r'<textarea name="staff_reply"[^>]* disabled placeholder="This conversation'
    )
    assert [bool(greyed.search(page)) for page in pages] == [True, False]


def test_staff_who_may_change_conversations_work_the_queue(client: Client) -> None:
    agent = StaffFactory.create(is_superuser=False)
    agent.user_permissions.set(
        Permission.objects.filter(codename__in=["view_conversation", "change_conversation"])
    )
    client.force_login(agent)
    waiting = ConversationFactory.create(status="needs_human", handoff_reason="Asked")

    queue = client.get("/admin/conversations/handoffqueueentry/")
    client.post(
        "/admin/conversations/handoffqueueentry/", action_data("hand_back_to_assistant", waiting)
    )

    assert queue.status_code == 200
    assert "Asked" in queue.content.decode()
    waiting.refresh_from_db()
    assert waiting.status == "active"


def test_staff_who_may_only_view_conversations_cannot_act_from_the_queue(client: Client) -> None:
    viewer = StaffFactory.create(is_superuser=False)
    viewer.user_permissions.set(Permission.objects.filter(codename="view_conversation"))
    client.force_login(viewer)
    waiting = ConversationFactory.create(status="needs_human")
    queue_page = f"/admin/conversations/handoffqueueentry/{waiting.pk}/change/"

    listing = client.get("/admin/conversations/handoffqueueentry/")
    client.post(
        "/admin/conversations/handoffqueueentry/", action_data("close_conversations", waiting)
    )
    reply = client.post(queue_page, {"title": "", "staff_reply": "Hi"})

    assert listing.status_code == 200
    assert reply.status_code == 403
    waiting.refresh_from_db()
    assert waiting.status == "needs_human"
    assert not waiting.messages.exists()


def test_a_conversation_links_each_customer_message_to_its_run_even_one_without_a_reply(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="needs_human")
    for _ in range(3):
        AgentRunFactory.create(
            conversation=conversation,
            status="cancelled",
            error="The conversation is with staff; the assistant stays silent.",
        )
    cancelled = AgentRun.objects.first()
    assert cancelled is not None
    staff_client.get(change_url(conversation))

    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(change_url(conversation)).content.decode()

    assert f'href="/admin/agents/agentrun/{cancelled.pk}/change/">run (cancelled)</a>' in page
    # The transcript shows a run's id and status: its trace is read on the run's own page.
    assert not [q["sql"] for q in queries if '"agents_agentrun"."tool_calls"' in q["sql"]]
    MessageFactory.create_batch(3, conversation=conversation)
    with CaptureQueriesContext(connection) as more_messages:
        staff_client.get(change_url(conversation))
    assert len(more_messages) == len(queries)


@pytest.mark.parametrize("shown_as", [str, lambda pk: pk.hex.upper()], ids=["canonical", "hex"])
def test_a_search_for_a_conversations_id_finds_it_by_its_key(
    staff_client: Client, shown_as
) -> None:
    wanted = ConversationFactory.create()
    MessageFactory.create(conversation=wanted)
    ConversationFactory.create()

    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(CHANGELIST, {"q": shown_as(wanted.pk)})

    assert list(page.context["cl"].result_list) == [wanted]
    assert not [q["sql"] for q in queries if "conversations_message" in q["sql"]]


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("heath", True),  # the start of the customer's username
        ("HEATHERFAN@EXAMPLE", True),  # of their email
        ("gift", True),  # a word of the title
        ("atherfan", False),  # not the start of the username
        ("candles", False),  # only in a message: messages are not searched
    ],
)
def test_a_text_search_reads_customers_and_titles_not_messages(
    staff_client: Client, term: str, found: bool
) -> None:
    conversation = ConversationFactory.create(
        owner__username="heatherfan", title="Gift order for Mum"
    )
    MessageFactory.create(conversation=conversation, content="Do you sell candles?")
    ConversationFactory.create()

    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(CHANGELIST, {"q": term})

    assert (conversation in page.context["cl"].result_list) is found
    assert not [q["sql"] for q in queries if "conversations_message" in q["sql"]]


def test_a_text_search_finds_customers_by_the_indexes_on_their_names_and_emails() -> None:
    model_admin = ConversationAdmin(Conversation, admin.site)
    request = RequestFactory().get(CHANGELIST, {"q": "heath"})

    found, _ = model_admin.get_search_results(request, Conversation.objects.all(), "heath")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a few test rows: a scan is cheaper
        plan = found.explain()

    assert "auth_user_username_upper_prefix" in plan
    assert "auth_user_email_upper_prefix" in plan


@pytest.mark.parametrize("changelist", [CHANGELIST, "/admin/conversations/handoffqueueentry/"])
@pytest.mark.parametrize("params", [{"status__exact": "\x00"}, {"title__regex": "("}])
def test_the_conversation_lists_refuse_a_regex_lookup_or_a_nul_in_their_url_with_400(
    staff_client: Client, changelist: str, params: dict[str, str]
) -> None:
    ConversationFactory.create(status="needs_human")

    response = staff_client.get(changelist, params)

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("codenames", "shown"),
    [
        (["view_conversation"], "<td>run (cancelled)</td>"),
        (["view_conversation", "view_agentrun"], '/change/">run (cancelled)</a></td>'),
    ],
    ids=["may not view runs", "may view runs"],
)
@pytest.mark.parametrize("changelist", [CHANGELIST, "/admin/conversations/handoffqueueentry/"])
def test_a_conversation_links_its_runs_only_for_staff_who_may_view_them(
    client: Client, codenames: list[str], shown: str, changelist: str
) -> None:
    staff = StaffFactory.create(is_superuser=False)
    staff.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(staff)
    conversation = ConversationFactory.create(status="needs_human")
    AgentRunFactory.create(conversation=conversation, status="cancelled")

    page = client.get(f"{changelist}{conversation.pk}/change/").content.decode()

    assert shown in page
    assert ("/admin/agents/agentrun/" in page) is ("view_agentrun" in codenames)


@pytest.mark.parametrize(
    "codenames",
    [
        ["view_replyfeedback", "view_agentrun"],
        ["view_replyfeedback", "view_conversation"],
        ["view_replyfeedback", "view_agentrun", "view_conversation"],
    ],
)
def test_feedback_and_run_pages_link_only_what_their_staff_may_open(
    client: Client, codenames: list[str]
) -> None:
    staff = StaffFactory.create(is_superuser=False)
    staff.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    client.force_login(staff)
    reply = _rated_reply("unhelpful", "Too slow.")
    pages = [
        client.get("/admin/conversations/replyfeedback/"),
        client.get(f"/admin/conversations/replyfeedback/{reply.feedback.pk}/change/"),
        client.get(f"/admin/agents/agentrun/{reply.run_id}/change/"),
    ]

    links = re.compile(r'href="/admin/[a-z_]+/(agentrun|conversation)/[0-9a-f-]+/change/"')
    linked = {model for page in pages for model in links.findall(page.content.decode())}
    may_open = {name for name in ("agentrun", "conversation") if f"view_{name}" in codenames}
    assert linked == may_open


def test_staff_see_a_customer_s_refresh_tokens_on_record_but_never_the_token(
    staff_client: Client,
) -> None:
    customer = ConversationFactory.create().owner
    token = RefreshToken.for_user(customer)
    outstanding = OutstandingToken._default_manager.get(jti=token["jti"])

    listing = staff_client.get("/admin/token_blacklist/outstandingtoken/").content.decode()
    page = staff_client.get(
        f"/admin/token_blacklist/outstandingtoken/{outstanding.pk}/change/"
    ).content.decode()

    assert token["jti"] in listing
    assert token["jti"] in page
    assert str(token) not in listing + page
    assert str(token).split(".")[2] not in listing + page


@pytest.mark.parametrize(
    ("changelist", "lookup"),
    [
        ("/admin/token_blacklist/outstandingtoken/", "token__startswith"),
        ("/admin/token_blacklist/outstandingtoken/", "token__gte"),
        ("/admin/token_blacklist/outstandingtoken/", "token"),
        ("/admin/token_blacklist/blacklistedtoken/", "token__token__startswith"),
    ],
)
def test_the_token_lists_cannot_be_filtered_by_the_token_so_as_to_tell_it_a_character_at_a_time(
    staff_client: Client, changelist: str, lookup: str
) -> None:
    token = str(RefreshToken.for_user(ConversationFactory.create().owner))

    response = staff_client.get(changelist, {lookup: token[:40]})

    assert response.status_code == 400


@pytest.mark.parametrize(
    "changelist",
    ["/admin/token_blacklist/outstandingtoken/", "/admin/token_blacklist/blacklistedtoken/"],
)
def test_the_token_lists_refuse_a_regex_lookup_in_their_url_with_400(
    staff_client: Client, changelist: str
) -> None:
    response = staff_client.get(changelist, {"id__regex": "("})

    assert response.status_code == 400


def _rated_reply(rating: str, comment: str = "") -> Message:
    run = AgentRunFactory.create()
    reply = MessageFactory.create(
        conversation=run.conversation,
        role=Message.Role.ASSISTANT,
        run=run,
        agent="support",
        content="From our help article <b>Returns</b>.",
    )
    ReplyFeedbackFactory.create(reply=reply, rating=rating, comment=comment)
    return reply


def test_staff_read_customers_feedback_newest_first_and_cannot_change_it(
    staff_client: Client,
) -> None:
    helpful = _rated_reply("helpful")
    unhelpful = _rated_reply("unhelpful", "It quoted the wrong article.")
    feedback_list = "/admin/conversations/replyfeedback/"

    listing = staff_client.get(feedback_list)
    only_unhelpful = staff_client.get(feedback_list, {"rating__exact": "unhelpful"})
    page = staff_client.get(f"{feedback_list}{unhelpful.pk}/change/").content.decode()
    changed = staff_client.post(
        f"{feedback_list}{unhelpful.pk}/change/", {"rating": "helpful", "comment": ""}
    )

    assert [f.pk for f in listing.context["cl"].result_list] == [unhelpful.pk, helpful.pk]
    assert [f.pk for f in only_unhelpful.context["cl"].result_list] == [unhelpful.pk]
    assert "It quoted the wrong article." in page
    assert f"/admin/agents/agentrun/{unhelpful.run_id}/change/" in page
    assert f"/admin/conversations/conversation/{unhelpful.conversation_id}/change/" in page
    assert "<b>Returns</b>" not in page
    assert changed.status_code == 403
    assert ReplyFeedback.objects.get(pk=unhelpful.pk).rating == "unhelpful"
    assert staff_client.get(f"{feedback_list}add/").status_code == 403


def test_the_feedback_list_shows_a_long_reply_cut_to_120_characters(
    staff_client: Client,
) -> None:
    reply = _rated_reply("unhelpful")
    Message.objects.filter(pk=reply.pk).update(content="Heather honey. " * 20)

    listing = staff_client.get("/admin/conversations/replyfeedback/")

    [feedback] = listing.context["cl"].result_list
    excerpt = listing.context["cl"].model_admin.reply_excerpt(feedback)
    assert len(excerpt) == 120
    assert excerpt == ("Heather honey. " * 20)[:119] + "…"


def test_a_conversation_s_transcript_shows_the_customer_s_feedback_on_each_reply(
    staff_client: Client,
) -> None:
    reply = _rated_reply("unhelpful", "Too slow.")

    page = staff_client.get(change_url(reply.conversation)).content.decode()

    assert "<th>customer's feedback</th>" in page
    assert "unhelpful: Too slow." in page


def test_a_conversation_s_transcript_names_the_staff_member_who_wrote_each_reply(
    staff_client: Client,
) -> None:
    conversation = ConversationFactory.create(status="needs_human")
    for name in ("sam", "alex"):
        author = StaffFactory.create(username=name)
        MessageFactory.create(conversation=conversation, role="staff", author=author)

    page = staff_client.get(change_url(conversation)).content.decode()

    assert re.findall(r"<td>staff</td><td>(\w*)</td>", page) == ["sam", "alex"]


@DELETE_WAYS
def test_deleting_a_customer_account_tells_the_followers_of_its_conversations_runs(
    staff_client: Client, django_capture_on_commit_callbacks, deleted: Callable
) -> None:
    conversation = ConversationFactory.create()
    kept = ConversationFactory.create()
    customer = conversation.owner
    queued = AgentRunFactory.create(conversation=conversation)

    with django_capture_on_commit_callbacks(execute=True):
        url, data = deleted("/admin/auth/user/", customer.pk)
        response = staff_client.post(url, data, follow=True)

    assert response.status_code == 200
    assert not User.objects.filter(pk=customer.pk).exists()
    assert list(Conversation.objects.all()) == [kept]
    assert [event.type for event in run_events_read(run_id=str(queued.pk))] == ["run.deleted"]


def _user_manager() -> Client:
    """Staff who may view and change accounts, and are not superusers."""
    manager = StaffFactory.create(is_superuser=False)
    manager.user_permissions.set(
        Permission.objects.filter(content_type__app_label="auth", codename__endswith="_user")
    )
    client = Client()
    client.force_login(manager)
    return client


def test_staff_who_may_change_accounts_cannot_make_themselves_superusers() -> None:
    client = _user_manager()
    manager = User.objects.get(is_staff=True, is_superuser=False)
    everything = list(Permission.objects.values_list("pk", flat=True))
    joined = timezone.localtime(manager.date_joined)

    response = client.post(
        f"/admin/auth/user/{manager.pk}/change/",
        {
            "username": manager.username,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "user_permissions": everything,
            "date_joined_0": joined.strftime("%Y-%m-%d"),
            "date_joined_1": joined.strftime("%H:%M:%S"),
        },
    )

    manager.refresh_from_db()
    assert response.status_code == 302  # saved: what it may change
    assert not manager.is_superuser
    assert manager.user_permissions.count() < len(everything)


@pytest.mark.parametrize("superuser", [True, False], ids=["a superuser's", "other staff's"])
def test_staff_who_may_change_accounts_cannot_change_or_delete_another_staff_account(
    superuser: bool,
) -> None:
    client = _user_manager()
    colleague = StaffFactory.create(is_superuser=superuser)
    password = {"password1": "a-new-pass-9173", "password2": "a-new-pass-9173"}

    pages = [
        client.get(f"/admin/auth/user/{colleague.pk}/change/"),
        client.post(f"/admin/auth/user/{colleague.pk}/password/", password),
        client.post(f"/admin/auth/user/{colleague.pk}/delete/", {"post": "yes"}),
    ]

    assert [page.status_code for page in pages] == [200, 403, 403]  # shown, not changed
    assert 'name="username"' not in pages[0].content.decode()  # read-only
    colleague.refresh_from_db()
    assert not colleague.check_password("a-new-pass-9173")


def test_staff_who_may_change_accounts_can_change_a_customer_s_password() -> None:
    client = _user_manager()
    customer = ConversationFactory.create().owner
    password = {"password1": "a-new-pass-9173", "password2": "a-new-pass-9173"}

    response = client.post(f"/admin/auth/user/{customer.pk}/password/", password)

    customer.refresh_from_db()
    assert response.status_code == 302
    assert customer.check_password("a-new-pass-9173")


@pytest.mark.parametrize(
    ("column", "index"), [(5, "conversation_handoff"), (6, "conversation_updated")]
)
@pytest.mark.parametrize("direction", ["", "-"])
def test_the_conversation_list_sorted_by_a_column_reads_it_from_an_index(
    staff_client: Client, column: int, index: str, direction: str
) -> None:
    # handoff_at and updated_at (list_display's 5th and 6th): sorted whole, every conversation
    # was read and sorted to show a page of 100.
    ConversationFactory.create_batch(3)
    with CaptureQueriesContext(connection) as queries:
        page = staff_client.get(CHANGELIST, {"o": f"{direction}{column}"})
    [listed] = [
        query["sql"]
        for query in queries
        if query["sql"].startswith('SELECT "conversations_conversation".')
    ]

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")  # an index, if one gives the order
        cursor.execute(f"EXPLAIN {listed}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert page.status_code == 200
    assert f"using {index}" in plan
    # Django adds the key as a tie-break: at most an incremental sort of rows read in order.
    assert not re.search(r"(^|->)\s*Sort\s+\(", plan, re.MULTILINE)
