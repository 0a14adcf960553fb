# Hand-written: a category's name is stored with its runs of spaces one space
# (Category.name_as_written), as imports look it up: one written before as "Raw  Honey"
# exported and imported back found no category of that name. A name that would then be another
# category's in any case is left as it is.

from django.db import migrations
from django.db.models import Value
from django.db.models.functions import Lower


def squeeze_names(apps, schema_editor):
    Category = apps.get_model("catalog", "Category")
    for category in Category.objects.all():
        squeezed = " ".join(category.name.split())
        if squeezed == category.name:
            continue
        others = Category.objects.exclude(pk=category.pk).alias(lowered=Lower("name"))
        if others.filter(lowered=Lower(Value(squeezed))).exists():
            continue
        category.name = squeezed
        category.save(update_fields=["name"])


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0028_category_order_ties_by_id"),
    ]

    operations = [
        migrations.RunPython(squeeze_names, migrations.RunPython.noop),
    ]
