"""LoginCache on its own, with a hand-driven clock: TTL, LRU bound, digests instead of passwords."""

from __future__ import annotations

from keystream.auth.ldap_cache import LoginCache
from keystream.auth.principal import Principal
from keystream.auth.sasl import Authenticated


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(name: str) -> Authenticated:
    return Authenticated(Principal("User", name), (Principal("Group", "g"),))


def test_hit_needs_the_same_password_and_a_live_entry():
    clock = Clock()
    cache = LoginCache(10.0, 100, clock)
    good = cache.digest("alice", "pw-1")
    cache.store("alice", good, result("alice"))
    assert cache.lookup("alice", good) == result("alice")
    assert cache.lookup("alice", cache.digest("alice", "pw-2")) is None
    assert cache.lookup("alice", good) == result("alice")  # a wrong guess did not evict her
    clock.now += 10.0
    assert cache.lookup("alice", good) is None and len(cache) == 0


def test_least_recently_used_goes_first():
    cache = LoginCache(10.0, 2, Clock())
    digests = {u: cache.digest(u, "pw") for u in ("a", "b", "c")}
    cache.store("a", digests["a"], result("a"))
    cache.store("b", digests["b"], result("b"))
    cache.lookup("a", digests["a"])  # a is now more recent than b
    cache.store("c", digests["c"], result("c"))
    assert cache.lookup("b", digests["b"]) is None
    assert cache.lookup("a", digests["a"]) and cache.lookup("c", digests["c"])


def test_digest_is_salted_per_process_and_per_user():
    one, two = LoginCache(10.0, 10), LoginCache(10.0, 10)
    assert one.digest("alice", "pw") != two.digest("alice", "pw")
    assert one.digest("alice", "pw") != one.digest("bob", "pw")
    assert b"pw" not in one.digest("alice", "pw")


def test_off_when_ttl_or_size_is_zero():
    for cache in (LoginCache(0, 10), LoginCache(10.0, 0)):
        cache.store("alice", b"d", result("alice"))
        assert not cache.enabled and len(cache) == 0
