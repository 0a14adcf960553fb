"""Chat model providers behind one seam, chosen by ``settings.LLM_PROVIDER``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.conf import settings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import RunnableConfig

from agents.graph.names import Route


@dataclass(frozen=True)
class RouteDecision:
    route: Route
    message: AIMessage | None = None  # the model's answer, for usage accounting
    note: str = ""  # for staff: how the route was chosen, when not as asked


class ChatProvider(Protocol):
    name: str
    model_name: str

    def chat_model(self) -> BaseChatModel: ...

    def route(self, messages: Sequence[BaseMessage], config: RunnableConfig) -> RouteDecision: ...


def get_chat_provider(name: str | None = None) -> ChatProvider:
    if (name or settings.LLM_PROVIDER) == "openai":
        from agents.providers.openai import OpenAIProvider

        return OpenAIProvider()
    from agents.providers.offline import OfflineProvider

    return OfflineProvider()
