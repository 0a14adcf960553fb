"""The offline provider: no network, no invention.

The supervisor routes by meaning (``router.semantic_route``). The agents' "model" is a
deterministic chat model: on the customer's message it calls the agent's search tool, and on the
tool's result it composes the reply from templates, so every product, price, stock level and
policy it states comes from the catalogue.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.utils.function_calling import convert_to_openai_tool

from agents.graph.prompts import HANDOFF_OFFER, HANDOFF_REPLY, OFF_TOPIC_REPLY
from agents.providers import RouteDecision
from agents.providers.follow_ups import (
    CHEAPER,
    cheaper_than_listed,
    customer_question,
    latest_customer_message,
    product_asked_about,
    says_what_it_was,
)
from agents.providers.product_answers import description_sentence, product_asked_of
from agents.providers.recommendations import recommendation_line
from agents.providers.router import (
    SmallTalk,
    names_a_product,
    off_topic,
    semantic_route,
    small_talk,
)
from agents.providers.stock_questions import (
    BACK_IN_STOCK,
    IN_STOCK,
    asks_about_stock,
    without_stock_words,
)
from agents.providers.words import stems
from catalog.embeddings import query_embedding_errors
from catalog.knowledge_passages import RELEVANCE_FLOOR, article_paragraphs, passage_nearness
from catalog.models import KnowledgeArticle
from catalog.selectors import knowledge_question_as_meant, product_lowest_price, products_are_named

logger = logging.getLogger(__name__)

# What the customer says a product must not be: "something without cinnamon" listed the
# Cinnamon Creamed Honey first (the search ranks by the words said, "cinnamon" among them).
# "no" and "not" only where they start a clause ("..., no manuka please", "but not chilli"):
# "is there no manuka under £20?" asks for manuka.
NOT_WANTED = re.compile(
    r"(?:\b(?:without|except|other than|apart from|anything but|nothing with)"
    r"|(?:^|[,;]|\bbut\b|\band\b)\s*(?:no|not))\s+(?:any\s+|the\s+|a\s+|an\s+)?([a-z]{3,})\b",
    re.IGNORECASE,
)
MAX_RECOMMENDATIONS = 3
PENNY = Decimal("0.01")
# A paragraph's nearness in meaning gains this much for holding all of the question's words
# (in proportion for some): meaning alone quoted "we do not accept cheques" (0.49) for "can I pay
# with PayPal?" over the paragraph that names PayPal (0.43).
PARAGRAPH_WORDS_WEIGHT = 0.15
NO_ARTICLE_REPLY = f"I couldn't find an answer to that in our help articles. {HANDOFF_OFFER}"
NO_PRODUCT_REPLY = (
    "I couldn't find anything in our shop that matches that. Could you tell me a little more "
    f"about what you're after? {HANDOFF_OFFER}"
)
# A customer who is upset or complaining is offered a person with whatever the help centre
# says: "where is my parcel you idiots, I want my money back NOW" got a paragraph on
# redirecting parcels, and nothing more.
UPSET = re.compile(
    r"\b(?:idiots?|idiotic|useless|ridiculous|unacceptable|appalling|disgrace(?:ful)?"
    r"|shocking|terrible|awful|furious|angry|fed up|complain(?:t|ts|ing)?|make a complaint"
    r"|scam|rip[- ]?off|money back|not good enough|sort it out|how dare|rubbish|disgusting"
    r"|pathetic|worst|still (?:nothing|waiting|not here))\b"
    r"|[\U0001F620\U0001F621\U0001F624\U0001F92C]",  # angry faces
    re.IGNORECASE,
)
UPSET_APOLOGY = "I'm sorry about this."
SMALL_TALK_REPLIES = {
    SmallTalk.GREETING: (
        "Hello! I'm Beeman Honey's automated shop assistant. I can help you choose a honey or a "
        "gift, and answer questions about delivery, returns, storage and allergies. What are you "
        "looking for today? If you'd rather talk to a person, just say so."
    ),
    SmallTalk.THANKS: "You're welcome! Is there anything else I can help you with?",
    SmallTalk.GOODBYE: "Thank you for visiting Beeman Honey. Goodbye!",
    # "ok", "yes please" to anything but the offer of a person (that one is a hand-off).
    SmallTalk.YES: (
        "Great! What would you like to do next? I can suggest a honey or a gift, or answer "
        "questions about delivery, returns and storage."
    ),
    SmallTalk.ANSWER: (
        "Is there anything else I can help you with? I can suggest a honey or a gift, or answer "
        "questions about delivery, returns and storage."
    ),
}


def _money(amount: str, currency: str) -> str:
    return f"£{amount}" if currency == "GBP" else f"{amount} {currency}"


def compose_product_reply(
    products: list[dict[str, Any]], *, question: str = "", latest: str = ""
) -> str:
    """The products found, up to ``MAX_RECOMMENDATIONS``, but those named for what the
    customer's ``latest`` message says they do not want (``NOT_WANTED``). Asked whether one is
    in stock (``question``), when the first is sold out the reply says so before anything
    else, and offers the in-stock ones found instead."""
    unwanted = [m.group(1).lower() for m in NOT_WANTED.finditer(latest) if _names_some(m)]
    products = [product for product in products if not _named_for(product["name"], unwanted)]
    if not products:
        return NO_PRODUCT_REPLY
    first = products[0]
    if not (asks_about_stock(question) and not first["in_stock"]):
        lines = ["Here's what I'd suggest from our shop:"]
        lines += [_product_line(product) for product in products[:MAX_RECOMMENDATIONS]]
        return "\n".join(lines)
    no_date = ", and I don't have a date for when it will be back in stock"
    when = no_date if BACK_IN_STOCK.search(question.lower()) else ""
    lines = [f"Sorry, the {first['name']} is sold out at the moment{when}.", _product_line(first)]
    instead = [product for product in products[1:] if product["in_stock"]]
    if instead:
        lines.append("In stock now, you might like:")
        lines += [_product_line(product) for product in instead[: MAX_RECOMMENDATIONS - 1]]
    return "\n".join(lines)


def compose_description_reply(product: dict[str, Any], question: str) -> str:
    """The sentence of the product's description that answers ``question``, then its line."""
    sentence = description_sentence(product["description"], question, name=product["name"])
    return f'About the {product["name"]}: "{sentence}"\n{_product_line(product)}'


