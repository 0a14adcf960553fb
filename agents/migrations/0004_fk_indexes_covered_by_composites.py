# The foreign key's own index repeats the leading column of run_conversation_order. Dropped
# concurrently, without touching the constraint (Django's AlterField would drop and re-add it,
# checking every row while writes wait).

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('agents', '0003_cost_and_handoff_queue'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='agentrun',
                    name='conversation',
                    field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='runs', to='conversations.conversation'),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX CONCURRENTLY IF EXISTS "agents_agentrun_conversation_id_c68434b6"',
                    reverse_sql='CREATE INDEX CONCURRENTLY IF NOT EXISTS "agents_agentrun_conversation_id_c68434b6" ON "agents_agentrun" ("conversation_id")',
                ),
            ],
        ),
    ]
