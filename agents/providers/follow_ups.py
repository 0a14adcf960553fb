"""A customer's short follow-up, read with the question it follows (the offline assistant).

"do you have a cheaper one?" after "what's your strongest manuka?" asks about manuka, "anything
under £20?" after "a gift for my mum" about a gift, and "and to Ireland?" after "how long does
delivery take?" about delivery. A model reads the history for that; the offline assistant routes
and searches by one text, so a follow-up is joined with the subject of the question before it:
that question without its price phrases and order words. Those carry over only where the
follow-up says none of its own: "and in stock?" after "your cheapest manuka?" asks for the
cheapest, "and the biggest?" after "your cheapest honey?" for the biggest, not for both; one
that asks only a price or an order ("in a bigger jar?") is read as those words and the earlier
subject. A follow-up about one thing ("how much is it?", "is that one in stock?") right after
the assistant listed products asks about the first of them, and is joined with its name instead.
One that names products of its own, other than the earlier subject's ("and the heather honey?"
after "your cheapest manuka?"), is read with the earlier price and order alone; a question about
"it" ("is it free?") names none, whatever product names hold its words. One that names a health
or safety subject or a shop policy of its own ("is it safe for my baby?", "or can I pay with
PayPal?") is read alone: joined with "your strongest manuka?", it was routed to sales and
answered with manuka, or searched for in the help centre as manuka and not found. One saying
which thing it was ("it was the acacia honey" after "my jar arrived broken, I want a refund")
asks the question before it again, and is routed as that was.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import takewhile

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agents.providers.recommendations import recommended_names
from agents.providers.subjects import OWN_SUBJECT, SUPPORT_WORDS
from agents.providers.words import GRAMMAR_WORDS, SHOP_WORDS, WORD, stem
from catalog.query_intent import (
    intent_carried_over,
    intent_words,
    query_intent_read,
    query_subject,
)
from catalog.query_keywords import query_words
from catalog.selectors import product_named_in, products_are_named

FOLLOW_UP_MAX_WORDS = 8
# A question about what was just talked of: "is it safe for babies?", "are they in stock?",
# "how long do they last?", "how do I stop it smoking?" (those two, after beeswax wraps and
# candles were listed, were read alone and got "couldn't find").
ASKS_ABOUT_IT = re.compile(
    r"^(?:(?:is|are|does|do|can|will|would|how much is|how much are|how big is)\s+"
    # "when will it be back in?" after a sold-out product, "can I put them in the dishwasher?"
    # after beeswax wraps: read alone, "couldn't find" and the refunds article.
    r"|when\s+(?:will|is|are|does|do|did|can)\s+"
    r"|(?:can|could|should|do|may|shall)\s+(?:i|we)\s+\w+\s+"
    r"|how\s+(?:long\s+)?(?:do|does|will|can|should|would)\s+(?:(?:i|you|we)\s+\w+\s+)?"
    # "what would I eat it with?", "where should I put it?", "when should I take it?" after one
    # product was listed: read alone, a product list and "couldn't find".
    r"|(?:what|where|when|how)\s+(?:would|should|could|can|do|does|will)\s+(?:i|we|you|people)"
    r"\s+\w+\s+)"
    r"(?:it|they|them|that|this|those|these)\b",
    re.IGNORECASE,
)
# Saying which it was: "it was the acacia honey" after "my jar arrived broken, I want a refund"
# was read alone and answered with acacia honeys to buy.
SAYS_WHAT_IT_WAS = re.compile(
    r"^(?:it|that|this|they|those|these|mine|ours)(?:['\u2019](?:s|re)|\s+(?:was|were|is|are))\b",
    re.IGNORECASE,
)
# Words that lean on an earlier question: "and to Ireland?", "is it safe for babies?", "a
# cheaper one", "anything bigger?".
FOLLOW_UP = re.compile(
    rf"^(?:and|or|also|what about|how about|what if|same)\b|{ASKS_ABOUT_IT.pattern}"
    rf"|{SAYS_WHAT_IT_WAS.pattern}"
    r"|\b(?:a|an|the|another|other)\s+(?:[\w+]+\s+)?ones?\b|\b(?:\w+er|\w+est)\s+ones?\b"
    r"|\b(?:anything|something)\s+(?:cheaper|bigger|smaller|larger|stronger|milder|else|similar"
    r"|without|except|but)\b",
    re.IGNORECASE,
)
# Words that ask for nothing by themselves: a message of them and a price or an order ("something
# under £20?", "do you have anything cheaper?", "what's the biggest?", "in a bigger jar?") leans
# on the question before it for what it is about.
ASKING_FOR_NOTHING = frozenset(
    {
        *("a", "an", "the", "any", "some", "something", "anything", "one", "ones", "else"),
        *("option", "options", "instead", "please", "then", "ok", "okay", "so", "maybe"),
        *("what", "which", "s", "d", "is", "are", "there", "do", "does", "you", "have", "got"),
        *("show", "me", "i", "would", "like", "want", "need", "how", "about", "perhaps"),
        *("in", "of", "for", "jar", "jars", "pot", "pots", "pack", "size", "sizes", "version"),
    }
)
# How many questions back a chain of follow-ups is read ("and the biggest?", "and in stock?").
FOLLOW_UP_DEPTH = 3
# A follow-up about one thing, not a kind of thing ("a cheaper one") or several ("are they").
ABOUT_ONE_THING = re.compile(r"\b(?:it|this|that)\b", re.IGNORECASE)
# Or about the one product the customer named just before, in the plural: "what do people use
# them for?" after "I'd like the raw propolis chunks".
ABOUT_THEM = re.compile(r"\b(?:they|them|these|those)\b", re.IGNORECASE)
# Or saying it as the kind of thing it is: "how many jars are in the set?" after the Wedding
# Favour Honey Jars (Set of 24) were listed got a list of sets, the Rapeseed Set Honey first.
THE_KIND = re.compile(
    r"\b(?:the|this|that|each|every)\s+(?P<words>[\w-]+(?:\s+[\w-]+){0,3})", re.IGNORECASE
)


def is_follow_up(text: str) -> bool:
    """Whether ``text`` leans on the question before it by its words; one that names a subject
    of its own is still read alone (``names_its_own_subject``)."""
    if len(text.split()) > FOLLOW_UP_MAX_WORDS:
        return False
    return FOLLOW_UP.search(text.strip()) is not None or _asks_only_price_or_order(text)


def says_what_it_was(text: str) -> bool:
    """Whether ``text`` is a short follow-up saying which thing the question before it was
    about ("it was the acacia honey", "they're the 500g jars")."""
    return is_follow_up(text) and SAYS_WHAT_IT_WAS.match(text.strip()) is not None


def names_its_own_subject(text: str) -> bool:
    """Whether ``text`` names a health or safety subject or a shop policy (``OWN_SUBJECT``),
    which it asks about whatever the question before it was about."""
    return OWN_SUBJECT.search(text) is not None


def _asks_only_price_or_order(text: str) -> bool:
    intent = query_intent_read(text)
    if not intent.orders and intent.min_price is None and intent.max_price is None:
        return False
    return set(query_words(query_subject(text))) <= ASKING_FOR_NOTHING


def customer_question(messages: Sequence[BaseMessage]) -> str:
    """The latest customer message, followed by the subject of the one before it when it is a
    follow-up."""
    questions = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
    if not questions:
        return ""
    if (product := product_asked_about(messages)) is not None:
        return f"{questions[-1]} {product}"
    return _read_with_context(questions, len(questions) - 1, FOLLOW_UP_DEPTH)


# Asking for something cheaper than what was just shown: "and a cheaper one?" after a list sorted
# the earlier subject's category by price, and listed the cheapest gift sets for "a gift for my
# dad who loves cheese", none about cheese.
CHEAPER = re.compile(r"\b(?:cheaper|less\s+expensive|lower[\s-]priced)\b", re.IGNORECASE)


def cheaper_than_listed(messages: Sequence[BaseMessage]) -> list[str]:
    """The products the assistant listed in its reply to the customer's previous message, when
    their latest is a follow-up asking for something cheaper without a price of its own (empty
    otherwise)."""
    question = latest_customer_message(messages)
    if not (is_follow_up(question) and CHEAPER.search(question)):
        return []
    intent = query_intent_read(question)
    if intent.max_price is not None or intent.min_price is not None:
        return []  # "a cheaper one under £20?" says its own price
    return _listed_in_the_last_reply(messages)


def latest_customer_message(messages: Sequence[BaseMessage]) -> str:
    """The text of the customer's latest message ("" if there is none)."""
    return next((str(m.content) for m in reversed(messages) if isinstance(m, HumanMessage)), "")


