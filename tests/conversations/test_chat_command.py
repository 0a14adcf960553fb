from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.agents.shop import small_shop_create


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
