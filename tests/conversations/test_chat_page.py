"""The chat page in headless Chromium: stream a reply, show product cards, survive a reload."""

from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from agents.models import AgentRun
from agents.run_stream import run_event_publish
from agents.services import agent_run_dispatch_next
from conversations.models import Conversation, ReplyFeedback
from conversations.services import conversations_close, staff_message_post
from tests.agents.factories import AgentRunFactory
from tests.agents.shop import small_shop_create
from tests.conversations.factories import MessageFactory, StaffFactory
from tests.support.browser import needs_chromium
from tests.support.celery_worker import PROJECT_DIR

SCREENSHOTS = PROJECT_DIR / "docs" / "screenshots"

pytestmark = [
    pytest.mark.django_db(transaction=True),
    needs_chromium,
]


def _shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(Path(SCREENSHOTS / name)), full_page=True)


@pytest.fixture
def shop() -> None:
    small_shop_create()


def _ask_for_a_sore_throat_honey(page, live_server):
    """The page opened, the question asked, and its reply once it shows a product card."""
    page.goto(f"{live_server.url}/chat/")
    page.get_by_label("Your message").fill("Have you got something for a sore throat?")
    page.keyboard.press("Enter")
    reply = page.locator(".msg--assistant").last
    reply.locator(".card").first.wait_for(timeout=60_000)
    return reply


def test_a_customer_chats_sees_the_streamed_reply_and_cards_and_keeps_it_on_reload(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page

    reply = _ask_for_a_sore_throat_honey(page, live_server)

    assert "Manuka Honey UMF 15+ 250g" in reply.inner_text()
    card = reply.locator(".card", has_text="Manuka Honey UMF 15+ 250g")
    assert "£44.95" in card.inner_text()
    assert "In stock" in card.inner_text()
    assert page.evaluate("document.activeElement.id") == "chat-input"
    _shot(page, "chat-desktop.png")

    page.reload()
    page.locator(".msg--assistant .card").first.wait_for(timeout=20_000)

    assert page.locator(".msg--user").first.inner_text() == (
        "Have you got something for a sore throat?"
    )
    assert page.locator(".msg--assistant").count() == 1
    page.set_viewport_size({"width": 390, "height": 844})
    _shot(page, "chat-phone.png")


def test_a_customer_rates_a_reply_changes_their_mind_and_sees_it_after_a_reload(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page
    reply = _ask_for_a_sore_throat_honey(page, live_server)
    helpful = reply.get_by_role("button", name="Helpful", exact=True)
    unhelpful = reply.get_by_role("button", name="Not helpful")

    page.evaluate("document.getElementById('chat-status').textContent = 'A notice'")
    unhelpful.click()
    reply.locator(".feedback__note", has_text="Thanks for telling us.").wait_for()
    status_after_rating = page.locator("#chat-status").inner_text()
    page.evaluate("document.getElementById('chat-status').textContent = ''")  # for the shot
    rated_first = list(ReplyFeedback.objects.values_list("rating", flat=True))
    reply.get_by_label("What was wrong with this reply? (optional)").fill("I wanted a spray.")
    _shot(page, "chat-feedback.png")
    reply.get_by_role("button", name="Send").click()
    page.locator(".feedback__why[hidden]").wait_for(state="attached")
    commented = list(ReplyFeedback.objects.values_list("rating", "comment"))
    helpful.click()
    page.locator('.feedback [data-rating="helpful"][aria-pressed="true"]').wait_for()
    page.reload()
    shown = page.locator(".msg--assistant").last.get_by_role("button", name="Helpful", exact=True)
    page.locator('.feedback [data-rating="helpful"][aria-pressed="true"]').wait_for()
    shown.click()
    page.locator('.feedback [data-rating="helpful"][aria-pressed="false"]').wait_for()

    assert rated_first == ["unhelpful"]
    assert status_after_rating == "A notice"  # the page's own notice is left for the customer
    assert commented == [("unhelpful", "I wanted a spray.")]
    assert not ReplyFeedback.objects.exists()
    assert page.locator('.feedback [aria-pressed="true"]').count() == 0


def test_a_customer_whose_other_tabs_hold_every_stream_still_gets_the_reply(
    live_server, celery_worker, shop, browser_page, settings
) -> None:
    # Every stream is refused (429), as when the account's other tabs hold them all: the page
    # said "You're sending messages quickly" and never showed the reply.
    settings.SSE_MAX_STREAMS_PER_USER = 0
    page = browser_page

    reply = _ask_for_a_sore_throat_honey(page, live_server)

    assert "Manuka Honey UMF 15+ 250g" in reply.inner_text()
    assert page.locator(".msg--typing").count() == 0
    assert "quickly" not in page.locator("#chat-status").inner_text()


def test_a_customer_whose_event_streams_are_refused_gets_the_reply_and_sends_once(
    live_server, celery_worker, shop, browser_page
) -> None:
    # Every stream answered 503, as when the event store (Redis) is down: the page gave up,
    # said it could not reach the shop and put the message back to send again, a second
    # message and a second reply.
    page = browser_page
    page.route(
        "**/api/runs/*/events/",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"detail": "Try again shortly.", "code": "events_unavailable"}',
        ),
    )
    polled: list[str] = []

    def first_two_polls_unreachable(route: Any) -> None:
        polled.append(route.request.url)
        route.abort() if len(polled) <= 2 else route.continue_()

    page.route("**/api/runs/*/", first_two_polls_unreachable)

    reply = _ask_for_a_sore_throat_honey(page, live_server)

    assert "Manuka Honey UMF 15+ 250g" in reply.inner_text()
    assert len(polled) > 2
    assert page.get_by_label("Your message").input_value() == ""
    assert page.locator("#chat-status").inner_text() == ""
    assert Conversation.objects.get().messages.filter(role="user").count() == 1


