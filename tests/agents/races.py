"""A worker's steps caught mid-way, on threads of their own: for races with its locks."""

import threading
import time

import pytest

from agents import services as agents_services
from agents.models import AgentRun
from agents.turns import TurnResult
from conversations.models import Conversation
from tests.agents.factories import AgentRunFactory
from tests.support.transactions import in_thread


def a_reply_being_stored(
    monkeypatch: pytest.MonkeyPatch, conversation: Conversation | None = None
) -> tuple[AgentRun, threading.Thread, dict[str, object]]:
    """A worker storing a turn's reply on a thread of its own, holding the run a second before
    it turns to the conversation (``_silenced``): the run, the thread, and what it returns. The
    run is added (and committed) on a connection of its own, to ``conversation`` if given."""
    added: dict[str, object] = {}
    in_thread(
        lambda: AgentRunFactory.create(
            status=AgentRun.Status.RUNNING,
            deliveries=1,
            **({"conversation": conversation} if conversation else {}),
        ),
        added,
    ).join(30)
    run = added["returned"]
    assert isinstance(run, AgentRun)
    run_locked = threading.Event()
    silenced = agents_services._silenced

    def silenced_a_second_later(run: AgentRun, *, handed_off: bool) -> object:
        run_locked.set()  # the worker holds the run and turns to its conversation
        time.sleep(1.0)
        return silenced(run, handed_off=handed_off)

    monkeypatch.setattr(agents_services, "_silenced", silenced_a_second_later)
    result = TurnResult(
        reply="Heather honey is in stock.", route="sales", agent="sales", provider="offline",
        model_name="offline",
    )  # fmt: skip
    worker: dict[str, object] = {}
    storing = in_thread(lambda: agents_services._store(run, result, latency_ms=5), worker)
    assert run_locked.wait(10)
    return run, storing, worker
