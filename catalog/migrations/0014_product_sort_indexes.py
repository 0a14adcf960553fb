# The catalogue's name order is lower-cased under the "C" collation (whatever the database's),
# and ?ordering=price reads an index instead of sorting every active product.

from django.db import migrations, models
from django.db.models.functions import Collate, Lower


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0013_product_currency_in_circulation"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="product",
            options={
                "ordering": [
                    models.OrderBy(Collate(Lower("name"), "C")),
                    models.OrderBy(models.F("id")),
                ]
            },
        ),
        migrations.RemoveIndex(
            model_name="product",
            name="product_name_id",
        ),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(
                Collate(Lower("name"), "C"),
                models.F("id"),
                include=("is_active",),
                name="product_name_order",
            ),
        ),
        migrations.AddIndex(
            model_name="product",
            index=models.Index(fields=["price", "id"], name="product_price_id"),
        ),
    ]
