"""Exercise FakeOpenAIServer with the real openai / langchain-openai clients (no mocking)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import openai
import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

from .fake_openai import (
    ChatText,
    ChatToolCalls,
    FakeOpenAIServer,
    Hang,
    HttpError,
    MidStreamError,
)


@tool
def get_weather(city: str) -> str:
    """Return the current weather for a city."""
    return f"Sunny in {city}"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as fake:
        yield fake


def _chat(server: FakeOpenAIServer, **kwargs: object) -> ChatOpenAI:
    options: dict[str, object] = {"max_retries": 0, **kwargs}
    return ChatOpenAI(
        base_url=server.base_url,
        api_key="test",  # type: ignore[arg-type]
        model="gpt-4o-mini",
        **options,  # type: ignore[arg-type]
    )


def test_tool_calls_then_text_reply(server: FakeOpenAIServer) -> None:
    server.script_chat(
        ChatToolCalls([("get_weather", {"city": "Paris"})], prompt_tokens=12, completion_tokens=7),
        ChatText("It is sunny in Paris."),
    )
    llm = _chat(server).bind_tools([get_weather])

    first = llm.invoke([HumanMessage("Weather in Paris?")])
    assert isinstance(first, AIMessage)
    assert [(c["name"], c["args"]) for c in first.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    call_id = first.tool_calls[0]["id"]
    assert call_id is not None
    assert call_id.startswith("call_")
    assert first.usage_metadata is not None
    assert first.usage_metadata["input_tokens"] == 12
    assert first.usage_metadata["output_tokens"] == 7
    assert first.usage_metadata["total_tokens"] == 19

    second = llm.invoke(
        [
            HumanMessage("Weather in Paris?"),
            first,
            ToolMessage(get_weather.invoke({"city": "Paris"}), tool_call_id=call_id),
        ]
    )
    assert second.content == "It is sunny in Paris."
    assert not second.tool_calls
    assert second.usage_metadata is not None
    assert second.usage_metadata["total_tokens"] == 15

    requests = server.chat_requests()
    assert len(requests) == 2
    first_body = requests[0].json
    assert first_body is not None
    assert first_body["model"] == "gpt-4o-mini"
    assert first_body["tools"][0]["function"]["name"] == "get_weather"
    assert requests[0].headers["authorization"] == "Bearer test"
    second_body = requests[1].json
    assert second_body is not None
    assert second_body["messages"][-1] == {
        "role": "tool",
        "content": "Sunny in Paris",
        "tool_call_id": call_id,
    }


def test_stream_text(server: FakeOpenAIServer) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    server.script_chat(ChatText(text, prompt_tokens=3, completion_tokens=9))

    chunks = list(_chat(server, stream_usage=True).stream("Tell me something"))

    contents = [c.content for c in chunks if c.content]
    assert len(contents) > 1
    assert "".join(str(c) for c in contents) == text
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    assert isinstance(merged, AIMessageChunk)
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["total_tokens"] == 12
    body = server.chat_requests()[0].json
    assert body is not None
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_stream_tool_calls(server: FakeOpenAIServer) -> None:
    server.script_chat(
        ChatToolCalls([("get_weather", {"city": "Oslo"}), ("get_weather", {"city": "Rome"})])
    )

    chunks = list(_chat(server).bind_tools([get_weather]).stream("Weather in Oslo and Rome?"))

    # bind_tools types the stream as AIMessage; what a chat model streams is AIMessageChunk.
    merged = chunks[0]
    assert isinstance(merged, AIMessageChunk)
    for chunk in chunks[1:]:
        assert isinstance(chunk, AIMessageChunk)
        merged = merged + chunk
    assert [c["args"] for c in merged.tool_calls] == [{"city": "Oslo"}, {"city": "Rome"}]
    ids = [c["id"] for c in merged.tool_calls]
    assert len(set(ids)) == 2


def _streamed_until_it_fails(
    server: FakeOpenAIServer,
) -> tuple[list[AIMessageChunk], openai.APIError]:
    received: list[AIMessageChunk] = []
    try:
        for chunk in _chat(server, stream_usage=True).stream("Hi"):
            assert isinstance(chunk, AIMessageChunk)
            received.append(chunk)
    except openai.APIError as error:
        return received, error
    raise AssertionError("the stream did not fail")


def test_a_stream_failing_partway_sends_its_first_chunks_then_an_error(
    server: FakeOpenAIServer,
) -> None:
    server.script_chat(MidStreamError(ChatText("Our best manuka is"), chunks=3))

    received, error = _streamed_until_it_fails(server)

    assert "while processing your request" in str(error)
    assert "".join(str(chunk.content) for chunk in received) == "Our best "
    assert all(chunk.usage_metadata is None for chunk in received)


def test_a_stream_failing_after_its_usage_reports_the_usage_first(
    server: FakeOpenAIServer,
) -> None:
    server.script_chat(MidStreamError(ChatText("Hello", prompt_tokens=30, completion_tokens=4)))

    received, _ = _streamed_until_it_fails(server)

    usage = [chunk.usage_metadata for chunk in received if chunk.usage_metadata]
    assert [(u["input_tokens"], u["output_tokens"]) for u in usage] == [(30, 4)]


def test_a_stream_failing_partway_asked_without_streaming_is_an_http_error(
    server: FakeOpenAIServer,
) -> None:
    server.script_chat(MidStreamError(ChatText("Hello"), error=HttpError(503)))

    with pytest.raises(openai.InternalServerError):
        _chat(server).invoke("Hi")


def test_rate_limit_then_success_with_retry(server: FakeOpenAIServer) -> None:
    server.script_chat(HttpError(429, "Slow down", retry_after=0.01), ChatText("ok"))

    reply = _chat(server, max_retries=1).invoke("hi")

    assert reply.content == "ok"
    assert len(server.chat_requests()) == 2


def test_rate_limit_without_retry_raises(server: FakeOpenAIServer) -> None:
    server.script_chat(HttpError(429, "Slow down"))

    with pytest.raises(openai.RateLimitError) as excinfo:
        _chat(server).invoke("hi")

    assert excinfo.value.status_code == 429
    assert "Slow down" in str(excinfo.value)


def test_hang_triggers_client_timeout(server: FakeOpenAIServer) -> None:
    server.script_chat(Hang(5))
    llm = _chat(server, timeout=0.5)

    # A hang that ran its course would end in the server's 500, an APIStatusError.
    with pytest.raises(openai.APITimeoutError):
        llm.invoke("hi")


def test_default_reply_when_script_is_empty(server: FakeOpenAIServer) -> None:
    llm = _chat(server)
    assert llm.invoke("hi").content == "(no scripted reply)"
    server.default = ChatText("fallback")
    assert llm.invoke("hi").content == "fallback"


def test_embeddings_via_langchain(server: FakeOpenAIServer) -> None:
    embeddings = OpenAIEmbeddings(
        base_url=server.base_url,
        api_key="test",  # type: ignore[arg-type]
        model="text-embedding-3-small",
        dimensions=384,
        check_embedding_ctx_length=False,
    )

    vectors = embeddings.embed_documents(["a", "b"])

    assert len(vectors) == 2
    assert all(len(v) == 384 for v in vectors)
    assert vectors[0] != vectors[1]
    assert math.isclose(math.sqrt(sum(x * x for x in vectors[0])), 1.0, rel_tol=1e-4)
    assert embeddings.embed_query("a") == vectors[0]
    assert embeddings.embed_documents(["b", "a"]) == [vectors[1], vectors[0]]
    body = server.embedding_requests()[0].json
    assert body is not None
    assert body["model"] == "text-embedding-3-small"
    assert body["dimensions"] == 384


def test_embeddings_float_and_base64_agree(server: FakeOpenAIServer) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)

    as_float = client.embeddings.create(
        model="text-embedding-3-small",
        # Mixes a text and a token array, which the API's type forbids, to exercise both forms.
        input=["hello", [1, 2, 3]],  # type: ignore[arg-type]
        encoding_format="float",
    )
    as_default = client.embeddings.create(model="text-embedding-3-small", input="hello")

    assert [len(d.embedding) for d in as_float.data] == [1536, 1536]
    assert as_default.data[0].embedding == as_float.data[0].embedding
    assert as_float.usage.prompt_tokens > 0
    raw_bodies = [r.json for r in server.embedding_requests()]
    assert [b["encoding_format"] for b in raw_bodies if b] == ["float", "base64"]


def test_embedding_inputs_holding_a_refused_word_are_refused_every_time(
    server: FakeOpenAIServer,
) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)
    server.refuse_embedding_inputs_with("forbidden")

    for _ in range(2):
        with pytest.raises(openai.BadRequestError):
            client.embeddings.create(model="text-embedding-3-small", input=["ok", "forbidden"])
    taken = client.embeddings.create(model="text-embedding-3-small", input=["ok"])

    assert len(taken.data) == 1


def test_an_embedding_request_past_its_token_limit_is_refused_whole(
    server: FakeOpenAIServer,
) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)

    with pytest.raises(openai.BadRequestError, match="max 300000 tokens"):
        client.embeddings.create(model="text-embedding-3-small", input=["x" * 8_000] * 38)
    taken = client.embeddings.create(model="text-embedding-3-small", input=["x" * 8_000] * 37)

    assert len(taken.data) == 37


def test_records_unknown_paths_and_404s(server: FakeOpenAIServer) -> None:
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)

    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o-mini")

    (request,) = server.requests
    assert (request.method, request.path, request.json) == ("GET", "/v1/models/gpt-4o-mini", None)


def test_non_streaming_response_shape(server: FakeOpenAIServer) -> None:
    server.script_chat(ChatToolCalls([("get_weather", {"city": "Lima"})]))
    client = openai.OpenAI(base_url=server.base_url, api_key="test", max_retries=0)

    completion = client.chat.completions.create(
        model="gpt-4.1-nano", messages=[{"role": "user", "content": "hi"}]
    )

    assert completion.model == "gpt-4.1-nano"
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert json.loads(call.function.arguments) == {"city": "Lima"}
    assert completion.usage is not None
    assert completion.usage.total_tokens == 15