def _listed_in_the_last_reply(messages: Sequence[BaseMessage]) -> list[str]:
    """The products listed in the assistant's reply to the customer's message before their
    latest."""
    humans = [i for i, message in enumerate(messages) if isinstance(message, HumanMessage)]
    if not humans:
        return []
    for message in reversed(messages[: humans[-1]]):
        if isinstance(message, HumanMessage):
            return []
        if isinstance(message, AIMessage) and (names := recommended_names(str(message.content))):
            return names
    return []


def product_asked_about(messages: Sequence[BaseMessage]) -> str | None:
    """The first product the assistant listed in its reply to the customer's previous message,
    when their latest is a short message about it: a follow-up about one thing ("how long does it
    burn?"), or about "them" when that previous message named that one product ("what do people
    use them for?" after "I'd like the raw propolis chunks"), or one saying it as the kind of
    thing it is (``THE_KIND``)."""
    question = latest_customer_message(messages)
    follow_up = is_follow_up(question)
    about_it = follow_up and ABOUT_ONE_THING.search(question) is not None
    # Not a help-centre subject ("can the set be delivered by Friday?", "are they safe for
    # children?"): read with the product's name, its articles were not found.
    of_the_product = not SUPPORT_WORDS.search(question.lower())
    about_them = follow_up and of_the_product and ABOUT_THEM.search(question) is not None
    says_its_kind = (
        len(question.split()) <= FOLLOW_UP_MAX_WORDS
        and of_the_product
        and THE_KIND.search(question) is not None
    )
    if not (about_it or about_them or says_its_kind):
        return None
    if SAYS_WHAT_IT_WAS.match(question.strip()):
        return None  # "it's for my mum" asks the question before it again
    if names_its_own_subject(question):
        return None
    listed = _listed_in_the_last_reply(messages)
    if not listed:
        return None
    first = listed[0]
    if (
        about_it
        or (says_its_kind and _says_its_kind(question, first))
        or (about_them and _named_before(messages) == first)
    ):
        return first
    return None


