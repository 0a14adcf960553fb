# The admin's runs list filtered by status or route, and its search of the runs' errors, read
# indexes instead of every run.

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking the runs table against writes: turns keep storing meanwhile.
    atomic = False

    dependencies = [
        ("agents", "0009_run_silence"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="agentrun",
            index=models.Index(
                condition=models.Q(("error", ""), _negated=True),
                fields=["created_at"],
                name="run_with_error",
            ),
        ),
        AddIndexConcurrently(
            model_name="agentrun",
            index=models.Index(
                condition=models.Q(("status__in", ["failed", "cancelled"])),
                fields=["status", "created_at"],
                name="run_failed_or_cancelled",
            ),
        ),
        AddIndexConcurrently(
            model_name="agentrun",
            index=models.Index(fields=["route", "created_at"], name="run_route_recent"),
        ),
    ]
