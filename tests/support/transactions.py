"""Another request's transaction, open while a test's own code runs: for races."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def saved_meanwhile(*saves: Callable[[], object], apart: float = 1.0) -> Iterator[None]:
    """Another request's transaction makes the ``saves``, the first before the block starts and
    each later one ``apart`` seconds after the one before, and commits ``apart`` seconds after
    the last: the block's reads cannot see what it wrote yet, and a write or a lock of the same
    rows waits for its commit. An error in it fails the test when the block ends."""
    first_saved = threading.Event()
    errors: list[BaseException] = []

    def other_request() -> None:
        try:
            with transaction.atomic():
                for number, save in enumerate(saves):
                    if number:
                        time.sleep(apart)
                    save()
                    first_saved.set()
                time.sleep(apart)
        except BaseException as error:
            errors.append(error)
        finally:
            first_saved.set()
            connection.close()

    thread = threading.Thread(target=other_request)
    thread.start()
    assert first_saved.wait(10)
    try:
        yield
    finally:
        thread.join()
    assert errors == []


def in_thread(work: Callable[[], object], outcome: dict[str, object]) -> threading.Thread:
    """``work()`` on a connection of its own; what it returned or raised, in ``outcome``."""

    def run() -> None:
        try:
            outcome["returned"] = work()
        except Exception as error:
            outcome["raised"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread
