"""Make a fresh development stack usable: a staff login and the demo shop (``make run``)."""

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandError

from beemanhoney.embedded import VAR_DIR

ADMIN_USERNAME = "admin"


def _password_file() -> Path:
    return Path(VAR_DIR) / "admin-password.txt"


def _known_passwords() -> Iterator[tuple[str, str]]:
    """Each password the admin may have been given, with where it can be read, first the one a
    new admin gets; none is made here."""
    if from_env := os.environ.get("DJANGO_SUPERUSER_PASSWORD"):
        yield from_env, "DJANGO_SUPERUSER_PASSWORD"
    # One left empty (a crash between its creation and its writing) is no password.
    if _password_file().exists() and (saved := _password_file().read_text().strip()):
        yield saved, str(_password_file())


def _admin_password() -> tuple[str, str]:
    """The password to give a new admin, and where it can be read again: the first known one,
    else a new one in the password file."""
    if known := next(_known_passwords(), None):
        return known
    password_file = _password_file()
    password_file.parent.mkdir(parents=True, exist_ok=True)
    password_file.touch(mode=0o600)
    password_file.write_text(secrets.token_urlsafe(12))
    return password_file.read_text().strip(), str(password_file)


class Command(BaseCommand):
    help = "Create the development admin login if missing and load demo data into an empty shop."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(is_superuser=True).exists():
            if user_model.objects.filter(username=ADMIN_USERNAME).exists():
                raise CommandError(
                    f"there is no superuser, and the user {ADMIN_USERNAME!r} is not one: make"
                    f" one (`python manage.py createsuperuser`), or give {ADMIN_USERNAME!r}"
                    " another name so that this makes it"
                )
            password, _ = _admin_password()
            user_model.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", password)
        admin = user_model.objects.filter(username=ADMIN_USERNAME, is_superuser=True).first()
        if admin is None:
            self.stdout.write("Admin login: use your existing superuser")
        elif known := next((k for k in _known_passwords() if admin.check_password(k[0])), None):
            # Only a password that logs in is shown: the admin may have been made with another.
            self.stdout.write(f"Admin login: {ADMIN_USERNAME} / {known[0]}  (from {known[1]})")
        else:
            self.stdout.write(
                f"Admin login: {ADMIN_USERNAME}, with the password it was given"
                f" (`python manage.py changepassword {ADMIN_USERNAME}` sets a new one)"
            )
        if "load_demo_data" in get_commands():
            call_command("load_demo_data", if_empty=True, stdout=self.stdout)
