import gc
import runpy
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector can free it


@pytest.fixture
def hooks() -> Iterator[dict]:
    threshold = gc.get_threshold()
    yield runpy.run_path(str(CONF))
    gc.set_threshold(*threshold)


def test_a_worker_leaves_young_garbage_to_the_end_of_each_request(hooks: dict) -> None:
    hooks["post_worker_init"](worker=None)

    assert gc.get_threshold()[0] == hooks["YOUNG_GENERATION_THRESHOLD"]


def test_the_garbage_of_a_request_is_collected_once_it_is_answered(hooks: dict) -> None:
    hooks["post_worker_init"](worker=None)
    garbage = weakref.ref(Node())

    hooks["post_request"](worker=None, req=None, environ={}, resp=None)

    assert garbage() is None
