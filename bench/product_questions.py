"""Whether the offline assistant answers a question about one product with what its description
says, on the demo shop.

Each of ``QUESTIONS`` is a conversation (its messages joined by `` || ``; the assistant's reply
to each earlier one is kept) whose last message asks something of one product that a sentence of
its description answers; it counts as answered when the reply holds that sentence's words
given (``expected``, any case). Written on 2026-12-04 (13:30) after a review found "is it
unscented?" and "how many jars are in the set?" answered with a bare product list, before any
change to the answer; ``HELD_OUT_QUESTIONS`` after the way of choosing the sentence was chosen
on them; ``FRESH_QUESTIONS`` before the changes for what those two still lost, and
``LAST_QUESTIONS`` after them. The graph runs through the offline provider, on the demo
catalogue and help centre in ``beemanhoney_bench_demo`` (shared with ``bench.routing``).

    DEBUG=1 HF_HUB_OFFLINE=1 python -m bench.product_questions [--markdown]
"""

from __future__ import annotations

from collections.abc import Sequence

from bench import markdown_flag, tables_print
from bench.knowledge_search import demo_articles_written
from bench.product_relevance import demo_shop_ready

QUESTIONS: tuple[tuple[str, str], ...] = (
    ("is the beeswax pillar candle unscented?", "faint natural honey scent"),
    ("how long does the pillar candle burn for?", "approximately 60 hours"),
    ("are the rolled dinner candles scented?", "no added fragrance"),
    ("what sizes are in the beeswax food wraps set?", "small, medium and large"),
    ("how long do the beeswax food wraps last?", "reusable for around a year"),
    ("does the acacia honey stay runny?", "stays runny for a year or more"),
    ("where does the chestnut honey come from?", "Tuscan hills"),
    ("where is the eucalyptus honey from?", "Western Australia"),
    ("is the glass honey pot dishwasher safe?", "Dishwasher-safe glass"),
    ("what sizes does the beekeeping starter kit come in?", "Sizes S to XXL"),
    ("does the propolis tincture have alcohol in it?", "contains alcohol"),
    ("how hot is the chilli-infused hot honey?", "Medium-hot"),
    ("at what temperature does the pure beeswax block melt?", "63°C"),
    ("how big is the beeswax sandwich wrap?", "35 x 45 cm"),
    ("how long does personalising the wedding favour jars take?", "10 working days"),
    ("how many tealights come in the beeswax tealight set and how long do they burn?",
     "about 4 hours"),
    ("tell me about the pillar candle || how long does it burn?", "approximately 60 hours"),
    ("have you got truffle honey? || what would I eat it with?", "burrata"),
    ("I'd like the cut comb honey || how should I serve it?", "cheese board"),
    ("do you have a bee hotel? || where should I put it?", "south-facing"),
)  # fmt: skip


# Written (13:50) after the way of choosing the sentence was chosen on ``QUESTIONS`` (their
# figure flatters it), before it ran on these.
HELD_OUT_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("is the lavender honey nice in tea?", "chamomile tea at bedtime"),
    ("where is the orange blossom honey from?", "Valencia"),
    ("does the vanilla bean honey stay liquid?", "Stays liquid and pourable"),
    ("how many people is each mini comb square for?", "enough for two people"),
    ("what is the lip balm made of?", "sunflower oil, shea butter"),
    ("how much garden does the wildflower seed mix cover?", "5 square metres"),
    ("when should I sow the bee-friendly seed mix?", "Sow in spring or early autumn"),
    ("how do I look after the olivewood dipper?", "food-safe oil"),
    ("are the propolis capsules vegetarian?", "vegetarian capsules"),
    ("is the hive tool stainless steel?", "stainless-steel"),
    ("how long do the beeswax tealights burn?", "about 4 hours"),
    ("how strong is the scotch bonnet honey?", "very hot"),
    ("what does the furniture polish smell like?", "honeyed scent"),
    ("I'd like the royal jelly in honey || when should I take it?", "spoonful at breakfast"),
    ("tell me about the bee pollen granules || how should I store them?", "in the fridge"),
)

