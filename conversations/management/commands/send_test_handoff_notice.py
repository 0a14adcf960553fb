from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from beemanhoney.common.management import INTERRUPTED_EXIT_CODE
from conversations.handoff_notices import handoff_notice_test_send

CONSOLE_EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"


class Command(BaseCommand):
    help = (
        "Send a test notice to the staff channels configured (HANDOFF_NOTICE_EMAILS,"
        " HANDOFF_NOTICE_WEBHOOK_URL), to check them before a customer needs a person."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            sent, failed = handoff_notice_test_send()
        except KeyboardInterrupt:
            raise CommandError(
                "interrupted; the test notice may not have gone out on every channel",
                returncode=INTERRUPTED_EXIT_CODE,
            ) from None
        except ValueError as error:
            raise CommandError(str(error)) from error
        if "email" in sent and settings.EMAIL_BACKEND == CONSOLE_EMAIL_BACKEND:
            # Written to standard output, above: no one was mailed.
            sent[sent.index("email")] = "email, printed above rather than mailed (no EMAIL_HOST)"
        if sent:
            self.stdout.write(f"Test notice sent by {' and '.join(sent)}.")
        if failed:
            raise CommandError(
                "; ".join(_failure(channel, error) for channel, error in failed.items())
            )


def _failure(channel: str, error: Exception) -> str:
    if channel == "email":
        return f"email via {settings.EMAIL_HOST or 'the console'}: {error}"
    return f"{channel}: {error}"
