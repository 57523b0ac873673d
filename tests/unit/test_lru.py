"""notifier.lru.BoundedTTLCache: fixed size, least recently used out first, entries expire."""
from notifier.lru import BoundedTTLCache


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_the_cache_never_holds_more_than_its_bound_and_drops_the_least_recently_used():
    cache = BoundedTTLCache(3, 60)
    for key in "abc":
        cache.set(key, key.upper())
    assert cache.get("a") == "A"  # a is now the most recently used
    cache.set("d", "D")
    assert len(cache) == 3
    assert "b" not in cache and cache.get("a") == "A" and cache.get("d") == "D"


def test_an_expired_entry_is_not_served_and_is_dropped():
    clock = Clock()
    cache = BoundedTTLCache(10, 5, clock=clock)
    cache.set("k", 1)
    clock.now = 4.9
    assert cache.get("k") == 1
    clock.now = 5.0
    assert cache.get("k", "gone") == "gone"
    assert len(cache) == 0
