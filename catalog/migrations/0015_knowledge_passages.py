# Articles' passages, embedded with them: the knowledge search ranks an article by its nearest
# passage. Embedded articles are marked as changed since, so that the next backfill (and the
# worker `make run` starts) embeds them again, passages and all.

import django.db.models.deletion
import pgvector.django.halfvec
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0014_product_sort_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="KnowledgePassage",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("position", models.PositiveSmallIntegerField()),
                ("text", models.TextField()),
                ("embedding", pgvector.django.halfvec.HalfVectorField(dimensions=384)),
                (
                    "article",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="passages",
                        to="catalog.knowledgearticle",
                    ),
                ),
            ],
            options={
                "ordering": ["article", "position"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("article", "position"), name="passage_article_position"
                    )
                ],
            },
        ),
        migrations.RunSQL(
            "UPDATE catalog_knowledgearticle SET embedding_text_hash = ''"
            " WHERE embedding IS NOT NULL",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
