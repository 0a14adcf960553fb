"""A question asked of one product ("is the pillar candle unscented?", "how long does it burn?"
after a list), answered by the sentence of its description nearest it in meaning: a product list
left the customer to find the answer, or not, in the first sentence of each."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from langchain_core.messages import BaseMessage

from agents.providers.follow_ups import product_asked_about
from agents.providers.stock_questions import asks_about_stock
from agents.providers.subjects import SUPPORT_WORDS
from agents.providers.words import SHOP_WORDS, WORD, is_plural, stem, stems
from beemanhoney.common.lru import LruCache
from catalog.embeddings import embed_query, get_embedding_backend, query_embedding_errors
from catalog.knowledge_passages import RELEVANCE_FLOOR, passage_nearness
from catalog.models import KnowledgeArticle, Product
from catalog.selectors import knowledge_search, product_get_by_name, product_named_in

logger = logging.getLogger(__name__)

# A question, not a request: "where does the chestnut honey come from?"...
ASKS_A_QUESTION = re.compile(
    r"^(?:(?:at|in|for|with|from|to) (?:what|which|how)|is|are|does|do|did|how|what|what's"
    r"|when|where|which|can|could|will|would|should|has)\b",
    re.IGNORECASE,
)
# ...that asks what there is to buy ("do you have truffle honey?", "is there a honey that stays
# runny?", "which would you recommend?"): a product list answers those, and their prices.
ASKS_WHAT_TO_BUY = re.compile(
    r"^(?:do|does) you\b|^have you\b|^(?:is|are) there\b"
    r"|\b(?:recommend|suggest|best|good for|should i (?:buy|get|choose|order))\b",
    re.IGNORECASE,
)
# "How much" of the thing itself, not of something else ("how much garden does the seed mix
# cover?", answered with a product list).
ASKS_THE_PRICE = re.compile(
    r"\bhow much(?:\s+(?:is|are|was|were|does|do|did|would|will|for|money|to)\b|\W*$)"
    r"|\b(?:prices?|costs?|charge)\b",
    re.IGNORECASE,
)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Words that ask of what follows them: "are the wraps...", "do the tealights..."; after others
# ("use the capsules") things named in the plural are "them".
ASKING_VERBS = frozenset(
    {"are", "were", "do", "did", "have", "can", "could", "will", "would", "should", "may", "might"}
)
# The articles a search finds for a question whose passages a product's sentences are held
# against (``description_answers_better``): the offline support agent quotes one of its first.
ARTICLES_COMPARED = 3

# Descriptions asked about recently, embedded by sentence.
_sentence_vectors: LruCache[np.ndarray] = LruCache(size=256)


def asks_something_of_a_product(question: str, *, of_one_listed: bool = False) -> bool:
    """Whether ``question`` asks something of a product, not its price or stock, nor (unless of
    the one just listed: "what is it good for?") what to buy."""
    question = question.strip()
    return bool(
        ASKS_A_QUESTION.match(question)
        and not ASKS_THE_PRICE.search(question)
        and not asks_about_stock(question)
        and (of_one_listed or not ASKS_WHAT_TO_BUY.search(question))
    )


def description_answers_better(question: str, *, listed: str | None = None) -> bool:
    """Whether the one product ``question`` names (``product_named_in``), or the product ``listed``
    first just before a follow-up about it ("how long does it burn?"), answers it better than the
    help centre: a sentence of its description nearer in meaning than every passage of the
    articles found for it, or every passage too far to answer it (``RELEVANCE_FLOOR``). "is the
    glass honey pot dishwasher safe?" went to the help centre by meaning, and was quoted the
    crystallisation article; "how should I store the manuka UMF 15+?" stays there (the storage
    article).

    The articles are found, and the passages held against the question, as the help centre's
    agent reads it: a follow-up with the product's name (``customer_question``). Alone, "is it
    safe to leave burning overnight?" after the pillar candle was nearer "Burns slowly and
    cleanly..." than the candle-safety article, and was answered from the description. Unless
    the question is in the help centre's words (``SUPPORT_WORDS``), a sentence also answers
    better when nearer than every passage to the question with the product said as "it", as the
    sentences are held against it: the name's words drew the question to the article about its
    kind ("is the beeswax pillar candle unscented?" to the candle-care article, 0.62 against the
    description's 0.32; as "is it unscented?", 0.25); and the floor is of the question as asked.
    While the embedding API is away, no."""
    product = _product_asked(question, listed=listed)
    if product is None:
        return False
    sentences = _sentences(product.description)
    read_as = question if listed is None else f"{question} {listed}"
    in_its_words = SUPPORT_WORDS.search(question.lower()) is not None
    try:
        nearest_sentence = (
            float(np.max(_sentence_nearness(sentences, question, product.name)))
            if sentences
            else 0.0
        )
        articles = [hit.item for hit in knowledge_search(query=read_as, limit=ARTICLES_COMPARED)]
        nearest_passage = _nearest_passage(articles, read_as)
        if in_its_words:
            return nearest_sentence > nearest_passage or nearest_passage < RELEVANCE_FLOOR
        nearest_to_it = _nearest_passage(articles, said_as_it(question, product.name))
        nearest_as_asked = (
            nearest_passage if listed is None else _nearest_passage(articles, question)
        )
    except query_embedding_errors():
        return False
    # Below the floor the help centre's agent would say it found nothing.
    return (
        nearest_sentence > min(nearest_passage, nearest_to_it) or nearest_as_asked < RELEVANCE_FLOOR
    )


def description_says(question: str, words: Sequence[str], *, listed: str | None = None) -> bool:
    """Whether the product ``question`` asks something of (as ``description_answers_better``
    finds it) says each of ``words`` in its description, in the same words ("vegetarian" of the
    Propolis Capsules: "Sixty vegetarian capsules...")."""
    product = _product_asked(question, listed=listed)
    if product is None or not words:
        return False
    said = stems(product.description)
    return all(stems(word) <= said for word in words)


def _product_asked(question: str, *, listed: str | None) -> Product | None:
    if not asks_something_of_a_product(question, of_one_listed=listed is not None):
        return None
    return (
        product_get_by_name(name=listed) if listed is not None else product_named_in(text=question)
    )


def _nearest_passage(articles: list[KnowledgeArticle], question: str) -> float:
    return max(
        (
            float(np.max(passage_nearness(title=a.title, body=a.body, question=question)))
            for a in articles
        ),
        default=0.0,
    )


def product_asked_of(
    messages: Sequence[BaseMessage], latest: str, products: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The one product of a search's ``products`` the customer's ``latest`` message asks a
    question of: the one just listed first, for a follow-up about one thing ("how long does it
    burn?"), else the only one whose name holds every word of the question that some found
    product's name holds ("is the beeswax pillar candle unscented?"). None for a question
    about what to buy, its price or its stock, which the product list answers."""
    if (listed := product_asked_about(messages)) is not None:
        if not asks_something_of_a_product(latest, of_one_listed=True):
            return None
        return next((product for product in products if product["name"] == listed), None)
    if not asks_something_of_a_product(latest):
        return None
    names = [stems(product["name"]) for product in products]
    naming = {word for word in stems(latest) if any(word in name for name in names)}
    holding = [product for product, name in zip(products, names, strict=True) if naming <= name]
    return holding[0] if naming and len(holding) == 1 else None


def description_sentence(description: str, question: str, *, name: str) -> str:
    """The sentence of the ``name``d product's ``description`` nearest ``question`` in meaning,
    the product said as "it" (``said_as_it``); while the embedding API is away, the one sharing
    most words with the question (the first on a tie)."""
    sentences = _sentences(description)
    if not sentences:
        return ""
    try:
        nearness = _sentence_nearness(sentences, question, name)
    except query_embedding_errors():
        logger.warning("agents.description_sentence_by_words")
        asked = stems(question)
        return max(sentences, key=lambda sentence: len(asked & stems(sentence)))
    return sentences[int(np.argmax(nearness))]


def said_as_it(question: str, name: str) -> str:
    """``question`` with the product it names said as "it": "where does the chestnut honey come
    from?" as "where does it come from?". The name's words drew the question to the sentence
    that holds them, mostly the first ("are the rolled dinner candles scented?" to "Two tapered
    dinner candles hand-rolled...", not "no added fragrance"). A word of the name alone, without
    "the" or another of it, is the question's own: "how hot is..." of the Chilli-Infused Hot
    Honey. The shop's own words in the name are said with the rest ("when should I sow the
    bee-friendly seed mix?" was "when should I sow the bee-it?"), and things named in the plural
    as "they" or "them" ("how long do they last?" of the beeswax food wraps)."""
    named = stems(name)
    asked = WORD.findall(question.lower())
    words = {w for w in asked if stem(w) in named}
    if not words:
        return question
    own = {w for w in asked if w in SHOP_WORDS} & set(WORD.findall(name.lower()))
    alternatives = sorted(map(re.escape, words | own | {"honey"}), key=len, reverse=True)
    word = "(?:" + "|".join(alternatives) + ")"
    run = rf"{word}(?:[\s-]+{word})*"
    named_run = rf"\b(?:(?:the|a|an|your|this|that)\s+{run}|{word}(?:[\s-]+{word})+)\b"
    return re.sub(named_run, _pronoun, question, flags=re.IGNORECASE)


def _pronoun(said: re.Match[str]) -> str:
    if not is_plural(WORD.findall(said.group(0).lower())[-1]):
        return "it"
    before = WORD.findall(said.string[: said.start()].lower())
    return "they" if not before or before[-1] in ASKING_VERBS else "them"


def _sentences(description: str) -> list[str]:
    return [s for s in SENTENCE_END.split(description.strip()) if s]


def _sentence_nearness(sentences: list[str], question: str, name: str) -> np.ndarray:
    """How near ``question``, its product said as "it", each sentence is in meaning. Raises
    ``query_embedding_errors()`` while the embedding API is away."""
    return _vectors(sentences) @ np.asarray(embed_query(said_as_it(question, name)))


def _vectors(sentences: list[str]) -> np.ndarray:
    backend = get_embedding_backend()
    key = (backend.model_name, "\n".join(sentences))
    return _sentence_vectors.get_or_make(
        key, lambda: np.asarray(backend.embed_documents(sentences), dtype=np.float32)
    )
