"""The offline provider on the demo shop: safe health answers, honest misses, budgets, and
routing while the embedding API is away."""

import json
import re
from decimal import Decimal
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents.graph.builder import build_graph
from agents.graph.names import Route
from agents.graph.prompts import HANDOFF_OFFER, HANDOFF_REPLY, OFF_TOPIC_REPLY
from agents.graph.tools import article_data, search_knowledge
from agents.providers.offline import (
    OfflineProvider,
    compose_article_reply,
    compose_product_reply,
)
from agents.providers.router import off_topic, semantic_route
from catalog.models import KnowledgeArticle, Product
from conversations.models import Conversation
from tests.conversations.factories import ConversationFactory
from tests.support.fake_openai import FakeOpenAIServer, HttpError

INFANT_WARNING = "Never give honey to a baby under 12 months old."
NUT_FREE = "Our Yorkshire honey house is a nut-free facility"
SEE_YOUR_GP = "talk to your GP, diabetes nurse or dietitian"
ASK_YOUR_MIDWIFE = "please ask your midwife or GP"
NO_ANSWER = "I couldn't find an answer to that in our help articles."
UK_DELIVERY = "UK delivery times and costs"
FARM_SHOP = "Where are we based? Our farm shop and its opening hours"
PREGNANCY = "Honey in pregnancy and while breastfeeding"
STARTER_KIT = "Beekeeping Starter Kit (Suit, Gloves & Smoker)"


@pytest.fixture
def embedding_api_down(openai_embeddings: FakeOpenAIServer) -> FakeOpenAIServer:
    """The OpenAI embedding backend, answering every request with a 503."""
    openai_embeddings.script_embedding_errors(*[HttpError(503, "Service unavailable")] * 50)
    return openai_embeddings


