"""Failure limits for the API: per source address and per (source, key id), with backoff.

The policy (README, "Security"):

- failures are counted per source (an IPv4 address, or an IPv6 /64: one host's share of
  addresses) and per (source, key id);
- after `max_failures` failures of one (source, key id), or `max_source_failures` of one
  source, that source (for that key, or for every key) is refused with 429 for a backoff that
  starts at `backoff_s` and doubles with every further failure, up to `lockout_s`;
- a bucket forgets its failures `lockout_s` after the last one;
- a request is never refused because of failures from another source: a key id is never locked
  for everyone, so forged or replayed requests naming an operator's key id cannot lock that
  operator out;
- memory is bounded: at most `MAX_TRACKED` buckets, the least recently failed dropped first.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass

MAX_TRACKED = 10000
ANY_KEY = "*"


def source_of(remote: str | None) -> str:
    """The bucket name of a peer address: IPv4 as is, IPv6 by its /64, else 'unknown'."""
    if not remote:
        return "unknown"
    try:
        address = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


@dataclass(slots=True)
class _Bucket:
    count: int = 0
    last_s: float = 0.0
    blocked_until: float = 0.0


class FailureLimiter:
    """Counts failures per source and per (source, key id); says how long a source must wait."""

    def __init__(
        self,
        max_failures: int,
        max_source_failures: int,
        backoff_s: float,
        lockout_s: float,
        max_tracked: int = MAX_TRACKED,
    ) -> None:
        self.max_failures = max_failures
        self.max_source_failures = max_source_failures
        self.backoff_s = backoff_s
        self.lockout_s = lockout_s
        self.max_tracked = max_tracked
        self._buckets: OrderedDict[tuple[str, str], _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def wait_s(self, source: str, key_id: str | None, now: float) -> float:
        """Seconds this source must still wait before a request naming `key_id` is looked at
        (0: go ahead)."""
        waits = [self._wait(source, ANY_KEY, now)]
        if key_id is not None:
            waits.append(self._wait(source, key_id, now))
        return max(waits)

    def failed(self, source: str, key_id: str | None, now: float) -> float:
        """Count one failure; returns the backoff it starts (0 while under the limits)."""
        backoff = self._count(source, ANY_KEY, self.max_source_failures, now)
        if key_id is not None:
            backoff = max(backoff, self._count(source, key_id, self.max_failures, now))
        return backoff

    def succeeded(self, source: str, key_id: str) -> None:
        """A verified request: that key's count from that source starts again."""
        self._buckets.pop((source, key_id), None)

    def _wait(self, source: str, key_id: str, now: float) -> float:
        bucket = self._buckets.get((source, key_id))
        return 0.0 if bucket is None else max(0.0, bucket.blocked_until - now)

    def _count(self, source: str, key_id: str, limit: int, now: float) -> float:
        name = (source, key_id)
        bucket = self._buckets.pop(name, None)
        if bucket is None or now - bucket.last_s > self.lockout_s:
            bucket = _Bucket()
        bucket.count += 1
        bucket.last_s = now
        backoff = 0.0
        if bucket.count >= limit:
            backoff = min(self.lockout_s, self.backoff_s * 2.0 ** min(bucket.count - limit, 60))
            bucket.blocked_until = max(bucket.blocked_until, now + backoff)
        self._buckets[name] = bucket  # newest last
        while len(self._buckets) > self.max_tracked:
            self._buckets.popitem(last=False)
        return backoff
