"""A small, scriptable, OpenAI-compatible HTTP server for tests.

Standard library only. The server listens on 127.0.0.1 (ephemeral port) in a daemon thread and
speaks enough of the OpenAI REST API for the real ``openai`` client and ``langchain-openai``:

* ``POST /v1/chat/completions`` answers with scripted responses (FIFO), streaming or not.
* ``POST /v1/embeddings`` answers with deterministic, hash-derived unit vectors
  (``encoding_format`` ``"float"`` or ``"base64"``; the ``openai`` client asks for base64 unless
  told otherwise), after any scripted errors (``script_embedding_errors``, FIFO); an input
  past the models' 8,191-token limit gets OpenAI's 400.

Every request is recorded, so tests can assert on what the client sent::

    with FakeOpenAIServer() as server:
        server.script_chat(ChatToolCalls([("get_weather", {"city": "Paris"})]), ChatText("Sunny."))
        llm = ChatOpenAI(base_url=server.base_url, api_key="test", model="gpt-4o-mini")
        ...
        assert server.chat_requests()[0].json["tools"]
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
import re
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count, islice
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import urlsplit

__all__ = [
    "ChatText",
    "ChatToolCalls",
    "FakeOpenAIServer",
    "Hang",
    "HttpError",
    "MidStreamError",
    "RecordedRequest",
    "ScriptedResponse",
]

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
DEFAULT_CHAT_MODEL = "gpt-4o-mini"
DEFAULT_EMBEDDING_MODEL = "text-embedding-ada-002"
DEFAULT_EMBEDDING_DIMENSIONS = 1536
# OpenAI's limit is in tokens; the fake counts each byte as one, the most a text can hold, so
# an input it takes is one OpenAI takes.
EMBEDDING_INPUT_MAX_TOKENS = 8191
# And at most this many a request, over all its inputs, and this many inputs.
EMBEDDING_REQUEST_MAX_TOKENS = 300_000
EMBEDDING_REQUEST_MAX_INPUTS = 2048


# --------------------------------------------------------------------------------------------
# Scripted responses
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatText:
    """A normal ``chat.completion`` whose assistant message has text ``content``."""

    content: str
    prompt_tokens: int = 10
    completion_tokens: int = 5
    # Of the prompt tokens, those read from the prompt cache (usage's prompt_tokens_details).
    cached_tokens: int = 0
    # "content_filter" (content cut short by a filter) or "length" (out of tokens), say. None:
    # streamed, the text ends without a finish reason, usage or ``[DONE]``, as a server or proxy
    # closing the stream mid-answer sends it.
    finish_reason: str | None = "stop"
    # False: the response carries no usage, as some compatible servers answer.
    usage: bool = True


@dataclass(frozen=True)
class ChatToolCalls:
    """An assistant message with ``tool_calls``: one ``(function_name, arguments)`` per call.

    Arguments given as a string are sent as they are (not JSON-encoded): malformed JSON, say.
    Call ids are ``call_1``, ``call_2``, ... numbered per server (unique across responses).
    """

    calls: list[tuple[str, dict[str, Any] | str]]
    prompt_tokens: int = 10
    completion_tokens: int = 5
    cached_tokens: int = 0
    usage: bool = True
    # Text before the calls ("Let me check that for you."), as a model may write one.
    content: str | None = None


@dataclass(frozen=True)
class HttpError:
    """An error status with an OpenAI-style ``{"error": {...}}`` JSON body.

    ``retry_after`` (seconds) is sent as a ``Retry-After`` header when given; ``code`` replaces
    the status's usual error code (``insufficient_quota`` for a 429, say).
    """

    status: int
    message: str = "Scripted error from FakeOpenAIServer"
    retry_after: float | None = None
    code: str | None = None


@dataclass(frozen=True)
class Hang:
    """Sleep ``seconds`` before answering (then answer 500); for client timeout tests.

    The sleep ends early when the server is stopped.
    """

    seconds: float


@dataclass(frozen=True)
class MidStreamError:
    """A streamed ``reply`` that fails partway, as OpenAI fails one: the first ``chunks`` of its
    chunks are sent (all of them, the usage chunk included when the client asked for usage, if
    None), then an event carrying ``error``, and no ``[DONE]``; the client raises ``APIError``.
    Asked for without streaming, it answers ``error`` as an HTTP error.
    """

    reply: ChatText | ChatToolCalls
    chunks: int | None = None
    error: HttpError = HttpError(500, "The server had an error while processing your request.")


@dataclass(frozen=True)
class GarbledStream:
    """A 200 event stream whose events are ``data`` as given, then ``[DONE]``: none at all
    (a gateway that answered with an empty stream) or lines that are not JSON ("<html>")."""

    data: tuple[str, ...] = ()


ScriptedResponse = ChatText | ChatToolCalls | HttpError | Hang | MidStreamError | GarbledStream

NO_SCRIPTED_REPLY = ChatText("(no scripted reply)")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received. ``headers`` keys are lower-cased; ``path`` has no query."""

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any] | None


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


