"""One turn: the conversation's history in, the graph's reply and trace out."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import openai
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import LLMResult
from langchain_core.runnables import RunnableConfig

from agents.graph.builder import build_graph
from agents.graph.prompts import (
    HANDOFF_REPLY,
    PROMPT_FINGERPRINTS,
    STEP_LIMIT_REPLY,
    WITHHELD_REPLY,
)
from agents.graph.tools import TurnEffects, turn_effects
from agents.models import AgentRun
from agents.pricing import Usage, model_cost_usd
from agents.providers import ProviderResponseError, get_chat_provider
from agents.run_stream import run_event_publish
from agents.services import agent_run_usage_add
from beemanhoney.common.text import joined_notes, storable_text
from conversations.models import Message
from conversations.selectors import conversation_history

logger = logging.getLogger(__name__)


@dataclass
class TurnResult:
    reply: str
    route: str
    agent: str
    provider: str
    model_name: str
    nodes: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # for staff: a fallback taken, a reply withheld, a budget hit
    # This turn passed the conversation to staff, so its reply may follow the hand-off.
    handed_off: bool = False
    cards: list[dict[str, Any]] = field(default_factory=list)
    # Stopped at a step, its reply one that would not be posted (``agent_run_stopped``).
    stopped: bool = False


class TurnFailed(Exception):
    """No provider answered. The failure itself is the ``__cause__``."""

    def __init__(
        self,
        provider: str,
        model_name: str,
        *,
        handed_off: bool = False,
        tool_calls: list[dict[str, Any]] | None = None,
        nodes: list[str] | None = None,
    ) -> None:
        super().__init__("the turn failed")
        self.provider, self.model_name = provider, model_name
        # A tool had handed the conversation to staff before the failure.
        self.handed_off = handed_off
        # The failed attempts' trace (``failed_steps``, ``failed_nodes``): what their tools did
        # stays on record.
        self.tool_calls = tool_calls or []
        self.nodes = nodes or []


# Characters per token, for a provider that answers without usage: roughly right for English.
CHARS_PER_TOKEN = 4


def _estimated_tokens(messages: list[BaseMessage]) -> int:
    chars = sum(
        len(str(message.content))
        + sum(len(json.dumps(call["args"])) for call in getattr(message, "tool_calls", []))
        for message in messages
    )
    return -(-chars // CHARS_PER_TOKEN)


class UsageTally(BaseCallbackHandler):
    """Counts every model call of one attempt on its run as the call returns or fails
    (``agent_run_usage_add``).

    Counted as it goes, not from the graph's state when the turn ends: an exception loses the
    state, and a worker that dies mid-turn loses the turn, while the provider bills each call.
    A call answered without usage (a compatible server that ignores ``stream_options``) is
    counted from its text when ``estimate_missing``: at zero it would cost nothing and switch
    both budgets off. A call that failed is counted only as far as the provider reported its
    usage before failing (``on_llm_error``).
    """

    def __init__(self, model_name: str, *, run_id: str, estimate_missing: bool = False) -> None:
        self.model_name = model_name
        self.run_id = run_id
        self.estimate_missing = estimate_missing
        self.prompt_tokens = self.completion_tokens = self.model_calls = 0
        self.cached_prompt_tokens = 0  # of the prompt tokens, those read from the cache
        self.estimated = False
        self._prompts: dict[Any, int] = {}
        self._counted = Usage()  # on the run already

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[BaseMessage]], **kwargs: Any
    ) -> None:
        self._prompts[kwargs.get("run_id")] = sum(map(_estimated_tokens, messages))

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.model_calls += 1
        prompt_estimate = self._prompts.pop(kwargs.get("run_id"), 0)
        for message in _generated(response):
            usage = getattr(message, "usage_metadata", None)
            if usage is None and self.estimate_missing and message is not None:
                self.estimated = True
                self.prompt_tokens += prompt_estimate
                self.completion_tokens += _estimated_tokens([message])
                continue
            self._add(usage)
        self._count_on_run()

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        # Counted only if the provider reported usage before the call failed (a stream whose
        # usage chunk arrived before the error): a call cut before that is not estimated, as
        # nothing says it was billed (a request refused, or dropped before the model ran, costs
        # nothing). What streamed before the failure is in ``response``, merged.
        self._prompts.pop(kwargs.get("run_id"), None)
        response = kwargs.get("response")
        generated = _generated(response) if isinstance(response, LLMResult) else []
        reported = [usage for m in generated if (usage := getattr(m, "usage_metadata", None))]
        if reported:
            self.model_calls += 1
            for usage in reported:
                self._add(usage)
            self._count_on_run()

    def _add(self, usage: Any) -> None:
        usage = usage or {}
        self.prompt_tokens += usage.get("input_tokens", 0)
        self.completion_tokens += usage.get("output_tokens", 0)
        details = usage.get("input_token_details") or {}
        self.cached_prompt_tokens += details.get("cache_read") or 0

    def _count_on_run(self) -> None:
        # The difference of the running totals' costs, so the run's cost is the attempt's
        # total priced once, not a sum of per-call roundings. A call whose count fails (the
        # database away; LangChain logs a callback's error and goes on) is counted with the
        # next, or by ``count_remainder`` as the attempt ends.
        spent = self.usage
        agent_run_usage_add(run_id=self.run_id, usage=spent - self._counted)
        self._counted = spent

    def count_remainder(self) -> None:
        """Count on the run what a failed count left uncounted, for the attempt's last call
        above all, which no later call counts; logged if it fails again, so the attempt's own
        outcome or error stands."""
        if self.usage == self._counted:
            return
        try:
            self._count_on_run()
        except (DatabaseError, InterfaceError):  # InterfaceError: a connection closed
            logger.exception("agent_run.usage_not_counted", extra={"run_id": self.run_id})

    @property
    def usage(self) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            model_calls=self.model_calls,
            cost_usd=model_cost_usd(
                model=self.model_name,
                prompt_tokens=self.prompt_tokens,
                completion_tokens=self.completion_tokens,
                cached_prompt_tokens=self.cached_prompt_tokens,
            ),
        )


def _generated(response: LLMResult) -> list[BaseMessage | None]:
    return [
        getattr(generation, "message", None)
        for generations in response.generations
        for generation in generations
    ]


@dataclass
class Attempt:
    """One provider's try at the turn, recorded as it goes: an exception loses the graph's
    state, and what a failed attempt did must still be shown to staff."""

    provider: str
    state: dict[str, Any] = field(default_factory=dict)  # as of its last finished step
    # The tool calls of a tools step that raised (``TurnEffects.steps_in_progress``).
    unfinished_steps: list[dict[str, Any]] = field(default_factory=list)


def failed_steps(attempts: list[Attempt]) -> list[dict[str, Any]]:
    """The tool calls of failed ``attempts`` as the run's trace keeps them, each marked with
    its provider and ``failed_attempt``: a tool's effect (a hand-off to staff, say) outlives
    the attempt, and the answer that follows would otherwise hide it."""
    return [
        {"provider": attempt.provider, "failed_attempt": True, **step}
        for attempt in attempts
        for step in [*attempt.state.get("tool_calls", []), *attempt.unfinished_steps]
    ]


def failed_nodes(attempts: list[Attempt]) -> list[str]:
    """The nodes failed ``attempts`` ran, as the run's ``node_sequence`` keeps them: each marked
    with its provider, "supervisor (openai, failed)", before the answering attempt's own."""
    return [
        f"{node} ({attempt.provider}, failed)"
        for attempt in attempts
        for node in attempt.state.get("nodes", [])
    ]


