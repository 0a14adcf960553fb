from typing import cast

import pytest
from django.contrib.postgres.indexes import OpClass
from django.core.exceptions import ValidationError
from django.db.models import Expression, F
from pgvector.django import HnswIndex

from catalog.embeddings import text_hash, text_hash_sql
from catalog.models import KnowledgeArticle, Product, embedding_halfvec, graph_vector
from tests.catalog.factories import CategoryFactory, KnowledgeArticleFactory, ProductFactory


@pytest.mark.django_db
def test_the_database_builds_a_products_embedding_text_and_its_hash_as_python_does() -> None:
    ProductFactory.create()
    ProductFactory.create(floral_source="", origin="", tags=[], description="")
    ProductFactory.create(
        name="Miel de châtaignier 250g",
        category=CategoryFactory.create(name="Épicerie fine ☕"),
        description="Dark, bitter and malty.\nSecond line; £12 a jar.",
        floral_source="Sweet chestnut",
        origin="",
        tags=["dark", "single-origin", "gift"],
    )
    ProductFactory.create(origin="Otago, New Zealand", floral_source="", tags=["manuka"])

    in_sql = Product.objects.values_list(
        "pk", Product.embedding_text_sql(), text_hash_sql(Product.embedding_text_sql())
    )

    rows = {pk: (text, digest) for pk, text, digest in in_sql}
    in_python = {
        product.pk: (product.embedding_text(), text_hash(product.embedding_text()))
        for product in Product.objects.select_related("category")
    }
    assert rows == in_python
    assert len(rows) >= 4


@pytest.mark.django_db
def test_a_tag_that_lower_cases_longer_than_a_tag_is_refused_by_the_model() -> None:
    # The column would take the 80 characters cut to 40, without a word.
    product = ProductFactory.build(category=CategoryFactory.create(), tags=["\u0130" * 40])

    with pytest.raises(ValidationError) as refused:
        product.full_clean()

    assert refused.value.message_dict == {
        "tags": ["Tag 1: Ensure this value has at most 40 characters (it has 80)."]
    }
    assert [error.code for error in refused.value.error_dict["tags"]] == ["max_length"]


@pytest.mark.django_db
def test_the_database_builds_an_articles_embedding_text_and_its_hash_as_python_does() -> None:
    KnowledgeArticleFactory.create()
    KnowledgeArticleFactory.create(
        title="Crystallised honey — is it spoiled?", body="No.\n\nWarm it."
    )

    in_sql = KnowledgeArticle.objects.values_list(
        "pk", text_hash_sql(KnowledgeArticle.embedding_text_sql())
    )

    assert dict(in_sql) == {
        article.pk: text_hash(article.embedding_text())
        for article in KnowledgeArticle.objects.all()
    }


@pytest.mark.parametrize(
    ("model", "vector"),
    [(Product, F("embedding_half")), (KnowledgeArticle, embedding_halfvec())],
)
def test_a_models_searches_order_by_the_vector_all_its_graphs_are_built_over(
    model: type[Product] | type[KnowledgeArticle], vector: Expression
) -> None:
    graphs = [index for index in model._meta.indexes if isinstance(index, HnswIndex)]
    over = [cast(OpClass, graph.expressions[0]).get_source_expressions()[0] for graph in graphs]

    assert graph_vector(model) == vector
    assert over
    assert all(each == vector for each in over)


def test_the_columns_only_searches_read_are_the_vectors_and_the_words_search_vector() -> None:
    assert Product.search_only_fields() == ["embedding", "search_vector", "embedding_half"]
    assert KnowledgeArticle.search_only_fields() == ["embedding", "search_vector"]