# Written on 2026-12-04 (15:55), before any change for the questions the two sets above still
# lost, from demo products' descriptions neither set asks of (or other things of them): the
# figure those changes cannot have been chosen on.
FRESH_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("what does the buckwheat honey taste like?", "malty, earthy flavour"),
    ("what is the cretan thyme honey traditionally eaten with?", "thick yoghurt and walnuts"),
    ("how tall are the rolled dinner candles?", "25 cm tall"),
    ("what flavour are the manuka honey lozenges?", "natural lemon oil"),
    ("when is the lime blossom honey harvested?", "early July"),
    ("what's in the corporate honey gift box?", "Wildflower, Heather and Chilli Hot Honey"),
    ("how long will the honeycomb frame slab keep?", "last for months"),
    ("is the rapeseed set honey hard to spread?", "easy to spread"),
    ("how is the british bee pollen kept fresh?", "Frozen after collection"),
    ("I'm looking at the honey and cheese pairing hamper || does it come with cheese?",
     "except the cheese itself"),
    ("I'd like the raw propolis chunks || what do people use them for?",
     "tinctures, salves and varnishes"),
    ("have you got the british honey tasting trio? || how big is each jar?", "Three 113g jars"),
)  # fmt: skip

# Written (16:20) after those changes, before they ran on these: three of the fresh set's misses
# were looked into while choosing them, so its figure flatters them too.
LAST_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("what does the cinnamon creamed honey taste like?", "tastes like a cinnamon bun"),
    ("what is the rosemary & sea salt honey good with?", "roast carrots, lamb and salmon"),
    ("what's inside the chunk honey with comb?", "piece of honeycomb suspended inside"),
    ("what comes in the manuka wellness gift box?", "a pack of Manuka lozenges"),
    ("what is the beech honey dipper made from?", "sustainably sourced British beech"),
    ("can the honey spoons go in the dishwasher?", "Hand wash only"),
    ("is the cacao creamed honey sweetened with sugar?", "no palm oil, milk or added sugar"),
    ("how many sachets are in the manuka snap sachets?", "Ten single-serve sachets"),
    ("I'd like the hot honey lovers gift set || does it come with recipes?", "recipe leaflet"),
    ("tell me about the manuka snap sachets || how much honey is in each of them?",
     "exactly one teaspoon"),
    ("when is the heather comb honey harvested?", "harvested in limited numbers each August"),
    ("what does the ginger & lemon honey look like?", "Cloudy amber with flecks of ginger"),
)  # fmt: skip
SETS = {
    "written first": QUESTIONS,
    "held out": HELD_OUT_QUESTIONS,
    "fresh": FRESH_QUESTIONS,
    "last": LAST_QUESTIONS,
}


def reply_to(conversation: str) -> tuple[str, str]:
    """The route and the reply to the conversation's last message."""
    from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

    from agents.graph.builder import build_graph
    from agents.providers import get_chat_provider

    graph = build_graph(provider=get_chat_provider("offline"))
    messages: list[BaseMessage] = []
    route, reply = "", ""
    for text in conversation.split(" || "):
        messages.append(HumanMessage(text))
        state = graph.invoke({"messages": messages}, {"configurable": {}})
        reply, route = str(state["messages"][-1].content), str(state.get("route", ""))
        messages.append(AIMessage(reply))
    return route, reply


def main(argv: Sequence[str] | None = None) -> int:
    markdown = markdown_flag(__doc__.split("\n\n")[0], argv)
    demo_shop_ready()
    demo_articles_written()
    counts, missed = [], []
    for name, questions in SETS.items():
        answered = 0
        for conversation, expected in questions:
            route, reply = reply_to(conversation)
            if expected.lower() in reply.lower():
                answered += 1
            else:
                missed.append([name, conversation, expected, route, reply.splitlines()[0][:90]])
        counts.append([name, len(questions), answered])
    tables_print(
        (["questions", "count", "answered from the description"], counts),
        (["questions", "conversation", "expected", "route", "reply (its first line)"], missed),
        markdown=markdown,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
