"""Rate limits a real shop would choose, read from ``settings.THROTTLE_RATES`` on each use."""

import hashlib
import ipaddress
import logging
import secrets
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.throttling import (
    AnonRateThrottle,
    BaseThrottle,
    SimpleRateThrottle,
    UserRateThrottle,
)

# KEYS[1]: the client's key. ARGV: now, window seconds, allowed requests, a unique member.
# Returns {1, ""} and records the request, or {0, the oldest request time in the window}.
SLIDING_WINDOW_LUA = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return {0, redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]}
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])))
return {1, ''}
"""


logger = logging.getLogger(__name__)

# A Redis that hangs, rather than refusing, must not hold request threads for long.
REDIS_TIMEOUT_SECONDS = 0.5
OUTAGE_LOG_INTERVAL_SECONDS = 60.0
_outage_logged_at = 0.0


@lru_cache(maxsize=4)
def _redis(location: str) -> redis.Redis:
    return redis.Redis.from_url(
        location,
        socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )


@lru_cache(maxsize=4)
def _sliding_window(location: str) -> Any:
    return _redis(location).register_script(SLIDING_WINDOW_LUA)


def _log_outage(error: redis.RedisError) -> None:
    """Once a minute per process, not once per request."""
    global _outage_logged_at
    now = time.monotonic()
    if now - _outage_logged_at >= OUTAGE_LOG_INTERVAL_SECONDS:
        _outage_logged_at = now
        logger.warning("throttle.redis_unavailable", extra={"error": type(error).__name__})


def _client_network(address: str) -> str:
    """What a rate counts ``address`` as: an IPv6 address as its /64 network, which a host (a
    home, a server) is given whole, so that one client cannot count as 2^64 by stepping
    through its addresses; an IPv4 address, one mapped into IPv6 too, as itself."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        network = ipaddress.IPv6Address(int(parsed) & ~((1 << 64) - 1))
        return f"{network}/64"
    return address


class _SlidingWindowThrottle(SimpleRateThrottle):
    """DRF's rate throttle, with each client's request times in a Redis sorted set.

    DRF keeps them as one pickled list in the cache: a read and a write per request (~1 ms of
    every API call here), and two requests at once can both read the same list, so one goes
    uncounted. One Lua script checks and records a request atomically, in one round trip
    (~0.35 ms). The rule is DRF's: at most N requests in any window of the rate's length.
    """

    scope: str
    oldest: float
    # The entry this throttle recorded for the request, for ``release``.
    recorded: tuple[str, str] | None = None
    # Set by SimpleRateThrottle.__init__ from the rate; allow_request reads them only when
    # there is a rate.
    num_requests: int
    duration: int

    def get_ident(self, request: Any) -> str:
        """The client's address as DRF reads it (``REMOTE_ADDR``, or the trusted proxy's
        ``X-Forwarded-For`` entry); an IPv6 address as its /64 network (``_client_network``)."""
        return _client_network(super().get_ident(request))

    def get_rate(self) -> str | None:
        return settings.THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Any, view: Any) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        # Not DRF's key: a string it left there (before a deploy, or from a worker still on
        # the old code) would make the script fail.
        window = self.cache.make_key(f"{self.key}:window")
        member = f"{self.now}:{secrets.token_hex(4)}"
        try:
            allowed, oldest = _sliding_window(settings.CACHES["default"]["LOCATION"])(
                keys=[window], args=[self.now, self.duration, self.num_requests, member]
            )
        except redis.RedisError as error:
            # Rate limits fail open: with Redis down the shop still answers (and a customer's
            # message is still stored, for the sweeper to send once the broker is back).
            _log_outage(error)
            return True
        if not allowed:
            self.oldest = float(oldest)
            return False
        self.recorded = (window, member)
        return True

    def release(self) -> None:
        """Uncount the request this throttle let through: it turned out not to be one that
        counts (see ``message_quota``)."""
        if self.recorded is None:
            return
        window, member = self.recorded
        self.recorded = None
        try:
            _redis(settings.CACHES["default"]["LOCATION"]).zrem(window, member)
        except redis.RedisError as error:
            _log_outage(error)

    def wait(self) -> float:
        return max(0.0, self.duration - (self.now - self.oldest))


class MessagePostThrottle(_SlidingWindowThrottle, UserRateThrottle):
    """Per customer: people type; scripts flood."""

    scope = "message_post"


class MessageDailyQuotaThrottle(_SlidingWindowThrottle, UserRateThrottle):
    """Per customer per day: bounds what one customer can spend on the model."""

    scope = "message_daily"


