"""Settings the environment got wrong stop a server's start with their reason in one line, as
``manage.py`` does (which catches them around its command)."""

import os
import sys


def settings_loaded_or_exit() -> None:
    """Load the settings now, or exit with one line: read lazily, they failed the Celery worker's
    start with a 91-line traceback, and each gunicorn worker's boot with two tracebacks."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "beemanhoney.settings")
    try:
        settings.INSTALLED_APPS  # noqa: B018 - reading it loads them
    except ImproperlyConfigured as error:
        sys.exit(f"ImproperlyConfigured: {error}")
