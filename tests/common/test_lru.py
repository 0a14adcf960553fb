import time

import pytest

from beemanhoney.common.lru import ExpiringLruCache, LruCache


def test_a_value_is_made_once_while_it_stays_in_the_cache() -> None:
    cache: LruCache[str] = LruCache(size=2)
    made: list[str] = []

    def make(value: str) -> str:
        made.append(value)
        return value

    first = cache.get_or_make("a", lambda: make("a"))
    again = cache.get_or_make("a", lambda: make("other"))

    assert (first, again) == ("a", "a")
    assert made == ["a"]


def test_the_least_recently_used_value_is_dropped_first() -> None:
    cache: LruCache[int] = LruCache(size=2)
    cache.get_or_make("a", lambda: 1)
    cache.get_or_make("b", lambda: 2)
    cache.get_or_make("a", lambda: 0)  # "a" is now the most recently used

    cache.get_or_make("c", lambda: 3)

    assert cache.get_or_make("a", lambda: -1) == 1
    assert cache.get_or_make("b", lambda: -2) == -2  # dropped, so made again


def test_get_finds_only_what_was_put_and_keeps_it_in_use() -> None:
    cache: LruCache[int] = LruCache(size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    missing = cache.get("x")
    cache.get("a")  # "a" is now the most recently used

    cache.put("c", 3)

    assert missing is None
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_an_expiring_value_is_made_again_once_it_is_max_age_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache: ExpiringLruCache[int] = ExpiringLruCache(size=2, max_age=60)
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    first = cache.get_or_make("a", lambda: 1)
    clock[0] += 59.9
    within = cache.get_or_make("a", lambda: 2)
    clock[0] += 0.1

    after = cache.get_or_make("a", lambda: 3)
    cache.clear()

    assert (first, within, after) == (1, 1, 3)
    assert cache.get_or_make("a", lambda: 4) == 4
