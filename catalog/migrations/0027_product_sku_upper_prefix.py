# The admin's product search finds a sku by its start in any case, through an index of its own
# (built without locking the products against writes).

from django.contrib.postgres.indexes import OpClass
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models
from django.db.models.functions import Upper


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("catalog", "0026_name_order_without_accents"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(
                OpClass(Upper("sku"), name="text_pattern_ops"), name="product_sku_upper_prefix"
            ),
        ),
    ]
