# Hand-written: names and titles sort without their accents ("Écorce" sorted after "Zebra";
# catalog.models.name_order). The catalogue's order index is built again under a name of its own
# without locking the products, and only then takes the old one's place.

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models
from django.db.models.functions import Collate, Lower

WITHOUT_ACCENTS = r"regexp_replace(normalize(%(expressions)s, NFD), '[\u0300-\u036f]', '', 'g')"


def _order(field: str) -> Collate:
    folded = models.Func(models.F(field), template=WITHOUT_ACCENTS, output_field=models.TextField())
    return Collate(Lower(folded), "C")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("catalog", "0025_product_graphs_built_again"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="category",
            options={
                "ordering": [models.OrderBy(_order("name"))],
                "verbose_name_plural": "categories",
            },
        ),
        migrations.AlterModelOptions(
            name="knowledgearticle",
            options={"ordering": ["topic", models.OrderBy(_order("title")), "id"]},
        ),
        migrations.AlterModelOptions(
            name="product",
            options={"ordering": [models.OrderBy(_order("name")), models.OrderBy(models.F("id"))]},
        ),
        AddIndexConcurrently(
            model_name="product",
            index=models.Index(
                _order("name"),
                models.F("id"),
                include=("is_active",),
                name="product_name_order_new",
            ),
        ),
        RemoveIndexConcurrently(model_name="product", name="product_name_order"),
        migrations.RenameIndex(
            model_name="product", new_name="product_name_order", old_name="product_name_order_new"
        ),
    ]