def _names_some(match: re.Match[str]) -> bool:
    # "not too sweet", "no thanks": only a word in products' names is a product not wanted.
    return products_are_named(text=match.group(1))


def _unless_unwanted(match: re.Match[str]) -> str:
    return " " if _names_some(match) else match.group(0)


def _named_for(name: str, words: list[str]) -> bool:
    """Whether the product ``name`` holds one of ``words`` (or its singular), not as "-free":
    "a gift without alcohol" keeps the Alcohol-Free Propolis Throat Spray."""
    lowered = name.lower()
    for word in words:
        for form in dict.fromkeys((word, word.removesuffix("s"))):
            if re.search(rf"\b{re.escape(form)}\b(?![- ]free)", lowered):
                return True
    return False


def _product_line(product: dict[str, Any]) -> str:
    stock = f"{product['stock']} in stock" if product["in_stock"] else "currently sold out"
    summary = product["summary"].split(". ")[0].rstrip(".")
    price = _money(product["price"], product["currency"])
    return recommendation_line(product["name"], f"{price} ({stock}). {summary}.")


def _nearness(article: dict[str, Any], question: str) -> np.ndarray | None:
    """How near ``question`` each of the article's passages is (``passage_nearness``); None
    while the embedding API is away."""
    try:
        return passage_nearness(title=article["title"], body=article["body"], question=question)
    except query_embedding_errors():
        logger.warning("agents.article_relevance_by_words", extra={"slug": article["slug"]})
        return None


