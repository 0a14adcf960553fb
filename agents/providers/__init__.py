"""Chat model providers behind one seam, chosen by ``settings.LLM_PROVIDER``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

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


Chunk = TypeVar("Chunk")


class ProviderResponseError(Exception):
    """The provider answered with no completion in it: an empty stream, or events that are not
    JSON (a gateway's error page). Worth the fallback provider, as its API errors are."""


def streamed_chunks(stream: Iterator[Chunk]) -> Iterator[Chunk]:
    """``stream``'s chunks; ``ProviderResponseError`` where the client found no completion."""
    try:
        yield from stream
    except ValueError as exc:  # "No generation chunks were returned", a JSONDecodeError
        raise ProviderResponseError(str(exc)[:200]) from exc


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
