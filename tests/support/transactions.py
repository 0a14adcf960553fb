"""Another request's transaction, open while a test's own code runs: for races."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def saved_meanwhile(save: Callable[[], object], *, commit_after: float = 1.0) -> Iterator[None]:
    """Another request's transaction saves with ``save()`` before the block starts, and commits
    ``commit_after`` seconds later: the block's reads cannot see what it wrote yet, and a write
    or a lock of the same rows waits for its commit."""
    saved, commit = threading.Event(), threading.Event()

    def other_request() -> None:
        try:
            with transaction.atomic():
                save()
                saved.set()
                commit.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_request)
    thread.start()
    assert saved.wait(10)
    timer = threading.Timer(commit_after, commit.set)
    timer.start()
    try:
        yield
    finally:
        timer.join()
        thread.join()
