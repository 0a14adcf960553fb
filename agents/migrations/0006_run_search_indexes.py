from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking the runs table against writes: turns keep storing meanwhile.
    atomic = False

    dependencies = [
        ("agents", "0005_run_request_id"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="agentrun",
            index=models.Index(fields=["request_id"], name="run_request_id"),
        ),
        AddIndexConcurrently(
            model_name="agentrun",
            index=models.Index(fields=["celery_task_id"], name="run_celery_task_id"),
        ),
    ]