@lru_cache(maxsize=2)
def _graph(provider_name: str) -> Any:
    return build_graph(provider=get_chat_provider(provider_name))


STAFF_PREFIX = "A member of our staff (a person, not you) wrote to the customer: "


def history_messages(messages: list[Message]) -> list[BaseMessage]:
    """The conversation as the model reads it.

    Staff messages are system messages naming their author: as assistant messages the model
    would take a person's promises for its own, and as user messages the customer could forge
    them.
    """
    converted: list[BaseMessage] = []
    for message in messages:
        if message.role == Message.Role.USER:
            converted.append(HumanMessage(message.content))
        elif message.role == Message.Role.STAFF:
            converted.append(SystemMessage(STAFF_PREFIX + message.content))
        else:
            converted.append(AIMessage(message.content, name=message.agent or message.role))
    return converted


# A final message stopped early (its finish_reason; "step_limit" is the agent's own stop): what
# the customer gets instead of its text, and the note for staff.
OUT_OF_TOKENS = (STEP_LIMIT_REPLY, "the model ran out of tokens mid-reply; sent the fallback reply")
CUT_SHORT = {
    "content_filter": (WITHHELD_REPLY, "reply withheld: the provider's content filter cut it off"),
    "length": OUT_OF_TOKENS,
    # How some OpenAI-compatible servers say "length", and that they gave up mid-reply.
    "max_tokens": OUT_OF_TOKENS,
    "error": (STEP_LIMIT_REPLY, "the provider ended the reply with an error; sent the fallback"),
    "abort": (STEP_LIMIT_REPLY, "the provider aborted the reply; sent the fallback reply"),
    "step_limit": (STEP_LIMIT_REPLY, "stopped at the step limit (AGENT_MAX_MODEL_CALLS)"),
    # The run was cancelled: nothing is posted, and its reason says why already.
    "cancelled": (STEP_LIMIT_REPLY, ""),
}


