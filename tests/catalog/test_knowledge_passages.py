import numpy as np
import pytest

from catalog import knowledge_passages
from catalog.knowledge_passages import OMISSION, article_extract, article_paragraphs
from catalog.services import embeddings_refresh
from tests.catalog.factories import KnowledgeArticleFactory
from tests.support.fake_openai import FakeOpenAIServer, HttpError

CANADA = (
    "International delivery: we ship to Canada, the United States and Australia, and parcels"
    " arrive in 7 to 10 working days."
)
SHIPPING_PARAGRAPHS = [
    "Orders placed before 1pm on a weekday leave our Yorkshire honey house the same day.",
    "Every jar is wrapped in recycled paper and packed in a cardboard box with paper tape,"
    " so all of the packaging can go in your household recycling.",
    "You can add a handwritten gift note at checkout; we never put prices in gift parcels.",
    "Trade customers ordering more than twenty jars should email our wholesale team for a"
    " quote and a pallet delivery date.",
    "If a jar arrives broken, send us a photo within 14 days and we will replace it free.",
    "Our beeswax candles are packed separately from honey so they cannot be stained.",
    CANADA,
    "Gift sets travel in their own presentation box inside the shipping carton.",
]
SHIPPING_BODY = "\n\n".join(SHIPPING_PARAGRAPHS)


def test_a_short_article_is_given_whole() -> None:
    extract = article_extract(
        title="Shipping", body=SHIPPING_BODY, question="anything", limit=len(SHIPPING_BODY)
    )

    assert extract == SHIPPING_BODY


@pytest.mark.django_db
def test_a_long_article_gives_the_paragraphs_nearest_the_question_in_their_order() -> None:
    extract = article_extract(
        title="Shipping",
        body=SHIPPING_BODY,
        question="How long does delivery to Canada take?",
        limit=400,
    )

    kept = [part for part in article_paragraphs(extract) if part != "…"]
    assert CANADA in kept
    assert len(extract) <= 400
    assert kept == [p for p in SHIPPING_PARAGRAPHS if p in kept]
    assert OMISSION.strip() in extract
    assert len(kept) < len(SHIPPING_PARAGRAPHS)


def test_a_paragraph_kept_from_the_middle_fits_the_limit_with_its_marks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paragraphs = ["a" * 50, "b" * 50, "c" * 50]
    # The middle paragraph nearest the question: marked as cut both before and after it.
    nearness = np.array([0.0, 0.1, 0.9, 0.2])
    monkeypatch.setattr(knowledge_passages, "passage_nearness", lambda **kwargs: nearness)

    extract = article_extract(
        title="Jars", body="\n\n".join(paragraphs), question="anything", limit=55
    )

    assert len(extract) <= 55
    assert "b" * 50 in extract


def test_paragraphs_are_split_at_blank_lines_as_a_browser_sends_them() -> None:
    body = "Orders leave on weekdays.\r\n\r\nWe ship to Canada.\r\n \r\nGift notes are free."

    assert article_paragraphs(body) == [
        "Orders leave on weekdays.",
        "We ship to Canada.",
        "Gift notes are free.",
    ]


@pytest.mark.django_db
def test_one_paragraph_longer_than_the_limit_is_cut() -> None:
    body = "Keep honey in a cool dry cupboard. " * 100

    extract = article_extract(title="Storing", body=body, question="where to keep it", limit=300)

    assert extract == body.strip()[:299] + "…"


@pytest.mark.django_db
def test_while_the_embedding_api_is_away_a_long_article_is_cut_at_the_limit(
    openai_embeddings,
) -> None:
    openai_embeddings.script_embedding_errors(*[HttpError(503, "Service unavailable")] * 5)

    extract = article_extract(
        title="Shipping", body=SHIPPING_BODY, question="delivery to Canada?", limit=400
    )

    assert extract == SHIPPING_BODY[:399] + "…"


@pytest.mark.django_db
def test_a_long_articles_passages_are_read_as_stored_not_embedded_again(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    KnowledgeArticleFactory.create(title="Shipping", body=SHIPPING_BODY)
    embeddings_refresh(kind="knowledge")
    openai_embeddings.reset()

    extract = article_extract(
        title="Shipping", body=SHIPPING_BODY, question="do you send parcels to canada?", limit=400
    )

    assert OMISSION.strip() in extract
    assert openai_embeddings.embedding_inputs() == [["do you send parcels to canada?"]]


@pytest.mark.django_db
def test_only_the_paragraphs_edited_since_the_articles_embedding_are_embedded_now(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    article = KnowledgeArticleFactory.create(title="Shipping", body=SHIPPING_BODY)
    embeddings_refresh(kind="knowledge")
    edited = "Gift sets now travel in a padded presentation box inside the shipping carton."
    article.body = SHIPPING_BODY.replace(SHIPPING_PARAGRAPHS[-1], edited)
    article.save(update_fields=["body"])
    openai_embeddings.reset()

    article_extract(
        title="Shipping", body=article.body, question="how are gift sets packed?", limit=400
    )

    assert openai_embeddings.embedding_inputs() == [["how are gift sets packed?"], [edited]]


@pytest.mark.django_db
def test_passages_stored_by_another_model_are_embedded_again_by_the_configured_one(
    settings, openai_embeddings: FakeOpenAIServer
) -> None:
    settings.EMBEDDING_BACKEND = "local"
    KnowledgeArticleFactory.create(title="Shipping", body=SHIPPING_BODY)
    embeddings_refresh(kind="knowledge")
    settings.EMBEDDING_BACKEND = "openai"

    article_extract(
        title="Shipping", body=SHIPPING_BODY, question="can i add a gift note?", limit=400
    )

    assert openai_embeddings.embedding_inputs() == [
        ["can i add a gift note?"],
        ["Shipping", *SHIPPING_PARAGRAPHS],
    ]