class _PerAddressThrottle(_SlidingWindowThrottle):
    """Counted per client address, signed in or not (DRF's anonymous throttle skips users)."""

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class MessageDailyAddressQuotaThrottle(_PerAddressThrottle):
    """Per client IP per day, whoever is signed in: guest accounts are free to make, so without
    it one address could make a guest an hour, spend each one's quota and use up the shop's
    daily model budget (``DAILY_BUDGET_USD``), handing every customer's chat to staff."""

    scope = "message_daily_address"


class GuestCreateThrottle(_SlidingWindowThrottle, AnonRateThrottle):
    """Per client IP: guest sessions are free to create, so cap how fast."""

    scope = "guest_create"


class ConversationCreateThrottle(_SlidingWindowThrottle, UserRateThrottle):
    """Per customer: each conversation is a row kept for staff, and a guest is free to make."""

    scope = "conversation_create"


class LoginThrottle(_PerAddressThrottle):
    """Per client IP: password guesses at the token endpoint."""

    scope = "login"


class LoginAccountThrottle(_SlidingWindowThrottle):
    """Per username tried, from any address: the per-address rate alone lets guesses at one
    account go on from as many addresses as a guesser has. Only failed guesses count: a login
    that succeeds, or one another rate refused before its password was checked, gives its count
    back (``account_counts_release``), so an account's owner is not held up by their own
    sign-ins."""

    scope = "login_account"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        # A DRF request's parsed body (JSON or a form), or a form's fields (the admin's login).
        data = getattr(request, "data", None)
        fields = data if isinstance(data, Mapping) else request.POST
        username = _login_username(fields.get("username"))
        if not username:
            return None  # refused by the login's own validation
        # A JSON body can hold a lone surrogate, which plain UTF-8 refuses; the login's own
        # validation refuses it (400), so the rate must not raise (500) before it gets there.
        encoded = username.encode("utf-8", "surrogatepass")
        ident = hashlib.sha256(encoded).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": ident}


def _login_username(value: object) -> str | None:
    """The account a login's ``username`` tries, as one key for all its spellings: a number
    as its text (the API's field takes one), without the white space either login strips,
    NFKC-normalised as the admin's form does, and case-folded. None: no username the logins
    would check. Each spelling counted apart was a fresh allowance of guesses."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return unicodedata.normalize("NFKC", str(value)).strip().casefold() or None


LOGIN_RATES: tuple[type[_SlidingWindowThrottle], ...] = (LoginThrottle, LoginAccountThrottle)


def login_rates_check(request: Any) -> tuple[list[_SlidingWindowThrottle], float | None]:
    """Count a password login against ``LOGIN_RATES``: the throttles that counted it, and how
    long to wait when a rate refused it (None: let through). A refused login gives its account
    count back, as no password was checked; one that succeeds is given back by its caller
    (``account_counts_release``)."""
    throttles = [throttle_class() for throttle_class in LOGIN_RATES]
    waits = [throttle.wait() for throttle in throttles if not throttle.allow_request(request, None)]
    if not waits:
        return throttles, None
    account_counts_release(throttles)
    return throttles, max(waits)


def account_counts_release(throttles: Iterable[BaseThrottle]) -> None:
    """Uncount a login that was no failed guess (it succeeded, or was refused before its password
    was checked) from its account's rate."""
    for throttle in throttles:
        if isinstance(throttle, LoginAccountThrottle):
            throttle.release()


class ReadThrottle(_SlidingWindowThrottle, UserRateThrottle):
    """Everything else, per customer (or per IP when anonymous)."""

    scope = "read"


MESSAGE_QUOTAS: tuple[type[_SlidingWindowThrottle], ...] = (
    MessagePostThrottle,
    MessageDailyQuotaThrottle,
    MessageDailyAddressQuotaThrottle,
)


def message_quota(request: Any, view: Any) -> AbstractContextManager[None]:
    """Count one customer message against the message rates (``quota_taken``)."""
    return quota_taken(request, view, rates=MESSAGE_QUOTAS)


def conversation_quota(request: Any, view: Any) -> AbstractContextManager[None]:
    """Count one conversation opened against the customer's rate (``quota_taken``)."""
    return quota_taken(request, view, rates=(ConversationCreateThrottle,))


@contextmanager
def quota_taken(
    request: Any, view: Any, *, rates: tuple[type[_SlidingWindowThrottle], ...]
) -> Iterator[None]:
    """Count one thing stored against the ``rates``, or raise ``Throttled`` (429).

    The rates bound what is stored, not requests (ADR 0006): a view takes the quota only for a
    request that may store it, just before storing it, and a block that raises (it was
    refused) gives it back, as does a rate that refused when another had let it through.
    """
    throttles = [throttle_class() for throttle_class in rates]
    waits = [throttle.wait() for throttle in throttles if not throttle.allow_request(request, view)]
    try:
        if waits:
            raise Throttled(wait=max(waits))
        yield
    except BaseException:
        for throttle in throttles:
            throttle.release()
        raise
