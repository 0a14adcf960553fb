# Each foreign key's own index repeats the leading column of a composite index
# (conversation_owner_recent, message_conversation_order). Dropped concurrently, without touching
# the constraints (Django's AlterField would drop and re-add them, checking every row while
# writes wait).

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('conversations', '0003_message_cards'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='conversation',
                    name='owner',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='conversations', to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(
                    model_name='message',
                    name='conversation',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='messages', to='conversations.conversation'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX CONCURRENTLY IF EXISTS "conversations_conversation_owner_id_67c5670c"',
                    reverse_sql='CREATE INDEX CONCURRENTLY IF NOT EXISTS "conversations_conversation_owner_id_67c5670c" ON "conversations_conversation" ("owner_id")',
                ),
                migrations.RunSQL(
                    'DROP INDEX CONCURRENTLY IF EXISTS "conversations_message_conversation_id_f1a2d5e9"',
                    reverse_sql='CREATE INDEX CONCURRENTLY IF NOT EXISTS "conversations_message_conversation_id_f1a2d5e9" ON "conversations_message" ("conversation_id")',
                ),
            ],
        ),
    ]