def _offline_turn(
    text: str, conversation: Conversation | None = None, *, earlier: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One turn of the offline graph on ``text``, after the customer's ``earlier`` questions
    (each with a stand-in reply)."""
    conversation = conversation or ConversationFactory.create()
    config = {"configurable": {"customer_id": conversation.owner_id,
                               "conversation_id": str(conversation.id)}}  # fmt: skip
    history: list[BaseMessage] = []
    for question in earlier:
        history += [HumanMessage(question), AIMessage("(a reply)")]
    return build_graph(provider=OfflineProvider()).invoke(
        {"messages": [*history, HumanMessage(text)]}, config
    )


# --- health answers keep their safety content -------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("question", "article", "safety_text"),
    [
        ("Is honey safe for my 10 month old?", "Honey and babies under 12 months", INFANT_WARNING),
        ("I have a nut allergy, is your honey safe?", "Allergies and bee products", NUT_FREE),
        # The babies article was quoted before the help centre had one on diabetes.
        ("can diabetics eat honey?", "Honey, diabetes and blood sugar", SEE_YOUR_GP),
        # "couldn't find" before the help centre had an article on pregnancy (the allergies
        # article says "pregnant" once, under the quoting floor).
        (
            "is this safe during pregnancy?",
            "Honey in pregnancy and while breastfeeding",
            ASK_YOUR_MIDWIFE,
        ),
    ],
    ids=["infant under 12 months", "nut allergy", "diabetes", "pregnancy"],
)
def test_a_health_question_is_answered_with_the_articles_safety_statement(
    demo_shop, question: str, article: str, safety_text: str
) -> None:
    state = _offline_turn(question)

    reply = str(state["messages"][-1].content)
    assert state["route"] == Route.SUPPORT
    assert f'"{article}"' in reply
    assert safety_text in reply


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("earlier", "text", "article"),
    [
        # Each was answered with products to buy.
        ("is honey safe in pregnancy?", "and manuka?", PREGNANCY),
        (
            "I'm allergic to bee stings, can I use your propolis throat spray?",
            "what about the lip balm",
            "Allergies and bee products",
        ),
    ],
)
def test_a_follow_up_naming_a_product_after_a_health_question_asks_it_again(
    demo_shop, earlier: str, text: str, article: str
) -> None:
    state = _offline_turn(text, earlier=(earlier,))

    assert state["route"] == Route.SUPPORT
    assert str(state["messages"][-1].content).startswith(f'From our help article "{article}"')


@pytest.mark.django_db
@pytest.mark.parametrize(
    "upset",
    [
        "where is my parcel you idiots, I want my money back NOW",
        # No apology nor offer of a person before.
        "your service is rubbish, 3 weeks waiting for my order \U0001f621",
    ],
)
def test_an_upset_customer_is_offered_a_person_with_the_article(demo_shop, upset: str) -> None:
    reply = str(_offline_turn(upset)["messages"][-1].content)
    calm = str(_offline_turn("how long does delivery take?")["messages"][-1].content)

    assert reply.startswith("I'm sorry about this. From our help article")
    assert reply.endswith(HANDOFF_OFFER)
    # A "yes" to it is a hand-off.
    said = [HumanMessage(upset), AIMessage(reply), HumanMessage("yes please")]
    assert semantic_route(said) == Route.HANDOFF
    assert not calm.endswith(HANDOFF_OFFER)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("earlier", "text", "unwanted"),
    [
        # The Cinnamon Creamed Honey came first; then, all five found were manuka.
        (("what's good for breakfast?",), "something without cinnamon", "cinnamon"),
        ((), "honey for toast, no manuka please", "manuka"),
    ],
)
def test_products_the_customer_does_not_want_are_left_out(
    demo_shop, earlier: tuple[str, ...], text: str, unwanted: str
) -> None:
    reply = str(_offline_turn(text, earlier=earlier)["messages"][-1].content)

    assert reply.startswith("Here's what I'd suggest from our shop:")
    assert unwanted not in reply.lower()


@pytest.mark.django_db
def test_no_in_a_question_asks_for_what_it_names(demo_shop) -> None:
    reply = str(_offline_turn("is there no manuka under £40?")["messages"][-1].content)

    assert "Manuka" in reply


@pytest.mark.django_db
def test_a_product_free_of_what_is_not_wanted_stays(demo_shop) -> None:
    spray = {"name": "Alcohol-Free Propolis Throat Spray", "stock": 5, "in_stock": True,
             "summary": "A spray.", "price": "8.50", "currency": "GBP"}  # fmt: skip

    reply = compose_product_reply([spray], latest="a gift without alcohol")

    assert "Alcohol-Free Propolis Throat Spray" in reply


@pytest.mark.django_db
def test_a_question_no_article_answers_gets_the_couldnt_find_reply(demo_shop) -> None:
    question = "Who won the football world cup in 1966?"
    articles = json.loads(search_knowledge.invoke({"query": question}))["articles"]

    reply = compose_article_reply(articles, question)

    assert articles  # the search always returns its nearest articles...
    assert reply.startswith(NO_ANSWER)  # ...but none of them answers this


@pytest.mark.django_db
def test_a_misspelt_question_is_answered_as_meant(demo_shop) -> None:
    # Read as typed, the tracking article's nearest passage was under the floor.
    question = "where is my parcle, I need the traking number"
    articles = json.loads(search_knowledge.invoke({"query": question}))["articles"]

    reply = compose_article_reply(articles, question)

    assert reply.startswith('From our help article "Tracking your order"'), reply


@pytest.mark.django_db
def test_honey_that_has_set_is_not_said_to_have_gone_off(demo_shop) -> None:
    # The shelf-life article comes first, at its paragraph on honey past its best, which ended
    # "it should be thrown away" with no word on crystallising.
    question = "My honey has gone all solid and grainy, has it gone off?"
    articles = json.loads(search_knowledge.invoke({"query": question}))["articles"]

    reply = compose_article_reply(articles, question)

    assert "Crystallised honey has not gone off" in reply


@pytest.mark.django_db
def test_a_non_health_article_is_quoted_at_its_best_paragraph(demo_shop) -> None:
    question = "How much does next-day delivery cost?"
    articles = json.loads(search_knowledge.invoke({"query": question}))["articles"]

    reply = compose_article_reply(articles, question)

    assert '"UK delivery times and costs"' in reply
    assert "UK Next-Day Delivery costs £6.95." in reply
    assert "UK Standard Delivery costs £3.95" not in reply


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("question", "article", "answer", "not_quoted"),
    [
        # Two words each with the Highlands paragraph ("deliveries", "take"), one with this.
        ("How long does UK delivery take?", UK_DELIVERY, "2-4 working days", "Highlands"),
        ("How long does delivery take?", UK_DELIVERY, "2-4 working days", "Highlands"),
        ("Do you deliver to Northern Ireland?", UK_DELIVERY, "Northern Ireland",
         "UK Standard Delivery"),
        # "Enter your discount code" came first while this paragraph said only "your code".
        ("my discount code isn't working", "Discount codes and offers", "has not expired",
         "Enter your discount code"),
        # Under the 0.4 floor against every passage (0.33) until the title asked it.
        ("where are you based?", FARM_SHOP, "near Helmsley", "Thursday to Saturday"),
        # The opening shared the title's words with it ("beeswax", "wraps"), which say which
        # article, not which paragraph.
        ("How do I clean my beeswax wraps?", "Caring for your beeswax wraps",
         "wash your wrap in cool water", "organic cotton"),
    ],
)  # fmt: skip
def test_a_non_health_article_is_quoted_at_the_paragraph_nearest_in_meaning(
    demo_shop, question: str, article: str, answer: str, not_quoted: str
) -> None:
    articles = json.loads(search_knowledge.invoke({"query": question}))["articles"]

    reply = compose_article_reply(articles, question)

    assert f'"{article}"' in reply
    assert answer in reply
    assert not_quoted not in reply


@pytest.mark.django_db
def test_the_paragraph_naming_what_the_question_names_is_quoted(demo_shop) -> None:
    # By meaning alone "We do not accept cheques, cash on delivery..." came first (0.49 to 0.43).
    question = "can I pay with PayPal?"
    articles = json.loads(search_knowledge.invoke({"query": question}))["articles"]

    reply = compose_article_reply(articles, question)

    assert reply.startswith('From our help article "Payment methods"'), reply
    assert "Apple Pay, Google Pay and PayPal" in reply


@pytest.mark.django_db
def test_while_the_embedding_api_is_away_the_paragraph_sharing_most_words_is_quoted(
    demo_shop, embedding_api_down
) -> None:
    question = "How much does next-day delivery cost?"
    article = KnowledgeArticle.objects.get(title="UK delivery times and costs")

    reply = compose_article_reply([article_data(article, question=question)], question)

    assert "UK Next-Day Delivery costs £6.95." in reply
    assert "UK Standard Delivery costs £3.95" not in reply


@pytest.mark.django_db
def test_while_the_embedding_api_is_away_relevance_is_judged_by_shared_words(
    demo_shop, embedding_api_down
) -> None:
    def reply(question: str) -> str:
        articles = KnowledgeArticle.objects.order_by("slug")
        found = [article_data(article, question=question) for article in articles]
        return compose_article_reply(found, question)

    off_topic = reply("Who won the football world cup in 1966?")
    allergy = reply("I have a nut allergy, is your honey safe?")

    assert off_topic.startswith(NO_ANSWER)
    assert allergy.startswith("From our help article")


@pytest.mark.django_db
def test_saying_which_product_a_complaint_is_about_gets_no_product_list(demo_shop) -> None:
    # It was routed to sales by the product it names, and answered with acacia honeys to buy.
    complaint = "my jar of honey arrived broken, I want a refund"

    state = _offline_turn("it was the acacia honey", earlier=(complaint,))

    reply = str(state["messages"][-1].content)
    assert state["route"] == Route.SUPPORT
    assert reply.startswith('From our help article "Damaged or broken jars"')
    assert reply.endswith(HANDOFF_OFFER)
    assert "Acacia Raw Honey" not in reply


@pytest.mark.django_db
def test_a_cheaper_one_is_cheaper_than_every_product_listed_and_keeps_the_subject(
    demo_shop,
) -> None:
    # It sorted the earlier subject's category by price: the cheapest gift sets, none about
    # cheese, one of them dearer than a product listed.
    first = _offline_turn("a gift for my dad who loves cheese")
    listed = _listed_prices(str(first["messages"][-1].content))
    history = [*first["messages"], HumanMessage("and a cheaper one?")]
    conversation = ConversationFactory.create()
    config = {"configurable": {"customer_id": conversation.owner_id,
                               "conversation_id": str(conversation.id)}}  # fmt: skip

    second = build_graph(provider=OfflineProvider()).invoke({"messages": history}, config)

    cheaper = _listed_prices(str(second["messages"][-1].content))
    assert len(listed) == 3
    assert cheaper
    assert set(cheaper).isdisjoint(listed)
    assert max(cheaper.values()) < min(listed.values())
    assert second["tool_calls"][-1]["args"]["max_price"] == float(min(listed.values()) - _PENNY)
    assert "Chestnut Raw Honey 340g" in cheaper  # the hamper's cheese honey


_PENNY = Decimal("0.01")


def _listed_prices(reply: str) -> dict[str, Decimal]:
    lines = re.findall(r"^- (.+?) — £([\d.]+)", reply, re.MULTILINE)
    return {name: Decimal(price) for name, price in lines}


# --- messages about something other than the shop ---------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text", ["what's the weather in London?", "tell me a joke", "who is the prime minister?"]
)
def test_a_message_about_something_else_gets_no_product_list(demo_shop, text: str) -> None:
    # Each was answered "Here's what I'd suggest from our shop:" and three products.
    state = _offline_turn(text)

    assert state["route"] == Route.SALES
    assert state["messages"][-1].content == OFF_TOPIC_REPLY


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [
        "what does MGO mean?",  # as far in meaning, but MGO is in products' names
        "my promo code doesn't work",  # the shop message nearest the floor
        "I'd like the 1kg instead of the 500g",
    ],
)
def test_a_shop_question_far_from_the_examples_is_not_taken_for_another_subject(
    demo_shop, text: str
) -> None:
    assert not off_topic(text)


@pytest.mark.django_db
def test_while_the_embedding_api_is_away_no_message_is_taken_for_another_subject(
    demo_shop, embedding_api_down
) -> None:
    assert not off_topic("what's the weather in London?")


# --- routing while the embedding API is away --------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("message", "route"),
    [
        # Not "I want to speak to a human": that is a hand-off before the API is asked.
        ("I need a human", Route.HANDOFF),
        ("Can someone from your staff help me?", Route.HANDOFF),
        ("I'd like to make a complaint", Route.HANDOFF),
        ("can I give honey to my baby", Route.SUPPORT),
        ("How long does delivery take?", Route.SUPPORT),
        ("Can I get a refund on a broken jar?", Route.SUPPORT),
        ("Is royal jelly safe when pregnant?", Route.SUPPORT),
        ("My honey has crystallised", Route.SUPPORT),
        ("Do you have a dark honey for baking?", Route.SALES),
    ],
)
def test_routing_falls_back_to_keywords_while_the_embedding_api_is_away(
    embedding_api_down: FakeOpenAIServer, message: str, route: Route
) -> None:
    assert semantic_route([HumanMessage(message)]) == route
    assert embedding_api_down.embedding_requests()  # the API was asked, and failed


@pytest.mark.django_db
def test_asking_for_a_human_during_an_embedding_outage_hands_off(embedding_api_down) -> None:
    conversation = ConversationFactory.create()

    state = _offline_turn("I want to speak to a human", conversation)

    conversation.refresh_from_db()
    assert state["route"] == Route.HANDOFF
    assert state["messages"][-1].content == HANDOFF_REPLY
    assert conversation.status == Conversation.Status.NEEDS_HUMAN


@pytest.mark.django_db
def test_a_baby_question_during_an_embedding_outage_gets_the_warning(
    demo_shop, embedding_api_down
) -> None:
    state = _offline_turn("can I give honey to my baby")

    assert state["route"] == Route.SUPPORT
    assert INFANT_WARNING in str(state["messages"][-1].content)


# --- budgets ----------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("message", "low", "high", "offered"),
    [
        ("A luxury hamper under £1,000 please", 0, 999.99, "Honey & Cheese Pairing Hamper"),
        ("a gift for my mum around 25 pounds", 18.75, 31.25, "British Honey Tasting Trio"),
        ("beeswax candles, my budget is 10", 0, 10, "Rolled Beeswax Dinner Candles (Pair)"),
    ],
)
def test_the_price_a_customer_states_bounds_the_products_offered(
    demo_shop, message: str, low: float, high: float, offered: str
) -> None:
    reply = str(_offline_turn(message)["messages"][-1].content)

    prices = [Decimal(price) for price in re.findall(r" — £(\d+\.\d{2}) ", reply)]
    assert offered in reply
    assert prices
    assert all(Decimal(str(low)) <= price <= Decimal(str(high)) for price in prices), reply


@pytest.mark.django_db
@pytest.mark.parametrize("question", ["is your honey raw?", "is your honey pasteurised?"])
def test_how_the_honey_is_made_is_answered_from_the_article_not_with_products(
    demo_shop, question: str
) -> None:
    state = _offline_turn(question)

    reply = str(state["messages"][-1].content)
    assert state["route"] == Route.SUPPORT
    assert reply.startswith('From our help article "Raw honey vs pasteurised honey"'), reply
    assert "£" not in reply


@pytest.mark.django_db
@pytest.mark.parametrize("question", ["do you sell raw honey?", "cheapest raw honey you have"])
def test_asking_for_raw_honey_is_still_answered_with_products(demo_shop, question: str) -> None:
    state = _offline_turn(question)

    assert state["route"] == Route.SALES
    assert re.search(r"^- .+ — £", str(state["messages"][-1].content), re.MULTILINE)


# --- follow-ups -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_follow_up_about_products_keeps_to_the_earlier_question_s_subject(demo_shop) -> None:
    state = _offline_turn("do you have a cheaper one?", earlier=("What's your strongest manuka?",))

    names = re.findall(r"^- (.+?) — £", str(state["messages"][-1].content), re.MULTILINE)
    assert state["route"] == Route.SALES
    assert names
    assert all("Manuka" in name for name in names), names


@pytest.mark.django_db
def test_a_follow_up_stating_only_a_price_keeps_to_the_earlier_subject(demo_shop) -> None:
    state = _offline_turn("anything under £20?", earlier=("what manuka do you have?",))

    reply = str(state["messages"][-1].content)
    prices = [Decimal(price) for price in re.findall(r"^- .+? — £(\d+\.\d\d)", reply, re.MULTILINE)]
    assert state["route"] == Route.SALES
    assert prices
    assert max(prices) <= Decimal("19.99")
    assert all("Manuka" in name for name in _names(state)), _names(state)


@pytest.mark.django_db
def test_a_follow_up_asking_only_for_a_bigger_jar_sorts_the_earlier_subject(demo_shop) -> None:
    state = _offline_turn("in a bigger jar?", earlier=("what's good for baking?",))

    # Not the wedding favour jars, named "jars": the biggest of the raw honeys for baking.
    assert state["route"] == Route.SALES
    assert _names(state)[0] == "Wildflower Raw Honey 1kg", _names(state)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("earlier", "text", "named"),
    [
        ("What's your strongest manuka?", "and the wildflower 1kg?", "Wildflower Raw Honey 1kg"),
        ("do you have comb honey?", "and bee pollen?", "Bee Pollen"),
        # The earlier order carries over: the cheapest of the heather honeys, the biggest (and
        # only) heather raw honey.
        ("what's your cheapest manuka?", "and the heather honey?", "Creamed Heather Honey 250g"),
        ("what's your biggest raw honey?", "and the heather?", "Heather Raw Honey 340g"),
    ],
)
def test_a_follow_up_naming_other_products_is_answered_about_them(
    demo_shop, earlier: str, text: str, named: str
) -> None:
    state = _offline_turn(text, earlier=(earlier,))

    assert state["route"] == Route.SALES
    assert named in _names(state)[0], _names(state)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("text", "earlier"),
    [("do you have UMF 15?", ()), ("what about the UMF 15+?", ("What's your strongest manuka?",))],
)
def test_a_question_naming_a_grade_is_answered_with_that_product(
    demo_shop, text: str, earlier: tuple[str, ...]
) -> None:
    state = _offline_turn(text, earlier=earlier)

    assert state["route"] == Route.SALES
    assert _names(state)[0] == "Manuka Honey UMF 15+ 250g", _names(state)


@pytest.mark.django_db
def test_a_follow_up_about_delivery_is_answered_from_the_delivery_articles(demo_shop) -> None:
    state = _offline_turn("and to France?", earlier=("how long does delivery take?",))

    reply = str(state["messages"][-1].content)
    assert state["route"] == Route.SUPPORT
    assert reply.startswith('From our help article "International shipping'), reply
    assert "5-7 working days" in reply


@pytest.mark.django_db
def test_a_follow_up_s_own_words_pick_the_paragraph_quoted(demo_shop) -> None:
    state = _offline_turn("and to Northern Ireland?", earlier=("how long does delivery take?",))

    reply = str(state["messages"][-1].content)
    assert reply.startswith('From our help article "UK delivery times and costs"'), reply
    assert "Northern Ireland" in reply


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("earlier", "text", "article", "quoted"),
    [
        (
            "what's your cheapest manuka?",
            "Also, can I give honey to my baby?",
            "Honey and babies under 12 months",
            INFANT_WARNING,
        ),
        # Read as "is it safe for my baby? What's your manuka? strongest", no article answered.
        (
            "what's your strongest manuka?",
            "is it safe for my baby?",
            "Honey and babies under 12 months",
            INFANT_WARNING,
        ),
        ("what's your cheapest manuka?", "or can I pay with paypal?", "Payment methods", "PayPal"),
    ],
    ids=["also baby after manuka", "is it safe after manuka", "paypal after manuka"],
)
def test_a_follow_up_naming_a_health_or_policy_subject_is_answered_about_that_subject(
    demo_shop, earlier: str, text: str, article: str, quoted: str
) -> None:
    # Read with the earlier question, these were sent to sales and answered with manuka.
    state = _offline_turn(text, earlier=(earlier,))

    reply = str(state["messages"][-1].content)
    assert state["route"] == Route.SUPPORT
    assert reply.startswith(f'From our help article "{article}"'), reply
    assert quoted in reply


@pytest.mark.django_db
def test_is_it_safe_for_my_baby_after_a_list_of_manuka_quotes_the_babies_article(
    demo_shop,
) -> None:
    # Asking whether the manuka just listed is safe for a baby: the answer is that no honey is,
    # under 12 months.
    conversation = ConversationFactory.create()
    first = _offline_turn("what's your strongest manuka?", conversation)
    listed = str(first["messages"][-1].content)
    assert _names(first)

    config = {"configurable": {"customer_id": conversation.owner_id,
                               "conversation_id": str(conversation.id)}}  # fmt: skip
    history = [
        HumanMessage("what's your strongest manuka?"),
        AIMessage(listed),
        HumanMessage("is it safe for my baby?"),
    ]
    state = build_graph(provider=OfflineProvider()).invoke({"messages": history}, config)

    reply = str(state["messages"][-1].content)
    assert state["route"] == Route.SUPPORT
    assert reply.startswith('From our help article "Honey and babies under 12 months"'), reply
    assert INFANT_WARNING in reply


@pytest.mark.django_db
def test_a_safety_question_after_a_gift_question_gets_no_gift_list(demo_shop) -> None:
    state = _offline_turn(
        "is this safe during pregnancy?", earlier=("what would make a nice gift for my mum?",)
    )

    assert state["route"] == Route.SUPPORT
    assert _names(state) == []


def _names(state: dict[str, Any]) -> list[str]:
    return re.findall(r"^- (.+?) — £", str(state["messages"][-1].content), re.MULTILINE)


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["how much is it?", "is it in stock?"])
def test_a_question_about_it_after_a_list_is_answered_about_the_first_product(
    demo_shop, text: str
) -> None:
    conversation = ConversationFactory.create()
    first = _offline_turn("What's your strongest manuka?", conversation)
    listed = str(first["messages"][-1].content)
    strongest = _names(first)[0]
    assert "currently sold out" in listed.splitlines()[1]  # the demo shop's UMF 20+

    config = {"configurable": {"customer_id": conversation.owner_id,
                               "conversation_id": str(conversation.id)}}  # fmt: skip
    history = [HumanMessage("What's your strongest manuka?"), AIMessage(listed), HumanMessage(text)]
    state = build_graph(provider=OfflineProvider()).invoke({"messages": history}, config)

    assert _names(state)[0] == strongest


# --- stock questions --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("question", "sold_out", "no_date"),
    [
        ("Is the lime blossom honey in stock?", "Lime Blossom Raw Honey 340g", False),
        ("When will the Manuka UMF 20+ be back in stock?", "Manuka Honey UMF 20+ 250g", True),
        # Without the word "stock": both went to support ("couldn't find", the shelf-life
        # article).
        ("is the UMF 20+ sold out?", "Manuka Honey UMF 20+ 250g", False),
        ("when will the lime blossom honey be back?", "Lime Blossom Raw Honey 340g", True),
        ("is the beekeeping starter kit available", STARTER_KIT, False),
    ],
)
def test_asking_whether_a_sold_out_product_is_in_stock_is_told_it_is_sold_out(
    demo_shop, question: str, sold_out: str, no_date: bool
) -> None:
    # Searched for in-stock products only, the reply listed others and never named this one.
    state = _offline_turn(question)

    reply = str(state["messages"][-1].content)
    lines = reply.splitlines()
    assert state["route"] == Route.SALES
    assert lines[0].startswith(f"Sorry, the {sold_out} is sold out at the moment"), reply
    assert ("I don't have a date for when it will be back in stock" in lines[0]) is no_date
    assert _names(state)[0] == sold_out
    assert "(currently sold out)" in lines[1]
    assert len(_names(state)) > 1
    assert all(re.search(r" \(\d+ in stock\)\. ", line) for line in lines[3:]), reply


@pytest.mark.django_db
def test_asking_which_honeys_are_in_stock_lists_only_in_stock_products(demo_shop) -> None:
    state = _offline_turn("which honeys do you have in stock?")

    reply = str(state["messages"][-1].content)
    assert reply.startswith("Here's what I'd suggest from our shop:"), reply
    assert _names(state)
    assert "sold out" not in reply
    assert not set(_names(state)) & set(
        Product.objects.filter(stock=0).values_list("name", flat=True)
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("question", "named"),
    [
        # The words "in stock", in no product's name, kept these from matching it exactly: the
        # UMF 10+, the Classic Creamed Honey and the Cacao Creamed Honey came first.
        ("Is the Manuka UMF 15+ in stock?", "Manuka Honey UMF 15+ 250g"),
        ("Is the wildflower honey 1kg in stock?", "Wildflower Raw Honey 1kg"),
        ("Is the cinnamon creamed honey in stock?", "Cinnamon Creamed Honey 250g"),
    ],
)
def test_asking_whether_an_in_stock_product_is_in_stock_is_answered_with_it_first(
    demo_shop, question: str, named: str
) -> None:
    state = _offline_turn(question)

    reply = str(state["messages"][-1].content)
    assert reply.startswith("Here's what I'd suggest from our shop:"), reply
    assert _names(state)[0] == named, _names(state)
    assert re.search(r" \(\d+ in stock\)\. ", reply.splitlines()[1])
