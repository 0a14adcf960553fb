from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking the runs table against writes: turns keep storing meanwhile.
    atomic = False

    dependencies = [
        ("agents", "0006_run_search_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="agentrun",
            index=models.Index(
                condition=models.Q(
                    ("finished_at__isnull", True),
                    ("started_at__isnull", False),
                    ("status", "cancelled"),
                ),
                fields=["updated_at"],
                name="run_cancelled_mid_turn",
            ),
        ),
    ]
