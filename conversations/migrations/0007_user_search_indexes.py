from django.db import migrations

# The conversation admin finds customers by the start of their username or email, in any case
# (``istartswith``: ``UPPER(column::text) LIKE 'TERM%'``), which only an index on that
# expression serves: without one every search read the whole user table. Django's own
# ``auth_user`` indexes are on the columns as stored.
USER_SEARCH_INDEXES = {
    "auth_user_username_upper_prefix": "UPPER(username::text) text_pattern_ops",
    "auth_user_email_upper_prefix": "UPPER(email::text) text_pattern_ops",
}


class Migration(migrations.Migration):
    # Built without locking the users table against writes: guests keep signing up.
    atomic = False

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("conversations", "0006_conversation_sort_indexes"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON auth_user ({expression})",
            f"DROP INDEX CONCURRENTLY IF EXISTS {name}",
        )
        for name, expression in USER_SEARCH_INDEXES.items()
    ]
