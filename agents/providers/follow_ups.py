"""A customer's short follow-up, read with the question it follows (the offline assistant).

"do you have a cheaper one?" after "what's your strongest manuka?" asks about manuka, and "and to
Ireland?" after "how long does delivery take?" asks about delivery. A model reads the history for
that; the offline assistant routes and searches by one text, so a follow-up is joined with the
subject of the question before it: that question without its price phrases and order words, so
"and the biggest?" after "your cheapest honey?" asks for the biggest, not for both.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from langchain_core.messages import BaseMessage, HumanMessage

from catalog.query_intent import query_subject

FOLLOW_UP_MAX_WORDS = 8
# Words that lean on an earlier question: "and to Ireland?", "is it safe for babies?", "a
# cheaper one", "anything bigger?".
FOLLOW_UP = re.compile(
    r"^(?:and|or|also|what about|how about|what if|same)\b"
    r"|^(?:is|are|does|do|can|will|would|how much is|how much are|how big is)\s+"
    r"(?:it|they|that|this|those|these)\b"
    r"|\b(?:a|an|the|another|other|\w+er|\w+est)\s+ones?\b"
    r"|\b(?:anything|something)\s+(?:cheaper|bigger|smaller|larger|stronger|milder|else|similar)\b",
    re.IGNORECASE,
)
# How many questions back a chain of follow-ups is read ("and the biggest?", "and in stock?").
FOLLOW_UP_DEPTH = 3


def is_follow_up(text: str) -> bool:
    return len(text.split()) <= FOLLOW_UP_MAX_WORDS and FOLLOW_UP.search(text.strip()) is not None


def customer_question(messages: Sequence[BaseMessage]) -> str:
    """The latest customer message, followed by the subject of the one before it when it is a
    follow-up."""
    questions = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
    return _read_with_context(questions, len(questions) - 1, FOLLOW_UP_DEPTH) if questions else ""


def _read_with_context(questions: list[str], index: int, depth: int) -> str:
    question = questions[index]
    if index == 0 or depth == 0 or not is_follow_up(question):
        return question
    earlier = _read_with_context(questions, index - 1, depth - 1)
    return f"{question} {query_subject(earlier)}".strip()
