import unicodedata

from django.db import migrations

# Tags are stored in Unicode's composed form (NFC) since this migration: "mānuka" typed with a
# combining macron (as macOS writes it) was a tag of its own, which a filter by "mānuka" missed.
NOT_COMPOSED = """
    SELECT id FROM catalog_product WHERE NOT (array_to_string(tags, ' ') IS NFC NORMALIZED)
"""


def compose_tags(apps, schema_editor):
    product = apps.get_model("catalog", "Product")
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(NOT_COMPOSED)
        ids = [pk for (pk,) in cursor.fetchall()]
    for row in product.objects.filter(pk__in=ids).only("pk", "tags"):
        tags = list(dict.fromkeys(unicodedata.normalize("NFC", tag) for tag in row.tags))
        product.objects.filter(pk=row.pk).update(tags=tags)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0021_product_graphs_over_the_stored_halfvec")]

    operations = [migrations.RunPython(compose_tags, migrations.RunPython.noop, elidable=True)]
