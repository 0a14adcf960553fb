from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    # Built without locking the conversations table against writes: messages keep arriving.
    atomic = False

    dependencies = [
        ("conversations", "0005_reply_feedback"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="conversation",
            index=models.Index(fields=["updated_at"], name="conversation_updated"),
        ),
        AddIndexConcurrently(
            model_name="conversation",
            index=models.Index(fields=["handoff_at"], name="conversation_handoff"),
        ),
    ]
