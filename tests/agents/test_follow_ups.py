import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents.providers.follow_ups import cheaper_than_listed, customer_question, is_follow_up
from agents.providers.recommendations import recommendation_line
from tests.catalog.factories import ProductFactory


def _conversation(*questions: str) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for question in questions:
        messages += [HumanMessage(question), AIMessage("(a reply)")]
    return messages[:-1]


@pytest.mark.parametrize(
    "text",
    [
        "and to Ireland?",
        "what about the UMF 15+?",
        "do you have a cheaper one?",
        "the biggest ones?",
        "is it safe for babies?",
        "how much is it?",
        "anything bigger?",
        # Only a price or an order.
        "something under £20?",
        "do you have anything cheaper?",
        "what's the biggest?",
        "which is the mildest?",
        "in a bigger jar?",
        "how much is the 1kg one?",
        # How to do something with it, or how long it lasts.
        "how long do they last?",
        "how do I stop it smoking?",
        "how should I store them?",
        "something without cinnamon",
        # When it will be, or what to do with them (each read alone before).
        "when will it be back in",
        "can I put them in the dishwasher",
        # A question about it after a word asking what, where or when: each was read alone, and
        # answered with a product list or "couldn't find".
        "what would I eat it with?",
        "where should I put it?",
        "when should I take it?",
        "what do people use them for?",
    ],
)
def test_a_message_leaning_on_an_earlier_question_is_a_follow_up(text: str) -> None:
    assert is_follow_up(text)


@pytest.mark.parametrize(
    "text",
    [
        "do you sell beeswax candles?",
        "how long does delivery take?",
        "I want to talk to a person",
        "and I would also like to know how you look after your bees in winter?",
        "honey under £10",
        "cheapest manuka",
        "something for under 12 months?",
        "how do I store honey?",
        "how long does a refund take?",
    ],
)
def test_a_question_standing_on_its_own_is_not_a_follow_up(text: str) -> None:
    assert not is_follow_up(text)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("questions", "read_as"),
    [
        (
            ["What's your strongest manuka?", "do you have a cheaper one?"],
            "cheaper What's your manuka?",
        ),
        (
            ["your cheapest honey under £10?", "and the biggest?"],
            "and the biggest? your honey ? under £10",
        ),
        (
            ["how long does delivery take?", "and to Ireland?"],
            "and to Ireland? how long does delivery take?",
        ),
        (
            ["manuka please", "anything bigger?", "and in stock?"],
            "and in stock? manuka please bigger",
        ),
        # The earlier price and order carry over where the follow-up says none of its own.
        (
            ["what's your cheapest manuka?", "and in stock?"],
            "and in stock? what's your manuka? cheapest",
        ),
        (["manuka under £30", "is it raw?"], "is it raw? manuka under £30"),
        (
            ["a gift for my mum who loves tea", "something under £20?"],
            "under £20 a gift for my mum who loves tea",
        ),
        # Only a price or an order: the rest of its words name nothing ("jar").
        (
            ["what's good for baking?", "in a bigger jar?", "how much is the 1kg one?"],
            "how much is the 1kg one? what's good for baking? bigger",
        ),
        (["manuka please", "do you sell beeswax candles?"], "do you sell beeswax candles?"),
        (["and to Ireland?"], "and to Ireland?"),
    ],
)
def test_a_follow_up_is_read_with_the_subject_of_the_question_before_it(
    questions: list[str], read_as: str
) -> None:
    assert customer_question(_conversation(*questions)) == read_as


@pytest.mark.django_db
def test_a_question_about_it_is_read_with_the_earlier_subject_whatever_product_names_hold() -> None:
    # "free" is in this name: "is it free?" was read alone, as naming products of its own, and
    # answered with a product list after a question about collecting an order.
    ProductFactory.create(name="Alcohol-Free Propolis Throat Spray 20ml")

    read_as = customer_question(_conversation("can I collect my order there?", "is it free?"))

    assert read_as == "is it free? can I collect my order there?"
    # A follow-up naming products in other words is still read alone.
    ProductFactory.create(name="Heather Raw Honey 340g", floral_source="Heather")
    other = customer_question(_conversation("what's your cheapest manuka?", "and the heather?"))
    assert other == "and the heather? cheapest"


MANUKA_LIST = "\n".join(
    [
        "Here's what I'd suggest from our shop:",
        recommendation_line("Manuka Honey UMF 20+ 250g", "£89.00 (currently sold out). Rare."),
        recommendation_line("Manuka Honey UMF 15+ 250g", "£44.95 (51 in stock). Strong."),
    ]
)


@pytest.mark.parametrize(
    ("earlier", "text"),
    [
        # Read with "my jar ... broken", it found the wrong-items article.
        ("my jar of honey arrived broken, I want a refund", "it was the acacia honey"),
        ("do you have manuka?", "it's for my mum"),
        ("What's your strongest manuka?", "they\u2019re for my dad"),
    ],
)
def test_saying_which_it_was_asks_the_question_before_it_again(earlier: str, text: str) -> None:
    after_a_list = [HumanMessage(earlier), AIMessage(MANUKA_LIST), HumanMessage(text)]

    assert is_follow_up(text)
    assert customer_question(_conversation(earlier, text)) == earlier
    assert customer_question(after_a_list) == earlier


