from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    SystemMessage,
    message_chunk_to_message,
)
from langchain_core.runnables import RunnableConfig
from langchain_openai import ChatOpenAI

from agents.graph.names import Route
from agents.graph.prompts import SUPERVISOR_PROMPT, dated
from agents.providers import RouteDecision, streamed_chunks
from agents.providers.router import semantic_route
from beemanhoney.common.openai_http import openai_http_client

logger = logging.getLogger(__name__)

ROUTE_UNPARSED_NOTE = "the model's route call could not be read; routed by meaning"

ROUTE_TOOL = {
    "type": "function",
    "function": {
        "name": "route_conversation",
        "description": "Choose who answers the customer's latest message.",
        "parameters": {
            "type": "object",
            "properties": {"route": {"type": "string", "enum": [r.value for r in Route]}},
            "required": ["route"],
        },
    },
}


class OpenAIProvider:
    """ChatOpenAI with tool calling. Retries live in the client (one layer), not in Celery."""

    name = "openai"

    def __init__(self) -> None:
        self.model_name = settings.OPENAI_CHAT_MODEL

    def chat_model(self) -> BaseChatModel:
        return ChatOpenAI(
            model=settings.OPENAI_CHAT_MODEL,
            api_key=settings.OPENAI_API_KEY,  # type: ignore[arg-type]
            base_url=settings.OPENAI_BASE_URL,
            timeout=settings.OPENAI_TIMEOUT_SECONDS,
            max_retries=settings.OPENAI_MAX_RETRIES,
            http_client=openai_http_client(),
            temperature=settings.OPENAI_TEMPERATURE,
            max_completion_tokens=settings.OPENAI_MAX_COMPLETION_TOKENS or None,
            stream_usage=True,
        )

    def route(self, messages: Sequence[BaseMessage], config: RunnableConfig) -> RouteDecision:
        model = self.chat_model().bind_tools([ROUTE_TOOL], tool_choice="route_conversation")
        # Streamed and merged, as the agents' calls are: the client then files arguments that
        # are not a JSON object ('"sales"') under invalid_tool_calls, where ``invoke`` raised
        # and failed the turn.
        merged: Any = None
        prompt = [SystemMessage(dated(SUPERVISOR_PROMPT)), *messages]
        for chunk in streamed_chunks(model.stream(prompt, config)):
            merged = chunk if merged is None else merged + chunk
        response = message_chunk_to_message(merged)
        assert isinstance(response, AIMessage)
        for call in response.tool_calls:
            if call["args"].get("route") in Route.__members__.values():
                return RouteDecision(route=Route(call["args"]["route"]), message=response)
        logger.warning("agents.route_unparsed", extra={"content": str(response.content)[:200]})
        return RouteDecision(
            route=semantic_route(messages), message=response, note=ROUTE_UNPARSED_NOTE
        )