def _a_reply_being_written(page, live_server) -> tuple[Conversation, AgentRun]:
    """The page open on a conversation whose question's run is queued but not yet sent to the
    workers: the page shows its reply as still being written."""
    page.goto(f"{live_server.url}/chat/")
    conversation_id = page.wait_for_function("localStorage.getItem('bh.conversation')").json_value()
    conversation = Conversation.objects.get(pk=conversation_id)
    asked = MessageFactory.create(
        conversation=conversation,
        author=conversation.owner,
        content="How long does UK delivery take?",
    )
    run = AgentRunFactory.create(conversation=conversation, user_message=asked)
    page.reload()
    page.locator(".msg--typing").wait_for(timeout=20_000)
    return conversation, run


def test_a_reply_still_being_written_when_the_page_reloads_appears_without_another_reload(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page
    conversation, _ = _a_reply_being_written(page, live_server)

    agent_run_dispatch_next(conversation_id=conversation.pk)

    page.locator(".msg--assistant", has_text="working days").wait_for(timeout=60_000)
    assert page.locator(".msg--user").all_inner_texts() == ["How long does UK delivery take?"]
    assert page.locator(".msg--assistant").count() == 1


def test_a_reply_started_over_on_another_delivery_shows_its_text_once(
    live_server, browser_page
) -> None:
    page = browser_page
    _, run = _a_reply_being_written(page, live_server)

    # Its first worker was lost mid-reply; the broker delivered the run again.
    events: list[tuple[str, dict[str, Any]]] = [
        ("run.started", {"delivery": 1}),
        ("text.delta", {"text": "UK deliv"}),
        ("run.started", {"delivery": 2}),
        ("text.delta", {"text": "UK delivery takes 2-3 working days"}),
    ]
    for type, data in events:
        run_event_publish(run_id=str(run.pk), type=type, data=data)

    reply = page.locator(".msg--assistant", has_text="UK delivery takes")
    reply.wait_for(timeout=20_000)
    assert reply.inner_text() == "UK delivery takes 2-3 working days"


def test_an_expired_session_is_renewed_again_and_again_keeping_the_conversation(
    live_server, browser_page
) -> None:
    # Refresh tokens work once: the page kept the first one, and its second refresh was
    # refused, losing the conversation for a new guest's.
    page = browser_page
    page.goto(f"{live_server.url}/chat/")
    conversation_id = page.wait_for_function("localStorage.getItem('bh.conversation')").json_value()
    refreshes = []

    for _ in range(2):
        refreshes.append(page.evaluate("localStorage.getItem('bh.refresh')"))
        page.evaluate("localStorage.setItem('bh.access', 'expired')")
        with page.expect_response("**/api/auth/token/refresh/") as refreshed:
            page.reload()
        assert refreshed.value.status == 200
        page.wait_for_function("localStorage.getItem('bh.access') !== 'expired'")
        page.wait_for_load_state("networkidle")

    assert page.evaluate("localStorage.getItem('bh.conversation')") == conversation_id
    assert len({*refreshes, page.evaluate("localStorage.getItem('bh.refresh')")}) == 3


def test_the_page_says_so_when_the_server_is_unreachable(live_server, browser_page) -> None:
    page = browser_page
    page.goto(f"{live_server.url}/chat/")
    page.route("**/api/**", lambda route: route.abort())

    page.evaluate("localStorage.clear()")
    page.get_by_label("Your message").fill("Hello?")
    page.get_by_role("button", name="Send").click()

    status = page.locator("#chat-status")
    status.filter(has_text="can't reach the shop").wait_for(timeout=10_000)
    assert page.get_by_label("Your message").input_value() == "Hello?"


def test_a_long_unbroken_word_wraps_inside_its_bubble_and_arabic_reads_right_to_left(
    live_server, browser_page
) -> None:
    page = browser_page
    page.goto(f"{live_server.url}/chat/")
    page.set_viewport_size({"width": 390, "height": 844})
    link = "https://example.com/" + "a" * 300

    for words in (link, "هل لديكم عسل المانوكا؟"):
        page.get_by_label("Your message").fill(words)
        page.keyboard.press("Enter")
        page.locator(".msg--user", has_text=words).wait_for(timeout=10_000)

    sent = page.locator(".msg--user .msg__text")
    overflow = sent.first.evaluate("text => text.scrollWidth - text.clientWidth")
    assert overflow <= 0
    assert sent.last.evaluate("text => getComputedStyle(text).direction") == "rtl"
    assert sent.first.evaluate("text => getComputedStyle(text).direction") == "ltr"


def test_a_customer_handed_to_staff_sees_the_staff_reply_without_reloading(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page
    page.goto(f"{live_server.url}/chat/")
    page.get_by_label("Your message").fill("Can I talk to a person please?")
    page.keyboard.press("Enter")
    page.locator("#chat-status", has_text="will reply here").wait_for(timeout=60_000)
    conversation = Conversation.objects.get()
    assert conversation.status == Conversation.Status.NEEDS_HUMAN

    staff_message_post(
        conversation=conversation, author=StaffFactory.create(), content="Hi, Sam here from Beeman."
    )

    page.locator(".msg--staff", has_text="Sam here").wait_for(timeout=20_000)
    assert page.locator(".msg--staff").count() == 1


def _a_chat_staff_closed(page, live_server) -> Conversation:
    """The page's conversation, answered once and then closed by staff."""
    page.goto(f"{live_server.url}/chat/")
    page.get_by_label("Your message").fill("How long does UK delivery take?")
    page.keyboard.press("Enter")
    page.locator(".msg--assistant", has_text="working days").wait_for(timeout=60_000)
    conversation = Conversation.objects.get()
    conversations_close(conversation_ids=[conversation.id])
    return conversation


def _customer_messages(conversation: Conversation) -> list[str]:
    return list(conversation.messages.filter(role="user").values_list("content", flat=True))


def _the_one_carried_on_in(page, left: Conversation, message: str) -> None:
    """Assert the customer carried on after leaving ``left`` in one new conversation: theirs,
    holding ``message`` alone, and the one the page shows."""
    carried_on = Conversation.objects.exclude(pk=left.pk).get()
    assert carried_on.owner_id == left.owner_id
    assert _customer_messages(carried_on) == [message]
    assert page.locator(".msg--user").all_inner_texts() == [message]


def test_a_customer_whose_conversation_staff_closed_carries_on_in_a_new_one(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page
    first = _a_chat_staff_closed(page, live_server)

    page.get_by_label("Your message").fill("And do you ship to Ireland?")
    page.keyboard.press("Enter")
    page.locator("#chat-status", has_text="closed that conversation").wait_for(timeout=20_000)
    page.locator(".msg--assistant").first.wait_for(timeout=60_000)
    # The notice stays for the customer to read; the reply's stream does not clear it.
    assert "closed that conversation" in page.locator("#chat-status").inner_text()
    page.reload()
    page.locator(".msg--user").first.wait_for(timeout=20_000)

    _the_one_carried_on_in(page, first, "And do you ship to Ireland?")


def test_a_page_opened_on_a_closed_conversation_starts_a_new_one(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page
    first = _a_chat_staff_closed(page, live_server)

    page.reload()
    page.get_by_label("Your message").fill("Hello again")
    page.keyboard.press("Enter")
    page.locator(".msg--user", has_text="Hello again").wait_for(timeout=20_000)

    _the_one_carried_on_in(page, first, "Hello again")


def test_new_chat_closes_the_conversation_and_starts_an_empty_one(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page
    _ask_for_a_sore_throat_honey(page, live_server)
    first = Conversation.objects.get()

    page.get_by_role("button", name="New chat").click()
    page.wait_for_function("document.querySelectorAll('#chat-log li').length === 0")
    page.wait_for_function(f"localStorage.getItem('bh.conversation') !== '{first.pk}'")
    page.get_by_label("Your message").fill("How long does delivery take?")
    page.keyboard.press("Enter")
    page.locator(".msg--assistant").first.wait_for(timeout=60_000)
    page.reload()
    page.locator(".msg--assistant").first.wait_for(timeout=20_000)

    first.refresh_from_db()
    assert first.status == "closed"
    _the_one_carried_on_in(page, first, "How long does delivery take?")
    assert page.evaluate("document.activeElement.id") == "chat-input"


def test_new_chat_while_a_reply_is_being_written_cancels_it_and_says_nothing_of_it(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page
    first, run = _a_reply_being_written(page, live_server)

    page.get_by_role("button", name="New chat").click()
    page.wait_for_function(f"localStorage.getItem('bh.conversation') !== '{first.pk}'")
    page.locator(".msg--typing").wait_for(state="detached", timeout=20_000)
    page.get_by_label("Your message").fill("Do you sell beeswax candles?")
    page.keyboard.press("Enter")
    page.locator(".msg--assistant").first.wait_for(timeout=60_000)

    run.refresh_from_db()
    assert run.status == "cancelled"
    assert not first.messages.filter(role="assistant").exists()
    assert page.locator("#chat-status").inner_text() == ""
    assert page.locator(".msg--user").all_inner_texts() == ["Do you sell beeswax candles?"]


def test_delete_chat_asks_first_then_deletes_the_conversation_and_starts_an_empty_one(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page
    _ask_for_a_sore_throat_honey(page, live_server)
    first = Conversation.objects.get()
    delete = page.get_by_role("button", name="Delete chat")

    asked = []

    def dismiss(dialog) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    deletes: list[str] = []

    def record(request) -> None:
        if request.method == "DELETE":
            deletes.append(request.url)

    page.on("request", record)
    page.once("dialog", dismiss)
    delete.click()
    page.wait_for_load_state("networkidle")  # a DELETE sent on a dismissal would be out by now
    deletes_when_dismissed = list(deletes)
    kept_when_dismissed = Conversation.objects.filter(pk=first.pk).exists()
    shown_when_dismissed = page.locator(".msg--assistant").count()
    page.once("dialog", lambda dialog: dialog.accept())
    delete.click()
    page.locator("#chat-status", has_text="Conversation deleted.").wait_for(timeout=20_000)
    page.reload()
    page.get_by_label("Your message").fill("Do you sell beeswax candles?")
    page.keyboard.press("Enter")
    page.locator(".msg--assistant").first.wait_for(timeout=60_000)

    assert asked == ["Delete this conversation and all its messages? This can't be undone."]
    assert deletes_when_dismissed == []
    assert kept_when_dismissed
    assert shown_when_dismissed == 1
    assert len(deletes) == 1
    assert not Conversation.objects.filter(pk=first.pk).exists()
    _the_one_carried_on_in(page, first, "Do you sell beeswax candles?")


def test_delete_chat_while_a_worker_writes_the_reply_is_refused_and_says_why(
    live_server, celery_worker, shop, browser_page
) -> None:
    page = browser_page
    conversation, run = _a_reply_being_written(page, live_server)
    AgentRun.objects.filter(pk=run.pk).update(status="running", started_at=timezone.now())

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete chat").click()
    page.locator("#chat-status", has_text="being written").wait_for(timeout=20_000)

    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert page.evaluate("localStorage.getItem('bh.conversation')") == str(conversation.pk)
    assert page.locator(".msg--user").all_inner_texts() == ["How long does UK delivery take?"]


def test_a_reply_being_written_when_staff_delete_the_conversation_stops_and_a_message_starts_anew(
    live_server, celery_worker, shop, browser_page, settings
) -> None:
    settings.SSE_HEARTBEAT_SECONDS = 1  # the admin's delete publishes nothing: a heartbeat finds it
    page = browser_page
    conversation, _ = _a_reply_being_written(page, live_server)

    conversation.delete()  # as staff do in the admin
    page.locator(".msg--typing").wait_for(state="detached", timeout=20_000)
    page.get_by_label("Your message").fill("Do you ship to Ireland?")
    page.keyboard.press("Enter")
    page.locator("#chat-status", has_text="was deleted").wait_for(timeout=20_000)
    page.locator(".msg--assistant").first.wait_for(timeout=60_000)

    _the_one_carried_on_in(page, conversation, "Do you ship to Ireland?")
