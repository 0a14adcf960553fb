import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents.providers.follow_ups import customer_question, is_follow_up


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
    ],
)
def test_a_question_standing_on_its_own_is_not_a_follow_up(text: str) -> None:
    assert not is_follow_up(text)


@pytest.mark.parametrize(
    ("questions", "read_as"),
    [
        (
            ["What's your strongest manuka?", "do you have a cheaper one?"],
            "do you have a cheaper one? What's your manuka?",
        ),
        (["your cheapest honey under £10?", "and the biggest?"], "and the biggest? your honey ?"),
        (
            ["how long does delivery take?", "and to Ireland?"],
            "and to Ireland? how long does delivery take?",
        ),
        (
            ["manuka please", "anything bigger?", "and in stock?"],
            "and in stock? anything ? manuka please",
        ),
        (["manuka please", "do you sell beeswax candles?"], "do you sell beeswax candles?"),
        (["and to Ireland?"], "and to Ireland?"),
    ],
)
def test_a_follow_up_is_read_with_the_subject_of_the_question_before_it(
    questions: list[str], read_as: str
) -> None:
    assert customer_question(_conversation(*questions)) == read_as
