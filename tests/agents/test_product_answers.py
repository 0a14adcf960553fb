from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from agents.graph.builder import build_graph
from agents.graph.names import Route
from agents.providers.offline import OfflineProvider
from agents.providers.product_answers import (
    description_sentence,
    product_asked_of,
    said_as_it,
)
from agents.providers.router import semantic_route
from tests.conversations.factories import ConversationFactory
from tests.support.fake_openai import FakeOpenAIServer, HttpError

PILLAR = {"sku": "BH-WAX-003", "name": "Beeswax Pillar Candle 15cm"}
DINNER = {"sku": "BH-WAX-004", "name": "Rolled Beeswax Dinner Candles (Pair)"}
TEALIGHTS = {"sku": "BH-WAX-005", "name": "Beeswax Tealights (Set of 12)"}
CANDLES = [PILLAR, DINNER, TEALIGHTS]
LISTED = AIMessage(
    "Here's what I'd suggest from our shop:\n- Beeswax Pillar Candle 15cm — £18.95 (54 in "
    "stock). Hand-poured.\n- Rolled Beeswax Dinner Candles (Pair) — £9.95 (72 in stock). Two."
)


def _turn(*texts: str) -> dict[str, Any]:
    """The offline graph's turn on the last of ``texts``, after the earlier ones and the
    assistant's replies to them."""
    conversation = ConversationFactory.create()
    config = {"configurable": {"customer_id": conversation.owner_id,
                               "conversation_id": str(conversation.id)}}  # fmt: skip
    graph = build_graph(provider=OfflineProvider())
    messages: list[Any] = []
    for text in texts:
        state = graph.invoke({"messages": [*messages, HumanMessage(text)]}, config)
        messages = state["messages"]
    return state


@pytest.mark.parametrize(
    ("question", "said"),
    [
        ("where does the chestnut honey come from?", "where does it come from?"),
        ("is the beeswax pillar candle unscented?", "is it unscented?"),
        # A word of the name alone is the question's own.
        ("how hot is the chilli-infused hot honey?", "how hot is it?"),
        ("how long does it burn?", "how long does it burn?"),
    ],
)
def test_a_question_says_the_product_it_names_as_it(question: str, said: str) -> None:
    name = {"chestnut": "Chestnut Raw Honey 340g", "chilli": "Chilli-Infused Hot Honey 340g"}
    product = next((n for word, n in name.items() if word in question), PILLAR["name"])

    assert said_as_it(question, product) == said


@pytest.mark.parametrize(
    ("question", "name", "said"),
    [
        # The shop's own words of the name go with the rest: "when should I sow the bee-it?".
        (
            "when should I sow the bee-friendly seed mix?",
            "Bee-Friendly Wildflower Seed Mix",
            "when should I sow it?",
        ),
        (
            "how is the british bee pollen kept fresh?",
            "British Bee Pollen 100g",
            "how is it kept fresh?",
        ),
        # Things named in the plural.
        (
            "how long do the beeswax food wraps last?",
            "Beeswax Food Wraps Set of 3",
            "how long do they last?",
        ),
        (
            "how long does personalising the wedding favour jars take?",
            "Wedding Favour Honey Jars (Set of 24)",
            "how long does personalising them take?",
        ),
    ],
)
def test_the_whole_name_is_said_as_it_or_they(question: str, name: str, said: str) -> None:
    assert said_as_it(question, name) == said


@pytest.mark.parametrize(
    ("question", "asked"),
    [
        ("is the beeswax pillar candle unscented?", PILLAR),
        ("are the rolled dinner candles scented?", DINNER),
        ("at what temperature do the tealights burn?", TEALIGHTS),
        # The name of more than one found ("candle" and "candles"), or asking what to buy, its
        # price or its stock: a product list answers.
        ("are the candles scented?", None),
        ("do you have a beeswax pillar candle?", None),
        ("which candle would you recommend?", None),
        ("how much is the beeswax pillar candle?", None),
        ("is the beeswax pillar candle in stock?", None),
        ("I'd like a beeswax pillar candle", None),
    ],
)
def test_the_product_a_question_is_asked_of(question: str, asked: dict[str, str] | None) -> None:
    assert product_asked_of([HumanMessage(question)], question, CANDLES) == asked


def test_a_follow_up_is_asked_of_the_product_listed_first() -> None:
    messages = [HumanMessage("beeswax candles"), LISTED, HumanMessage("how long does it burn?")]

    assert product_asked_of(messages, "how long does it burn?", CANDLES) == PILLAR
    assert product_asked_of(messages, "how long does it burn?", [DINNER, TEALIGHTS]) is None
    # Its price is on the product's line.
    assert product_asked_of(messages, "how much is it?", CANDLES) is None


