import json
import os
import subprocess
import sys

from bench import PROJECT_DIR, THROTTLES_LIFTED

# What the chat benchmarks' customers, all at 127.0.0.1, do: make guests, post messages, read.
SCOPES_THEIR_CUSTOMERS_MEET = (
    "guest_create",
    "message_post",
    "message_daily",
    "message_daily_address",
    "read",
)
SETTINGS_RATES = (
    "import json, django; django.setup(); from django.conf import settings;"
    " print(json.dumps(settings.THROTTLE_RATES))"
)


def test_the_chat_benchmarks_lift_every_rate_their_customers_at_one_address_meet() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", SETTINGS_RATES],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "beemanhoney.settings", **THROTTLES_LIFTED},
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    rates = json.loads(loaded.stdout.splitlines()[-1])

    for scope in SCOPES_THEIR_CUSTOMERS_MEET:
        allowed = rates[scope].partition("/")[0]
        assert int(allowed) >= 1_000_000, (scope, rates[scope])
