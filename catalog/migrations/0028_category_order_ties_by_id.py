# Hand-written: categories whose names sort alike without their accents ("Manuka", "Mānuka")
# are listed by id, so pages neither repeat nor skip one (catalog.models.name_order).

from django.db import migrations, models
from django.db.models.functions import Collate, Lower

WITHOUT_ACCENTS = r"regexp_replace(normalize(%(expressions)s, NFD), '[\u0300-\u036f]', '', 'g')"


def _order(field: str) -> Collate:
    folded = models.Func(models.F(field), template=WITHOUT_ACCENTS, output_field=models.TextField())
    return Collate(Lower(folded), "C")


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0027_product_sku_upper_prefix"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="category",
            options={
                "ordering": [models.OrderBy(_order("name")), models.OrderBy(models.F("id"))],
                "verbose_name_plural": "categories",
            },
        ),
    ]