def _answers(article: dict[str, Any], question: str, nearness: np.ndarray | None) -> bool:
    """Whether ``article`` is about ``question`` at all: by meaning (its title or a paragraph
    as near the question as ``RELEVANCE_FLOOR``), or, while the embedding API is away, by a
    word they share."""
    if nearness is None:
        return bool(stems(question) & stems(f"{article['title']}\n\n{article['body']}"))
    return float(np.max(nearness)) >= RELEVANCE_FLOOR


def _best_paragraph(article: dict[str, Any], question: str, nearness: np.ndarray | None) -> str:
    """The paragraph nearest ``question`` in meaning ("when will my order arrive?" is answered by
    "if your order has not arrived within 5 working days", ahead of paragraphs that share more
    words with it), with a little weight for the words it shares (``PARAGRAPH_WORDS_WEIGHT``)
    other than the title's: those say which article, not which paragraph ("How do I clean my
    beeswax wraps?" was answered with the wraps article's opening, which names beeswax wraps,
    not with its paragraph on washing them). While the embedding API is away, the paragraph
    sharing most words with the question."""
    paragraphs = article_paragraphs(article["body"])
    asked = stems(question)
    if nearness is None:
        return max(paragraphs, key=lambda p: len(asked & stems(p)), default="")
    telling = asked - stems(article["title"])
    shared = [len(telling & stems(p)) / len(asked) if asked else 0.0 for p in paragraphs]
    scores = nearness[1:] + PARAGRAPH_WORDS_WEIGHT * np.asarray(shared)
    return paragraphs[int(np.argmax(scores))] if paragraphs else ""


def compose_article_reply(
    articles: list[dict[str, Any]], question: str, *, latest: str | None = None
) -> str:
    """Quote the first article that answers the question (the search always returns its
    nearest articles, relevant or not). Health articles are quoted whole: their safety advice
    ("never give honey to a baby under 12 months") must never be cut off. When the question is
    a follow-up read with an earlier one, its ``latest`` words pick the paragraph ("and to
    Northern Ireland?" after "how long does delivery take?"). Misspelt words are read as the
    search reads them ("traking" as "tracking"): the model, reading them as typed, put the
    tracking article under the floor."""
    question = knowledge_question_as_meant(question=question)
    if latest is not None:
        latest = knowledge_question_as_meant(question=latest)
    for article in articles:
        nearness = _nearness(article, question)
        if _answers(article, question, nearness):
            break
    else:
        return NO_ARTICLE_REPLY
    if article.get("topic") == KnowledgeArticle.Topic.HEALTH:
        extract = article["body"].strip()
    elif latest is not None and latest != question:
        extract = _best_paragraph(article, latest, _nearness(article, latest))
    else:
        extract = _best_paragraph(article, question, nearness)
    return f'From our help article "{article["title"]}":\n\n{extract}'


