"""A Redis that hangs: connections are taken, and nothing is ever answered."""

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
