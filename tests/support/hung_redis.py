"""Redis faults: a server that hangs (connections taken, nothing ever answered) and one that
hangs up (each connection closed as it is taken)."""

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pytest
from django.db import connection

T = TypeVar("T")


@contextmanager
def hung_redis() -> Iterator[str]:
    """The URL of a server that never answers, as a Redis behind a failover or a firewall that
    drops the connection without a word: the kernel completes each connection to a socket that
    listens, and no one accepts them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


@contextmanager
def hanging_up_redis() -> Iterator[tuple[str, Callable[[], int]]]:
    """The URL of a server that closes each connection as it takes it, as a Redis restarting,
    and how many connections it has taken so far."""
    taken: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)

        def hang_up() -> None:
            while True:
                try:
                    client, _ = listener.accept()
                except OSError:  # the listener closed
                    return
                taken.append(client)
                client.close()

        threading.Thread(target=hang_up, daemon=True).start()
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0", lambda: len(taken)


def returns_within(seconds: float, call: Callable[[], T]) -> T:
    """``call()``'s result, failing the test (not hanging it) if it takes longer."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(call())
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)  # a daemon: a hung one ends with pytest
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"still waiting after {seconds} s")
    if errors:
        raise errors[0]
    return results[0]
