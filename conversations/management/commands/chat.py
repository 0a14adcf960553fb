"""A terminal chat as a customer, through the HTTP API and the Celery workers like any client."""

import http.client
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from beemanhoney.common.management import INTERRUPTED_EXIT_CODE

WAIT_SECONDS = 25
RUN_WAITS = 8  # of WAIT_SECONDS each: longer than a turn may run (the worker's time limit)
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = ""

    def call(self, method: str, path: str, body: Any = None, headers: dict | None = None) -> Any:
        request = urllib.request.Request(  # noqa: S310 (the URL is the operator's)
            f"{self.base_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.token}"} if self.token else {}),
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=WAIT_SECONDS + 5) as response:  # noqa: S310
                body = response.read()
        except urllib.error.HTTPError as exc:
            detail = _json_or_none(exc.read())
            reason = detail.get("detail", exc.reason) if isinstance(detail, dict) else exc.reason
            raise CommandError(f"{method} {path} answered {exc.code}: {reason}") from None
        except urllib.error.URLError as exc:
            raise CommandError(f"cannot reach {self.base_url}: {exc.reason}") from None
        except OSError as exc:  # a timeout, a reset connection
            raise CommandError(f"{method} {path}: no answer from {self.base_url} ({exc})") from None
        except http.client.HTTPException as exc:  # a server that does not speak HTTP
            raise CommandError(
                f"{method} {path}: {self.base_url} did not answer in HTTP ({exc!r})"
            ) from None
        answer = _json_or_none(body)
        if not isinstance(answer, dict):
            raise CommandError(
                f"{method} {path} answered something other than a JSON object: "
                f"is {self.base_url} this project's API?"
            )
        return answer


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:  # not JSON, or not UTF-8
        return None


def _path_of(url: str | None) -> str | None:
    """The path and query of a pagination link, which names the server as it saw itself."""
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _base_url(url: str) -> str:
    """``url`` if it can be an API's base URL; ``CommandError`` naming the option if not."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except ValueError as exc:
        raise CommandError(f"--url: {url!r} is not a URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"--url: {url!r} is not an http:// or https:// URL")
    if any(char.isspace() for char in url):
        raise CommandError(f"--url: {url!r} is not a URL (it holds a space)")
    return url


class Command(BaseCommand):
    help = "Chat with the assistant as a guest customer through the API (needs `make run`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000",
            help="the API's base URL (default: http://127.0.0.1:8000, where `make run` serves)",
        )
        parser.add_argument(
            "--message",
            action="extend",
            nargs="+",
            metavar="TEXT",
            help=(
                "send each TEXT as a message in turn, printing each reply, then exit instead of"
                " prompting; each word is a message of its own unless quoted"
                " (--message 'Do you ship to France?' 'And to Spain?'); the option may repeat"
            ),
        )

    def handle(self, *args: Any, url: str, message: list[str] | None, **options: Any) -> None:
        api = ApiClient(_base_url(url))
        try:
            self._chat(api, message)
        except KeyboardInterrupt:
            raise CommandError("interrupted", returncode=INTERRUPTED_EXIT_CODE) from None
        except (KeyError, TypeError) as exc:
            raise CommandError(
                f"{api.base_url} answered without what this project's API sends ({exc!r}):"
                " is it this project's API?"
            ) from None

    def _chat(self, api: ApiClient, message: list[str] | None) -> None:
        api.token = api.call("POST", "/api/auth/guest/")["access"]
        conversation = api.call("POST", "/api/conversations/", {"title": "Terminal chat"})
        messages_path = f"/api/conversations/{conversation['id']}/messages/"
        self.stdout.write(f"Conversation {conversation['id']}. Type your message; Ctrl-D quits.")
        shown = 0  # the last message id printed or sent
        lines = iter(message) if message else self._prompt()
        for line in lines:
            if not line.strip():
                continue
            posted = api.call(
                "POST", messages_path, {"content": line},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )  # fmt: skip
            shown = self._show_staff_messages(api, messages_path, after=shown)
            shown = max(shown, posted["message"]["id"])
            if posted["run"] is None:
                self.stdout.write("(a member of staff has this conversation; they will reply)")
                continue
            run = self._finished_run(api, posted["run"]["id"])
            reply = run["reply"]["content"] if run["reply"] else f"(run {run['status']})"
            self.stdout.write(f"assistant [{run['route'] or '-'}]: {reply}\n")
            shown = max(shown, run["reply"]["id"] if run["reply"] else 0)

    @staticmethod
    def _finished_run(api: ApiClient, run_id: str) -> Any:
        """The run once it has finished; the server holds each wait up to 25 s."""
        for _ in range(RUN_WAITS):
            run = api.call("GET", f"/api/runs/{run_id}/?wait={WAIT_SECONDS}")
            if run["status"] in FINISHED:
                break
        return run

    def _show_staff_messages(self, api: ApiClient, path: str, *, after: int) -> int:
        """Print what staff wrote since message ``after``; the last message id seen."""
        page: str | None = f"{path}?after={after}"
        while page:
            answer = api.call("GET", page)
            for item in answer["results"]:
                if item["role"] == "staff":
                    self.stdout.write(f"staff: {item['content']}")
                after = max(after, item["id"])
            page = _path_of(answer["next"])
        return after

    def _prompt(self) -> Iterator[str]:
        while True:
            try:
                yield input("you: ")
            except EOFError:
                sys.stdout.write("\n")
                return
