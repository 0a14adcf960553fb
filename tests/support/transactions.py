"""Another request's transaction, open while a test's own code runs: for races."""

import threading
import time
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


@contextmanager
def written_meanwhile(*writes: Callable[[], object], apart: float = 1.0) -> Iterator[None]:
    """Another request's transaction makes the ``writes`` one after another, ``apart`` seconds
    apart (the first before the block starts), and commits after the last; an error in it
    fails the test when the block ends."""
    started = threading.Event()
    errors: list[BaseException] = []

    def other_request() -> None:
        try:
            with transaction.atomic():
                for number, write in enumerate(writes):
                    if number:
                        time.sleep(apart)
                    write()
                    started.set()
        except BaseException as error:
            errors.append(error)
        finally:
            started.set()
            connection.close()

    thread = threading.Thread(target=other_request)
    thread.start()
    assert started.wait(10)
    try:
        yield
    finally:
        thread.join()
    assert errors == []
