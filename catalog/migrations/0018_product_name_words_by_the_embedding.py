from importlib import import_module

from django.db import migrations

# Migration 0017's triggers wrote a product's new name words inside the writer's transaction:
# two writers adding each other's new words could deadlock, and a save waited for a long import
# that had added the same word to commit. The words are now recorded as products are embedded
# (``catalog.services.product_name_words_record``), a short transaction per batch, in order.
DROP_TRIGGERS = """
DROP TRIGGER product_name_words_on_update ON catalog_product;
DROP TRIGGER product_name_words_on_insert ON catalog_product;
DROP FUNCTION catalog_product_name_words_record();
"""

# Undone, 0017's triggers come back (and its backfill runs again, adding nothing new).
RECREATE_TRIGGERS = import_module("catalog.migrations.0017_product_name_words").RECORD_NAME_WORDS


class Migration(migrations.Migration):
    dependencies = [("catalog", "0017_product_name_words")]

    operations = [migrations.RunSQL(DROP_TRIGGERS, RECREATE_TRIGGERS)]