class OfflineChatModel(BaseChatModel):
    """Calls the bound search tool for the customer's question, then answers from its result."""

    @property
    def _llm_type(self) -> str:
        return "beeman-offline"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tool_names = {tool["function"]["name"] for tool in kwargs.get("tools", [])}
        question, latest = customer_question(messages), latest_customer_message(messages)
        if isinstance(messages[-1], ToolMessage):
            message = self._after_tool(messages, question, latest, tool_names)
        elif (kind := small_talk(latest)) is not None:
            message = AIMessage(content=SMALL_TALK_REPLIES[kind])
        elif "search_products" in tool_names and off_topic(question):
            # Not a product list for "what's the weather in London?". The help centre's agent
            # says it found no article, with the same offer of a person.
            message = AIMessage(content=OFF_TOPIC_REPLY)
        elif "search_products" in tool_names:
            query, in_stock_only = self._product_query(messages, question, latest)
            # Searched for without what is not wanted, which the reply leaves out by name.
            query = " ".join(NOT_WANTED.sub(_unless_unwanted, query).split()) or query
            below = self._cheaper_than_listed(messages)
            if below is not None:
                # By relevance under that price, not the category's cheapest first.
                query = " ".join(CHEAPER.sub(" ", query).split()) or query
            call = self._product_search_call(query, in_stock_only=in_stock_only, max_price=below)
            message = AIMessage(content="", tool_calls=[call])
        elif "search_knowledge" in tool_names:
            call = {"name": "search_knowledge", "args": {"query": question}, "id": "offline-1"}
            message = AIMessage(content="", tool_calls=[call])
        else:
            message = AIMessage(content="")
        return ChatResult(generations=[ChatGeneration(message=message)])

    @staticmethod
    def _product_query(
        messages: Sequence[BaseMessage], question: str, latest: str
    ) -> tuple[str, bool]:
        """What to search the products for, and whether for in-stock ones only: those when the
        customer asks what is in stock, but not when they ask it of a product. "Is it in
        stock?" about a product listed, or "is the lime blossom honey in stock?", is answered
        by that product's line, sold out or not: only in-stock products left out exactly the
        one asked about."""
        if not asks_about_stock(question) or product_asked_about(messages) is not None:
            return question, False
        for text in dict.fromkeys((latest, question)):
            if names_a_product(text):
                return without_stock_words(question), False
        return question, IN_STOCK.search(question.lower()) is not None

    @staticmethod
    def _cheaper_than_listed(messages: Sequence[BaseMessage]) -> Decimal | None:
        """The highest price of something cheaper than everything just listed, when the
        customer asks for a cheaper one ("and a cheaper one?")."""
        listed = cheaper_than_listed(messages)
        lowest = product_lowest_price(names=listed) if listed else None
        return None if lowest is None else max(lowest - PENNY, Decimal(0))

    @staticmethod
    def _product_search_call(
        question: str, *, in_stock_only: bool, max_price: Decimal | None = None
    ) -> dict[str, Any]:
        # The search reads a price the question states ("under £10") from the query itself.
        args: dict[str, Any] = {"query": question}
        if in_stock_only:
            args["in_stock_only"] = True
        if max_price is not None:
            args["max_price"] = float(max_price)
        return {"name": "search_products", "args": args, "id": "offline-1"}

    @classmethod
    def _after_tool(
        cls, messages: list[BaseMessage], question: str, latest: str, tool_names: set[str]
    ) -> AIMessage:
        """The answer from the tool's result; or, when the customer asks a question of one of
        the products found, a call for that product's whole description."""
        data = json.loads(str(messages[-1].content))
        asked = (
            product_asked_of(messages, latest, data["products"])
            if data.get("products") and "get_product" in tool_names
            else None
        )
        if asked is not None:
            call = {"name": "get_product", "args": {"sku": asked["sku"]}, "id": "offline-2"}
            return AIMessage(content="", tool_calls=[call])
        return AIMessage(content=cls._compose(data, question, latest))

    @staticmethod
    def _compose(data: dict[str, Any], question: str, latest: str) -> str:
        if data.get("escalated"):
            return HANDOFF_REPLY
        if "products" in data:
            return compose_product_reply(data["products"], question=question, latest=latest)
        if "product" in data:
            return compose_description_reply(data["product"], latest)
        reply = compose_article_reply(data.get("articles", []), question, latest=latest)
        if reply.endswith(HANDOFF_OFFER):
            return reply
        if UPSET.search(latest):
            return f"{UPSET_APOLOGY} {reply}\n\n{HANDOFF_OFFER}"
        if says_what_it_was(latest):
            # Which of their orders or jars it was ("it was the acacia honey") is for a person
            # to act on.
            return f"{reply}\n\n{HANDOFF_OFFER}"
        return reply


class OfflineProvider:
    name = "offline"
    model_name = "offline-templates"

    def chat_model(self) -> BaseChatModel:
        return OfflineChatModel()

    def route(self, messages: Sequence[BaseMessage], config: RunnableConfig) -> RouteDecision:
        return RouteDecision(route=semantic_route(messages))