def _says_its_kind(text: str, name: str) -> bool:
    """Whether ``text`` says "the" (or "this", "each"...) and the words of ``name`` that say what
    kind of thing it is (``_kinds``), with none but its other words between: "the set" or "the
    gift set" of the Hot Honey Lovers Gift Set, not "the tealight set"."""
    named = {stem(word) for word in WORD.findall(name.lower())}
    kinds = _kinds(name)
    for match in THE_KIND.finditer(text):
        words = [stem(word) for word in WORD.findall(match.group("words").lower())]
        run = list(takewhile(lambda word: word in named, words))
        if run and run[-1] in kinds:
            return True
    return False


def _kinds(name: str) -> set[str]:
    """The stems of the words of a product's ``name`` that say what kind of thing it is: its
    last, and the first in brackets ("Wedding Favour Honey Jars (Set of 24)": "set"), but sizes,
    grammar and the shop's own words ("jars")."""
    outside, _, inside = name.lower().partition("(")
    kinds = set()
    for part, pick in ((outside, -1), (inside, 0)):
        words = [w for w in WORD.findall(part) if w.isalpha() and w not in GRAMMAR_WORDS]
        if words and words[pick] not in SHOP_WORDS:
            kinds.add(stem(words[pick]))
    return kinds


def _named_before(messages: Sequence[BaseMessage]) -> str | None:
    """The name of the one product the customer's message before their latest names."""
    questions = [str(m.content) for m in messages if isinstance(m, HumanMessage)]
    product = product_named_in(text=questions[-2]) if len(questions) > 1 else None
    return product.name if product is not None else None


def _read_with_context(questions: list[str], index: int, depth: int) -> str:
    question = questions[index]
    if index == 0 or depth == 0 or not is_follow_up(question) or names_its_own_subject(question):
        return question
    earlier = _read_with_context(questions, index - 1, depth - 1)
    if SAYS_WHAT_IT_WAS.match(question.strip()):
        # "it was the acacia honey" asks nothing new: read with it, "my jar arrived broken"
        # found the wrong-items article ("Did we send you a different honey...").
        return earlier
    subject = query_subject(earlier)
    asked = intent_carried_over(earlier, question)
    if _asks_only_price_or_order(question):
        # Its other words ask for nothing, and "jar" in "in a bigger jar?" is no product.
        return f"{intent_words(question)} {subject} {asked}".strip()
    # "is it free?" names no product of its own: it asks about what was talked of, whatever
    # product names hold its words ("Alcohol-Free Propolis Throat Spray"). Nor does one asking
    # the earlier health or policy question of another product: "and manuka?" after "is honey
    # safe in pregnancy?" was answered with manuka to buy.
    if (
        not ASKS_ABOUT_IT.match(question.strip())
        and not names_its_own_subject(earlier)
        and products_are_named(text=question, apart_from=subject)
    ):
        return f"{question} {asked}".strip()
    return f"{question} {subject} {asked}".strip()
