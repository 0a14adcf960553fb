# Hand-written: PostgreSQL cannot change a generated column's expression in place, so each
# search_vector is dropped and added again (a rewrite of the table; 0023 dropped the products'
# graphs first so that it does not rebuild them). The keyword search then reads "Mānuka" and
# "Crème" as "manuka" and "creme" (catalog.models.WITHOUT_ACCENTS_SQL). The new columns are
# analysed at once: the keyword rank reads which words are common from their statistics.

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.contrib.postgres.search import SearchVector
from django.db import migrations, models
from django.db.models.functions import Coalesce

WITHOUT_ACCENTS = r"regexp_replace(normalize(%(expressions)s, NFD), '[\u0300-\u036f]', '', 'g')"


def _folded(expression) -> models.Func:
    return models.Func(expression, template=WITHOUT_ACCENTS, output_field=models.TextField())


def _vector(expression, weight: str) -> SearchVector:
    return SearchVector(_folded(expression), config="english", weight=weight)


def _search_vector(expression) -> models.GeneratedField:
    return models.GeneratedField(
        db_persist=True,
        expression=expression,
        output_field=django.contrib.postgres.search.SearchVectorField(),
    )


def _replaced(model_name: str, index_name: str, expression) -> list:
    return [
        migrations.RemoveIndex(model_name=model_name, name=index_name),
        migrations.RemoveField(model_name=model_name, name="search_vector"),
        migrations.AddField(
            model_name=model_name, name="search_vector", field=_search_vector(expression)
        ),
        migrations.AddIndex(
            model_name=model_name,
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["search_vector"], name=index_name
            ),
        ),
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0023_product_graphs_dropped_for_a_rewrite"),
    ]

    operations = [
        *_replaced(
            "product",
            "product_search_vector_gin",
            _vector(models.F("name"), "A")
            + _vector(Coalesce("floral_source", models.Value("")), "B")
            + _vector(Coalesce("origin", models.Value("")), "C")
            + _vector(models.F("description"), "C"),
        ),
        *_replaced(
            "knowledgearticle",
            "article_search_vector_gin",
            _vector(models.F("title"), "A") + _vector(models.F("body"), "B"),
        ),
        migrations.RunSQL(
            "ANALYZE catalog_product (search_vector); "
            "ANALYZE catalog_knowledgearticle (search_vector)",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
