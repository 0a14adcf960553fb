import json
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework_simplejwt.tokens import AccessToken

from conversations.management.commands.chat import ApiClient, Command
from conversations.services import staff_message_post
from tests.agents.shop import small_shop_create
from tests.conversations.factories import ConversationFactory, MessageFactory, StaffFactory
from tests.support.loopback_http import HtmlHandler, serving


@pytest.mark.django_db(transaction=True)
def test_the_terminal_chat_talks_to_the_assistant_over_http(live_server, celery_worker) -> None:
    small_shop_create()
    out = StringIO()

    call_command(
        "chat", url=live_server.url, message=["How long does UK delivery take?"], stdout=out
    )

    assert "assistant [support]:" in out.getvalue()
    assert "2-4 working days" in out.getvalue()


def test_the_terminal_chat_says_when_the_server_is_unreachable() -> None:
    with pytest.raises(CommandError, match=r"cannot reach http://127\.0\.0\.1:1"):
        call_command("chat", url="http://127.0.0.1:1", message=["hi"])


class _NotTheApi(HtmlHandler):
    """Some other web server, answering in HTML: 200 under /ok/, 501 elsewhere."""

    def do_POST(self) -> None:
        if self.path.startswith("/json/"):
            self.answer_json({"hello": "world"})
        elif self.path.startswith("/garbled/"):
            self.wfile.write(b"HELLO THERE\r\n\r\n")
        else:
            status = 200 if self.path.startswith("/ok/") else 501
            self.answer_html(status, b"<html><body>Not an API</body></html>")

    def answer_json(self, answer: object) -> None:
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def not_the_api() -> Iterator[str]:
    with serving(_NotTheApi) as url:
        yield url


def test_the_terminal_chat_says_when_the_url_is_another_servers(not_the_api: str) -> None:
    with pytest.raises(CommandError, match=r"^POST /api/auth/guest/ answered 501: Not Impl"):
        call_command("chat", url=not_the_api, message=["hi"])
    with pytest.raises(CommandError, match=r"other than a JSON object: is http://.*/ok this"):
        call_command("chat", url=f"{not_the_api}/ok", message=["hi"])
    with pytest.raises(CommandError, match=r"/json answered without what this project's API"):
        call_command("chat", url=f"{not_the_api}/json", message=["hi"])
    with pytest.raises(CommandError, match=r"/garbled did not answer in HTTP \(BadStatusLine"):
        call_command("chat", url=f"{not_the_api}/garbled", message=["hi"])


@pytest.mark.parametrize(
    "url",
    ["notaurl", "ftp://example.com", "http://[::1", "http://127.0.0.1:abc", "http://a b"],
)
def test_the_terminal_chat_refuses_a_url_it_cannot_use(url: str) -> None:
    with pytest.raises(CommandError, match=r"^--url: "):
        call_command("chat", url=url, message=["hi"])


def test_the_terminal_chat_takes_several_messages_after_one_message_option() -> None:
    # Parsed as two messages: the command gets as far as the (unreachable) server.
    with pytest.raises(CommandError, match=r"cannot reach"):
        call_command("chat", "--url", "http://127.0.0.1:1", "--message", "hi", "bye")


def test_the_terminal_chats_help_tells_what_message_does() -> None:
    parser = Command().create_parser("manage.py", "chat")

    text = " ".join(parser.format_help().split())

    assert (
        "--message TEXT [TEXT ...] send each TEXT as a message in turn, printing each reply, then"
        " exit instead of prompting; each word is a message of its own unless quoted"
    ) in text


@pytest.mark.django_db(transaction=True)
def test_the_terminal_chat_shows_what_staff_wrote_across_pages(live_server) -> None:
    conversation = ConversationFactory.create()
    staff = StaffFactory.create()
    for number in range(25):  # more than a page
        MessageFactory.create(conversation=conversation, content=f"question {number}")
    staff_message_post(conversation=conversation, author=staff, content="Sam here, I can help.")
    api = ApiClient(live_server.url)
    api.token = str(AccessToken.for_user(conversation.owner))
    out = StringIO()

    last = Command(stdout=out)._show_staff_messages(
        api, f"/api/conversations/{conversation.id}/messages/", after=0
    )

    assert out.getvalue() == "staff: Sam here, I can help.\n"
    assert last == conversation.messages.latest("id").id


@pytest.mark.django_db(transaction=True)
def test_ctrl_c_in_the_terminal_chat_ends_it_in_one_line(
    live_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    def ctrl_c(prompt: str) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("builtins.input", ctrl_c)

    # KeyboardInterrupt caught too: escaping the command, it would stop the whole test run.
    with pytest.raises((CommandError, KeyboardInterrupt)) as stopped:
        call_command("chat", url=live_server.url, stdout=StringIO())

    assert isinstance(stopped.value, CommandError)
    assert (str(stopped.value), stopped.value.returncode) == ("interrupted", 130)