# What a turn says in place of a reply it could not give.
CANNED_REPLIES = frozenset({STEP_LIMIT_REPLY, WITHHELD_REPLY})


def _cut_short(finish_reason: str | None, *, finish_required: bool) -> tuple[str, str] | None:
    """How a reply stopped early, if it did.

    A reply with no finish reason from a provider that gives one was cut off (a server or proxy
    closed the stream mid-answer: "Our best manuka is"). Any reason not in ``CUT_SHORT`` is a
    finish: OpenAI says "stop" or "tool_calls", compatible servers also "eos", "eos_token",
    "end_turn" or "stop_sequence".
    """
    if finish_reason in CUT_SHORT:
        return CUT_SHORT[finish_reason]
    if finish_required and not finish_reason:
        return STEP_LIMIT_REPLY, (
            "the model's reply ended without a finish reason (its stream was cut off); "
            "sent the fallback reply"
        )
    return None


def _finish_reason(message: BaseMessage) -> str | None:
    return message.response_metadata.get("finish_reason")


def _reply(added: list[BaseMessage], *, finish_required: bool = False) -> tuple[str, str, str]:
    """The reply among the messages this turn added, its agent, and a note for staff.

    Only this turn's messages: the history holds earlier replies and staff messages, which an
    empty final message (tool calls only, a refusal) must never resend as this turn's answer.
    Nor a message written with tool calls whose arguments could not be read: its text ("Let me
    check that for you.") led into the calls, and answers nothing. With ``finish_required`` (a
    provider that says how each reply ended), a reply that does not say it finished was cut
    short.
    """
    for message in reversed(added):
        if (
            isinstance(message, AIMessage)
            and not message.tool_calls
            and not message.invalid_tool_calls
        ):
            text = storable_text(str(message.content))
            cut = _cut_short(_finish_reason(message), finish_required=finish_required)
            if cut is not None:
                # The text stops mid-sentence: never post it as the answer.
                return cut[0], message.name or "", cut[1]
            if text:
                return text, message.name or "", ""
    refused = any(
        isinstance(message, AIMessage) and message.additional_kwargs.get("refusal")
        for message in added
    )
    why = "the model refused" if refused else "the model's last message had no text"
    return STEP_LIMIT_REPLY, "", f"{why}; sent the fallback reply"


CARD_FIELDS = ("sku", "name", "price", "currency", "stock", "in_stock")


def product_cards(messages: list[BaseMessage], reply: str) -> list[dict[str, Any]]:
    """The products this turn's tools returned that the reply names, in the reply's order."""
    found: dict[str, dict[str, Any]] = {}
    for message in messages:
        if not isinstance(message, ToolMessage):
            continue
        try:
            data = json.loads(str(message.content))
        except ValueError:
            continue
        products = data.get("products") or ([data["product"]] if "product" in data else [])
        for product in products:
            if product.get("name") and product["name"] in reply:
                found.setdefault(product["sku"], {key: product[key] for key in CARD_FIELDS})
    return sorted(found.values(), key=lambda card: reply.index(card["name"]))


def reply_leaks_instructions(reply: str) -> bool:
    lowered = reply.lower()
    return any(fingerprint.lower() in lowered for fingerprint in PROMPT_FINGERPRINTS)


def run_turn(*, run: AgentRun) -> TurnResult:
    """Answer the run's message with the configured provider, or the fallback if it fails.

    Raises ``TurnFailed`` (from the error) when no provider answers, with what the model calls
    made until then spent, the tools they called, and whether the turn had handed the
    conversation to staff.
    """
    attempts: list[Attempt] = []
    effects = TurnEffects()
    try:
        return _answer(run, attempts, effects)
    except Exception as exc:
        primary = get_chat_provider(settings.LLM_PROVIDER)
        raise TurnFailed(
            primary.name,
            primary.model_name,
            handed_off=effects.handed_off,
            tool_calls=failed_steps(attempts),
            nodes=failed_nodes(attempts),
        ) from exc


