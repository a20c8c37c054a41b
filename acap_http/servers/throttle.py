"""How many password guesses ``serve``'s front checks, per user and per source (pure; the clock
is given).

Each failed check spends a token of three buckets: the user's, the source's, and, for a source
the user has logged in from before, that pair's own. A bucket holds ``capacity`` tokens and
gets one back every ``refill`` seconds. An attempt is checked only if its buckets have a token;
the token is taken before the check and given back if the password was right, so parallel
attempts cannot all be checked at once. Otherwise it is refused unchecked (429, Retry-After).

The bounds that follow (the README states them):

- Guessing one user's password: at most ``USER`` (10 at once, then one a minute: 70 an hour)
  from all the sources that never logged in as that user together, whatever their number;
  plus the same again per source that did (which an attacker has only by sharing one with
  the user: the same NAT address or IPv6 /64, or the same local user of the host).
- A user who has logged in from a source before (within ``TRUST_FOR``, while this process
  runs: a restart forgets) keeps his own bucket there: others' failures, from other sources
  or against other users, never lock him out. From a new source he shares the user's bucket
  with everybody else. Root on the host itself always has a bucket of its own.
- Names that are no user's get buckets of their own too (remembered as sources are): they are
  answered as a known user's wrong password is, so that the answers do not tell names apart.
- A success clears nothing but its own pair's bucket: a viewer's good login lends an attacker
  at the same address no guesses at the admin's password.
- Sources are IPv4 addresses, IPv6 /64 networks, and for connections from this host itself,
  its local users (a rootless container reaches the host as the app's user, through
  slirp4netns): ``source_key``.
"""

from __future__ import annotations

import ipaddress
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

_K = TypeVar("_K", str, tuple[str, str])
ROOT_ON_THE_HOST = "local uid 0"


@dataclass(frozen=True)
class Rate:
    capacity: float
    refill: float  # seconds per token

    def per_hour(self) -> int:
        return int(self.capacity + 3600 / self.refill)


USER = Rate(10, 60.0)
PAIR = Rate(10, 60.0)
SOURCE = Rate(20, 10.0)
TRUST_FOR = 7 * 24 * 3600.0
MAX_TRACKED = 4096  # sources and pairs remembered; the oldest go first (users' buckets always stay)


class Bucket:
    def __init__(self, rate: Rate, now: float) -> None:
        self.rate, self.tokens, self.at = rate, rate.capacity, now

    def level(self, now: float) -> float:
        self.tokens = min(self.rate.capacity, self.tokens + (now - self.at) / self.rate.refill)
        self.at = now
        return self.tokens

    def wait(self, now: float) -> float:
        """Seconds until a token is there."""
        return max(0.0, (1 - self.level(now)) * self.rate.refill)


@dataclass(frozen=True)
class Ticket:
    """An admitted attempt: which buckets it took a token from."""

    user: str
    source: str
    paired: bool


class LoginThrottle:
    def __init__(self, users: frozenset[str], clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._users = {name: Bucket(USER, now) for name in users}
        self._unknown: OrderedDict[str, Bucket] = OrderedDict()  # names that are no user's
        self._sources: OrderedDict[str, Bucket] = OrderedDict()
        self._pairs: OrderedDict[tuple[str, str], Bucket] = OrderedDict()
        self._trusted: OrderedDict[tuple[str, str], float] = OrderedDict()  # pair -> when it last succeeded

    def admit(self, user: str, source: str) -> Ticket | float:
        """A ticket to check this attempt's password (its tokens taken), or the seconds to wait."""
        name = user
        with self._lock:
            now = self._clock()
            source_bucket = self._remember(self._sources, source, SOURCE, now)
            paired = name in self._users and (source == ROOT_ON_THE_HOST or self._is_trusted((name, source), now))
            own = self._remember(self._pairs, (name, source), PAIR, now) if paired else self._user(name, now)
            wait = max(own.wait(now), source_bucket.wait(now))
            if wait > 0:
                return wait
            own.tokens -= 1
            source_bucket.tokens -= 1
            return Ticket(name, source, paired)

    def checked(self, ticket: Ticket, right: bool) -> None:
        """The check's outcome: a right password gives its tokens back and trusts the pair."""
        if not right:
            return
        with self._lock:
            now = self._clock()
            pair = (ticket.user, ticket.source)
            own = self._pairs.get(pair) if ticket.paired else self._users.get(ticket.user)
            for bucket in (own, self._sources.get(ticket.source)):
                if bucket is not None:
                    bucket.tokens = min(bucket.rate.capacity, bucket.tokens + 1)
            self._trusted[pair] = now
            self._trusted.move_to_end(pair)
            while len(self._trusted) > MAX_TRACKED:
                self._trusted.popitem(last=False)

    def _user(self, name: str, now: float) -> Bucket:
        known = self._users.get(name)
        return known if known is not None else self._remember(self._unknown, name, USER, now)

    def _is_trusted(self, pair: tuple[str, str], now: float) -> bool:
        when = self._trusted.get(pair)
        if when is None:
            return False
        if now - when > TRUST_FOR:
            del self._trusted[pair]
            return False
        return True

    @staticmethod
    def _remember(table: OrderedDict[_K, Bucket], key: _K, rate: Rate, now: float) -> Bucket:
        bucket = table.get(key)
        if bucket is None:
            bucket = table[key] = Bucket(rate, now)
            while len(table) > MAX_TRACKED:
                table.popitem(last=False)  # forgotten: a full bucket again, which the user's bucket bounds
        table.move_to_end(key)
        return bucket


def source_key(address: str, local_uid: int | None = None) -> str:
    """The source an attempt is counted against: a local user of this host, an IPv4 address (an
    IPv4-mapped IPv6 one as IPv4), or an IPv6 /64 (one customer's network, typically a whole LAN:
    counted as one); a link-local /64 with its interface, which every link has its own of."""
    if local_uid is not None:
        return f"local uid {local_uid}"
    bare, _, zone = address.partition("%")
    try:
        parsed = ipaddress.ip_address(bare)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        network = str(ipaddress.IPv6Network((parsed, 64), strict=False))
        return f"{network}%{zone}" if parsed.is_link_local and zone else network
    return str(parsed)


def retry_after(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