class FakeOpenAIServer:
    """Scriptable OpenAI-compatible server; use as a context manager or ``start()``/``stop()``."""

    def __init__(self) -> None:
        self.default: ScriptedResponse | None = None
        # Vectors of this size whatever ``dimensions`` asks, as a server that ignores it.
        self.embedding_dimensions: int | None = None
        self._lock = threading.Lock()
        self._script: deque[ScriptedResponse] = deque()
        self._embedding_errors: deque[HttpError] = deque()
        self._refused_words: set[str] = set()
        self._requests: list[RecordedRequest] = []
        self._call_ids = count(1)
        self._stopping = threading.Event()
        self._httpd: _FakeHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError("FakeOpenAIServer is already running")
        self._stopping.clear()
        httpd = _FakeHTTPServer(("127.0.0.1", 0), _Handler)
        httpd.fake = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-openai-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()  # wake up handlers sleeping in Hang
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("FakeOpenAIServer is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: pass as ``base_url`` / ``OPENAI_BASE_URL``."""
        return f"http://127.0.0.1:{self.port}/v1"

    # -- scripting and recording -------------------------------------------------------------

    def script_chat(self, *responses: ScriptedResponse) -> None:
        """Queue responses for ``POST /v1/chat/completions``, consumed one per request."""
        with self._lock:
            self._script.extend(responses)

    def script_embedding_errors(self, *errors: HttpError) -> None:
        """Queue errors for ``POST /v1/embeddings``, one per request; then it answers again."""
        with self._lock:
            self._embedding_errors.extend(errors)

    def refuse_embedding_inputs_with(self, word: str) -> None:
        """Answer ``POST /v1/embeddings`` with a 400 whenever an input holds ``word``, as a
        provider refuses what it will never embed, however often asked."""
        with self._lock:
            self._refused_words.add(word)

    @property
    def pending(self) -> int:
        """Number of scripted chat responses not consumed yet."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot (copy) of all requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == CHAT_COMPLETIONS_PATH]

    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == EMBEDDINGS_PATH]

    def embedding_inputs(self) -> list[list[str]]:
        """The texts each embedding request asked for, request by request."""
        return [_embedding_inputs(r.json.get("input")) for r in self.embedding_requests() if r.json]

    def reset(self) -> None:
        """Drop the script, the recorded requests and ``default``."""
        with self._lock:
            self._script.clear()
            self._embedding_errors.clear()
            self._refused_words.clear()
            self._requests.clear()
            self.default = None
            self.embedding_dimensions = None

    # -- internals used by the handler -------------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_chat_response(self) -> ScriptedResponse:
        with self._lock:
            if self._script:
                return self._script.popleft()
        return self.default if self.default is not None else NO_SCRIPTED_REPLY

    def _next_embedding_error(self) -> HttpError | None:
        with self._lock:
            return self._embedding_errors.popleft() if self._embedding_errors else None

    def _refuses(self, texts: list[str]) -> bool:
        with self._lock:
            return any(word in text for word in self._refused_words for text in texts)

    def _next_call_id(self) -> str:
        with self._lock:
            return f"call_{next(self._call_ids)}"

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _FakeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAIServer

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out or disconnect mid-response are expected in tests; stay quiet.
        return


# --------------------------------------------------------------------------------------------
# Request handler
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeOpenAI/1.0"

    @property
    def fake(self) -> FakeOpenAIServer:
        return cast(_FakeHTTPServer, self.server).fake

    def log_message(self, format: str, *args: object) -> None:
        return

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self) -> None:
        body = self._read_body()
        path = urlsplit(self.path).path
        payload: dict[str, Any] | None = None
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            payload = decoded
        headers = {key.lower(): value for key, value in self.headers.items()}
        self.fake._record(RecordedRequest(self.command, path, headers, payload))

        try:
            if self.command == "POST" and path == CHAT_COMPLETIONS_PATH:
                self._chat_completions(payload or {})
            elif self.command == "POST" and path == EMBEDDINGS_PATH:
                self._embeddings(payload or {})
            else:
                self._send_error(HttpError(404, f"Unknown endpoint: {self.command} {path}"))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # skip trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # -- chat completions --------------------------------------------------------------------

    def _chat_completions(self, request: dict[str, Any]) -> None:
        unanswered = _unanswered_tool_call_ids(request.get("messages") or [])
        if unanswered:
            self._send_error(
                HttpError(
                    400,
                    "An assistant message with 'tool_calls' must be followed by tool messages"
                    " responding to each 'tool_call_id'. The following tool_call_ids did not"
                    f" have response messages: {', '.join(unanswered)}",
                )
            )
            return
        response = self.fake._next_chat_response()
        if isinstance(response, Hang):
            self.fake._sleep(response.seconds)
            self._send_error(HttpError(500, f"Hung for {response.seconds}s (scripted Hang)"))
            return
        if isinstance(response, HttpError):
            self._send_error(response)
            return
        if isinstance(response, GarbledStream):
            self._send_raw_event_stream(response.data)
            return
        failure: MidStreamError | None = None
        if isinstance(response, MidStreamError):
            if not request.get("stream"):
                self._send_error(response.error)
                return
            failure, response = response, response.reply

        model = str(request.get("model") or DEFAULT_CHAT_MODEL)
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        tool_calls = (
            [
                {
                    "id": self.fake._next_call_id(),
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": (
                            arguments if isinstance(arguments, str) else json.dumps(arguments)
                        ),
                    },
                }
                for name, arguments in response.calls
            ]
            if isinstance(response, ChatToolCalls)
            else []
        )
        usage = _usage(response.prompt_tokens, response.completion_tokens, response.cached_tokens)

        if request.get("stream"):
            stream_options = request.get("stream_options") or {}
            include_usage = bool(stream_options.get("include_usage")) and response.usage
            cut_off = isinstance(response, ChatText) and response.finish_reason is None
            chunks = _stream_chunks(
                completion_id, created, model, response, tool_calls, usage, include_usage
            )
            if failure is not None:
                chunks = _failing(islice(chunks, failure.chunks), failure.error)
            self._send_event_stream(chunks, done=not cut_off and failure is None)
            return

        message: dict[str, Any] = {"role": "assistant", "refusal": None}
        if isinstance(response, ChatText):
            message["content"] = response.content
            finish_reason = response.finish_reason
        else:
            message["content"] = response.content
            message["tool_calls"] = tool_calls
            finish_reason = "tool_calls"
        completion: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
            ],
            "system_fingerprint": None,
        }
        if response.usage:
            completion["usage"] = usage
        self._send_json(200, completion)

    # -- embeddings --------------------------------------------------------------------------

    def _embeddings(self, request: dict[str, Any]) -> None:
        error = self.fake._next_embedding_error()
        if error is not None:
            self._send_error(error)
            return
        model = str(request.get("model") or DEFAULT_EMBEDDING_MODEL)
        dimensions = self.fake.embedding_dimensions or int(
            request.get("dimensions") or DEFAULT_EMBEDDING_DIMENSIONS
        )
        as_base64 = request.get("encoding_format") == "base64"
        texts = _embedding_inputs(request.get("input"))
        if self.fake._refuses(texts):
            self._send_error(HttpError(400, "The input was refused."))
            return
        # Tokens counted as bytes: at least as many as the API counts, whatever the text.
        requested = sum(len(text.encode()) for text in texts)
        if requested > EMBEDDING_REQUEST_MAX_TOKENS or len(texts) > EMBEDDING_REQUEST_MAX_INPUTS:
            self._send_error(
                HttpError(
                    400,
                    f"Requested {requested} tokens in {len(texts)} inputs, max "
                    f"{EMBEDDING_REQUEST_MAX_TOKENS} tokens and {EMBEDDING_REQUEST_MAX_INPUTS}"
                    " inputs per request",
                )
            )
            return
        too_long = next((t for t in texts if len(t.encode()) > EMBEDDING_INPUT_MAX_TOKENS), None)
        if too_long is not None:
            self._send_error(
                HttpError(
                    400,
                    f"This model's maximum context length is {EMBEDDING_INPUT_MAX_TOKENS} "
                    f"tokens, however you requested up to {len(too_long.encode())} tokens.",
                )
            )
            return
        data = []
        for index, text in enumerate(texts):
            vector = _deterministic_vector(text, dimensions)
            embedding: list[float] | str = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode("ascii")
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(max(1, len(text.split())) for text in texts)
        self._send_json(
            200,
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    # -- low-level writers -------------------------------------------------------------------

    def _send_json(
        self, status: int, body: dict[str, Any], extra_headers: dict[str, str] | None = None
    ) -> None:
        raw = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)
        self.wfile.flush()

    def _send_error(self, error: HttpError) -> None:
        error_type, code = _error_kind(error.status)
        code = error.code or code
        headers: dict[str, str] = {}
        if error.retry_after is not None:
            headers["Retry-After"] = f"{error.retry_after:g}"
        body = {
            "error": {"message": error.message, "type": error_type, "param": None, "code": code}
        }
        self._send_json(error.status, body, headers)

    def _send_event_stream(self, chunks: Iterator[dict[str, Any]], *, done: bool = True) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", f"req_{uuid.uuid4().hex}")
        self.end_headers()
        for chunk in chunks:
            self._write_chunk(f"data: {json.dumps(chunk)}\n\n".encode())
        if done:
            self._write_chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_raw_event_stream(self, data: tuple[str, ...]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for line in (*data, "[DONE]"):
            self._write_chunk(f"data: {line}\n\n".encode())
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):X}\r\n".encode("ascii") + data + b"\r\n")
        self.wfile.flush()


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------

_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "not_found"),
    409: ("invalid_request_error", "conflict"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}


def _error_kind(status: int) -> tuple[str, str | None]:
    if status in _ERROR_KINDS:
        return _ERROR_KINDS[status]
    if status >= 500:
        return ("server_error", "server_error")
    return ("invalid_request_error", None)


def _usage(prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
    }


def _failing(chunks: Iterator[dict[str, Any]], error: HttpError) -> Iterator[dict[str, Any]]:
    """``chunks``, then ``error`` as the event OpenAI sends when a stream fails."""
    yield from chunks
    error_type, code = _error_kind(error.status)
    yield {
        "error": {
            "message": error.message,
            "type": error_type,
            "param": None,
            "code": error.code or code,
        }
    }


def _split_text(text: str) -> list[str]:
    """Split into word-sized deltas (each keeps its trailing whitespace)."""
    pieces = re.findall(r"\s*\S+\s*", text) if text.strip() else [text]
    return pieces or [text]


def _split_arguments(arguments: str, parts: int = 3) -> list[str]:
    size = max(1, math.ceil(len(arguments) / parts))
    return [arguments[i : i + size] for i in range(0, len(arguments), size)] or [""]


def _stream_chunks(
    completion_id: str,
    created: int,
    model: str,
    response: ChatText | ChatToolCalls,
    tool_calls: list[dict[str, Any]],
    usage: dict[str, Any],
    include_usage: bool,
) -> Iterator[dict[str, Any]]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [
                {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
            ],
        }
        if include_usage:
            body["usage"] = None
        return body

    if isinstance(response, ChatText):
        yield chunk({"role": "assistant", "content": "", "refusal": None})
        for piece in _split_text(response.content):
            yield chunk({"content": piece})
        if response.finish_reason is None:
            return  # cut off: nothing more, not even the usage
        yield chunk({}, response.finish_reason)
    else:
        yield chunk({"role": "assistant", "content": None, "refusal": None})
        for piece in _split_text(response.content or ""):
            yield chunk({"content": piece})
        for index, call in enumerate(tool_calls):
            function = call["function"]
            header = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": function["name"], "arguments": ""},
            }
            yield chunk({"tool_calls": [header]})
            for piece in _split_arguments(function["arguments"]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls")

    if include_usage:
        yield {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": [],
            "usage": usage,
        }


def _unanswered_tool_call_ids(messages: list[dict[str, Any]]) -> list[str]:
    """The ids of tool calls no ``tool`` message right after their assistant message answers:
    OpenAI refuses such a request with a 400."""
    unanswered: list[str] = []
    for index, message in enumerate(messages):
        calls = message.get("tool_calls") or [] if message.get("role") == "assistant" else []
        answered = set()
        for later in messages[index + 1 :]:
            if later.get("role") != "tool":
                break
            answered.add(later.get("tool_call_id"))
        unanswered += [call.get("id") for call in calls if call.get("id") not in answered]
    return unanswered


def _embedding_inputs(raw: object) -> list[str]:
    """Normalise ``input`` (str, list[str], list[int] or list[list[int]]) to strings to hash."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list):
        if raw and all(isinstance(item, int) for item in raw):
            return [repr(raw)]  # a single token-id array
        return [item if isinstance(item, str) else repr(item) for item in raw]
    return [repr(raw)]


def _deterministic_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector seeded by SHA-256 of ``text``, rounded to float32 precision."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big")
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    normalised = [v / norm for v in values]
    # Round-trip through float32 so "float" and "base64" encodings yield identical vectors.
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *normalised)))