def _answer(run: AgentRun, attempts: list[Attempt], effects: TurnEffects) -> TurnResult:
    history = conversation_history(
        conversation=run.conversation,
        up_to=run.user_message,
        limit=settings.AGENT_HISTORY_MESSAGES,
    )
    config: RunnableConfig = {
        "configurable": {
            "customer_id": run.conversation.owner_id,
            "conversation_id": str(run.conversation_id),
            "run_id": str(run.pk),
            "turn_effects": effects,
        },
        "recursion_limit": 4 * settings.AGENT_MAX_MODEL_CALLS + 8,
    }
    messages = history_messages(history)
    try:
        return _invoke(settings.LLM_PROVIDER, messages, config, attempts)
    # The soft time limit too: a provider that held the turn that long (a gateway's keep-alive
    # bytes, waits the client chose) is given up on, and the fallback answers before the hard
    # limit, where the customer had waited the whole limit for an apology.
    except (openai.OpenAIError, ProviderResponseError, SoftTimeLimitExceeded) as exc:
        fallback = settings.LLM_FALLBACK_PROVIDER
        if not fallback or fallback == settings.LLM_PROVIDER:
            raise
        # The provider's own words tell a bad key, a mistyped model and a spent quota apart.
        detail = " ".join(str(exc).split())[:200]
        logger.warning(
            "agent_run.provider_fallback",
            extra={
                "run_id": str(run.pk),
                "error": type(exc).__name__,
                "detail": detail,
                "fallback": fallback,
            },
        )
        steps, nodes = failed_steps(attempts), failed_nodes(attempts)
        # The failed attempt may have streamed part of a reply: the fallback writes its own.
        run_event_publish(run_id=str(run.pk), type="text.reset", data={"reason": "fallback"})
        result = _invoke(fallback, messages, config, attempts)
        # As they happened: the failed attempt's steps, then the answer's.
        result.tool_calls = [*steps, *result.tool_calls]
        result.nodes = [*nodes, *result.nodes]
        tools = ", ".join(dict.fromkeys(step["tool"] for step in steps))
        ran = f" after calling {tools} (kept in the trace)" if tools else ""
        failed = f"{settings.LLM_PROVIDER} failed ({type(exc).__name__}: {detail}){ran}"
        result.note = joined_notes(f"{failed}; answered by {fallback}", result.note)
        return result


def _invoke(
    provider_name: str,
    messages: list[BaseMessage],
    config: RunnableConfig,
    attempts: list[Attempt],
) -> TurnResult:
    """One attempt with one provider, recorded in ``attempts``: its model calls counted on the
    run as they return, the graph's state kept step by step."""
    provider = get_chat_provider(provider_name)
    tally = UsageTally(
        provider.model_name,
        run_id=config["configurable"]["run_id"],
        estimate_missing=provider.name == "openai",
    )
    attempt = Attempt(provider.name)
    attempts.append(attempt)
    graph_config: RunnableConfig = {**config, "callbacks": [tally]}
    # As ``invoke`` would, but keeping each step's state: a step that raises loses only itself,
    # and a tools step keeps the calls it made (``TurnEffects.steps_in_progress``).
    try:
        for state in _graph(provider_name).stream(
            {"messages": messages}, graph_config, stream_mode="values"
        ):
            attempt.state = state
    except Exception:
        effects = turn_effects(config)
        attempt.unfinished_steps, effects.steps_in_progress = effects.steps_in_progress, []
        raise
    finally:
        tally.count_remainder()
    state = attempt.state
    # The graph only appends: what follows the history is what this turn added.
    added = state["messages"][len(messages) :]
    reply, agent, note = _reply(added, finish_required=provider.name == "openai")
    if reply_leaks_instructions(reply):
        reply, note = WITHHELD_REPLY, "reply withheld: it quoted the assistant's instructions"
    # Or a failed attempt before it did (the fallback then finds the conversation with staff).
    handed_off = bool(state.get("handed_off")) or turn_effects(config).handed_off
    if handed_off and reply in CANNED_REPLIES:
        # Staff have the conversation and were told: "ask me to pass you to our team" is wrong.
        reply = HANDOFF_REPLY
    note = joined_notes(state.get("route_note", ""), note)
    if tally.estimated:
        estimated = "the provider sent no token usage; tokens estimated from the text"
        note = joined_notes(note, estimated)
    return TurnResult(
        note=note,
        cards=product_cards(state["messages"], reply),
        reply=reply,
        route=state.get("route", ""),
        agent=agent or state.get("route", ""),
        provider=provider.name,
        model_name=provider.model_name,
        nodes=[str(node) for node in state.get("nodes", [])],
        tool_calls=state.get("tool_calls", []),
        handed_off=handed_off,
        stopped=any(_finish_reason(message) == "cancelled" for message in added),
    )