@pytest.mark.parametrize(
    ("text", "listed"),
    [
        ("and a cheaper one?", ["Manuka Honey UMF 20+ 250g", "Manuka Honey UMF 15+ 250g"]),
        ("anything cheaper?", ["Manuka Honey UMF 20+ 250g", "Manuka Honey UMF 15+ 250g"]),
        # A price of its own is the customer's; a cheaper kind of thing is a question alone.
        ("a cheaper one under £20?", []),
        ("which is your cheapest raw honey?", []),
    ],
)
def test_asking_for_a_cheaper_one_after_a_list_names_the_products_listed(
    text: str, listed: list[str]
) -> None:
    messages = [HumanMessage("What's your strongest manuka?"), AIMessage(MANUKA_LIST)]

    assert cheaper_than_listed([*messages, HumanMessage(text)]) == listed
    # Not after a reply listing nothing.
    assert cheaper_than_listed(_conversation("What's your strongest manuka?", text)) == []


@pytest.mark.parametrize("text", ["how much is it?", "is it in stock?", "how much is that one?"])
def test_a_follow_up_about_one_thing_asks_about_the_first_product_just_listed(text: str) -> None:
    messages = [HumanMessage("What's your strongest manuka?"), AIMessage(MANUKA_LIST)]

    assert customer_question([*messages, HumanMessage(text)]) == (
        f"{text} Manuka Honey UMF 20+ 250g"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("reply", "text", "read_as"),
    [
        # Several things, or a kind of thing: the earlier question's subject (and its order).
        (
            MANUKA_LIST,
            "are they in stock?",
            "are they in stock? What's your manuka? strongest",
        ),
        (
            MANUKA_LIST,
            "do you have a cheaper one?",
            "cheaper What's your manuka?",
        ),
        # No product listed (an article quoted).
        (
            "From our help article ...",
            "is it raw?",
            "is it raw? What's your manuka? strongest",
        ),
        # Not a follow-up at all.
        (MANUKA_LIST, "do you sell beeswax candles?", "do you sell beeswax candles?"),
    ],
)
def test_other_messages_after_a_list_are_read_as_before(
    reply: str, text: str, read_as: str
) -> None:
    messages = [HumanMessage("What's your strongest manuka?"), AIMessage(reply), HumanMessage(text)]

    assert customer_question(messages) == read_as


@pytest.mark.django_db
def test_only_the_reply_to_the_previous_message_names_the_product() -> None:
    messages = [
        HumanMessage("What's your strongest manuka?"),
        AIMessage(MANUKA_LIST),
        HumanMessage("how long does delivery take?"),
        AIMessage("From our help article ..."),
        HumanMessage("is it free?"),
    ]

    assert customer_question(messages) == "is it free? how long does delivery take?"


@pytest.mark.parametrize(
    ("earlier", "text"),
    [
        ("what's your cheapest manuka?", "Also, can I give honey to my baby?"),
        ("what's your strongest manuka?", "is it safe for my baby?"),
        ("a gift for my mum", "is this safe during pregnancy?"),
        ("what's your cheapest manuka?", "or can I pay with paypal?"),
        ("manuka please", "and is it ok for diabetics?"),
        ("what's your strongest manuka?", "and can I return it?"),
    ],
)
def test_a_follow_up_naming_a_health_or_policy_subject_is_read_alone(
    earlier: str, text: str
) -> None:
    assert customer_question(_conversation(earlier, text)) == text


def test_a_question_about_it_naming_a_health_subject_is_not_read_with_the_product_listed() -> None:
    messages = [
        HumanMessage("What's your strongest manuka?"),
        AIMessage(MANUKA_LIST),
        HumanMessage("is it safe for my baby?"),
    ]

    assert customer_question(messages) == "is it safe for my baby?"


def _listed(*names: str) -> AIMessage:
    lines = [recommendation_line(name, "£10.00 (5 in stock). Lovely.") for name in names]
    return AIMessage("\n".join(["Here's what I'd suggest from our shop:", *lines]))


WEDDING_JARS = "Wedding Favour Honey Jars (Set of 24)"
GIFT_SETS = _listed(WEDDING_JARS, "Hot Honey Lovers Gift Set")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text", ["how many jars are in the set?", "how big is each set?", "I'd like the set"]
)
def test_saying_the_kind_of_thing_listed_first_asks_about_it(text: str) -> None:
    # Read alone, "how many jars are in the set?" listed the Rapeseed Set Honey first.
    messages = [HumanMessage("do you do wedding favours?"), GIFT_SETS, HumanMessage(text)]

    assert customer_question(messages) == f"{text} {WEDDING_JARS}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "text",
    [
        # Another thing of that kind, or a help-centre subject: read as before.
        "what about the tealight set?",
        "can the set be delivered by Friday?",
        "can I return the set?",
    ],
)
def test_another_thing_of_that_kind_or_a_help_centre_subject_is_not_asked_of_it(
    text: str,
) -> None:
    messages = [HumanMessage("do you do wedding favours?"), GIFT_SETS, HumanMessage(text)]

    assert WEDDING_JARS not in customer_question(messages)


@pytest.mark.django_db
def test_a_question_about_them_asks_about_the_one_product_named_before(demo_shop) -> None:
    chunks = "Raw Propolis Chunks 20g"
    named = [HumanMessage("I'd like the raw propolis chunks"), _listed(chunks, "Propolis Tincture")]
    kind = [HumanMessage("do you sell propolis?"), _listed(chunks, "Propolis Tincture")]
    text = "what do people use them for?"

    assert customer_question([*named, HumanMessage(text)]) == f"{text} {chunks}"
    # After a kind of thing, "them" are the things of that kind, as before.
    assert chunks not in customer_question([*kind, HumanMessage(text)])
    # Nor a help-centre subject: read with the product's name, its articles were not found.
    assert chunks not in customer_question([*named, HumanMessage("are they safe for children?")])