@pytest.mark.django_db
def test_the_sentence_of_the_description_that_answers_is_quoted(demo_shop) -> None:
    # Listed, "Two tapered dinner candles hand-rolled..." answered it, or not.
    state = _turn("are the rolled dinner candles scented?")

    reply = str(state["messages"][-1].content)
    calls = [m.name for m in state["messages"] if isinstance(m, ToolMessage)]
    assert reply.startswith(
        'About the Rolled Beeswax Dinner Candles (Pair): "Natural golden colour, no added '
        'fragrance."\n- Rolled Beeswax Dinner Candles (Pair) — £9.95'
    )
    assert calls == ["search_products", "get_product"]


@pytest.mark.django_db
def test_a_follow_up_about_the_product_listed_is_answered_from_its_description(
    demo_shop,
) -> None:
    state = _turn("tell me about the pillar candle", "how long does it burn?")

    reply = str(state["messages"][-1].content)
    assert reply.startswith(
        'About the Beeswax Pillar Candle 15cm: "Burns slowly and cleanly, for approximately 60 '
        'hours."'
    )


@pytest.mark.django_db
def test_a_question_about_what_to_buy_still_gets_a_list(demo_shop) -> None:
    state = _turn("do you have any beeswax candles?")

    reply = str(state["messages"][-1].content)
    assert reply.startswith("Here's what I'd suggest from our shop:")
    assert reply.count("\n- ") >= 2


@pytest.mark.django_db
def test_while_the_embedding_api_is_away_the_sentence_sharing_most_words_is_quoted(
    openai_embeddings: FakeOpenAIServer,
) -> None:
    openai_embeddings.script_embedding_errors(*[HttpError(503, "Service unavailable")] * 5)
    description = "Hand-poured from beeswax. Burns slowly, for approximately 60 hours. Lovely."

    sentence = description_sentence(description, "how many hours does it burn for?", name="Pillar")

    assert sentence == "Burns slowly, for approximately 60 hours."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "route"),
    [
        # To the help centre by meaning: quoted the crystallisation article, and "couldn't find".
        ("is the glass honey pot dishwasher safe?", Route.SALES),
        ("is the hive tool stainless steel?", Route.SALES),
        # Quoted the candle-care article, nearer the name's words ("beeswax candle") than the
        # description; the crystallisation article ("the acacia honey" was four products'
        # floral source, and named none); the propolis article, by "vegetarian".
        ("is the beeswax pillar candle unscented?", Route.SALES),
        ("does the acacia honey stay runny?", Route.SALES),
        ("are the propolis capsules vegetarian?", Route.SALES),
        # An article answers better, or the question is after-sales or a diet's.
        ("how should I store the manuka UMF 15+?", Route.SUPPORT),
        ("can I return the glass honey pot?", Route.SUPPORT),
        ("is the cacao creamed honey dairy free?", Route.SUPPORT),
        # The help centre's words, a diet the description does not say, an allergy.
        ("is the pillar candle safe to leave burning overnight?", Route.SUPPORT),
        ("are the beeswax food wraps vegan?", Route.SUPPORT),
        ("are there any allergens in the propolis capsules?", Route.SUPPORT),
    ],
)
def test_a_question_the_product_s_description_answers_goes_to_sales(
    demo_shop, text: str, route: Route
) -> None:
    assert semantic_route([HumanMessage(text)]) == route


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("texts", "answer"),
    [
        (
            ["is the beeswax pillar candle unscented?"],
            'About the Beeswax Pillar Candle 15cm: "Hand-poured from pure, unbleached British '
            "beeswax with a cotton wick, giving a warm golden glow and a faint natural honey "
            'scent."',
        ),
        # "How much" of something else than money: a product list.
        (
            ["how much garden does the wildflower seed mix cover?"],
            'About the Bee-Friendly Wildflower Seed Mix: "Covers roughly 5 square metres',
        ),
        # Follow-ups about the one product listed, read alone: a list, "couldn't find".
        (
            ["have you got truffle honey?", "what would I eat it with?"],
            'About the Truffle-Infused Honey 120g: "A little goes a long way: drizzle over burrata',
        ),
        (
            ["I'd like the raw propolis chunks", "what do people use them for?"],
            'About the Raw Propolis Chunks 20g: "Beekeepers and crafters use it',
        ),
        (
            ["do you do wedding favours?", "how many jars are in the set?"],
            'About the Wedding Favour Honey Jars (Set of 24): "Twenty-four 30g hexagonal jars',
        ),
    ],
    ids=["unscented", "garden covered", "eat it with", "use them for", "jars in the set"],
)
def test_a_question_asked_of_one_product_is_answered_from_its_description(
    demo_shop, texts: list[str], answer: str
) -> None:
    state = _turn(*texts)

    assert str(state["messages"][-1].content).startswith(answer)


@pytest.mark.django_db
def test_a_safety_question_about_the_product_listed_is_answered_by_the_help_centre(
    demo_shop,
) -> None:
    # Searched for alone, the candle-safety article came less near than "Burns slowly and
    # cleanly, for approximately 60 hours.", which was quoted.
    state = _turn("tell me about the pillar candle", "is it safe to leave burning overnight?")

    assert state["route"] == Route.SUPPORT
    assert str(state["messages"][-1].content).startswith(
        'From our help article "Beeswax candle safety and care"'
    )
