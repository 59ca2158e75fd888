"""What the log says about an upstream outage: when it starts, while it lasts, when it ends.

An operator reading the log at 3 a.m. must see, without counting retry lines:

* ``upstream DOWN``, once, at the first failed delivery: the reason and the backlog;
* ``upstream still DOWN``, every ``remind_every_s`` (60 s) while it lasts: for how long,
  how many attempts, the backlog and the age of its oldest event, the last reason;
* ``upstream is BACK``, at the first acknowledged batch after failures: how long it was
  down and how much is waiting;
* ``outbox drained``, once the backlog left by the outage is caught up (at most one batch
  left): how many events went out and how long the drain took.

Every single retry stays at DEBUG. The reminder interval is fixed (not a setting): it is
about how often a person scrolls, not about the upstream.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

log = logging.getLogger("gateway._forward.forwarder")

REMIND_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class Backlog:
    """The outbox as the outage log reports it."""

    events: int
    bytes: int
    oldest_age_s: float | None


def public_url(url: str) -> str:
    """``url`` as a log may show it: scheme, host, port and path; never user info or a query
    (either may carry a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme else "(no url)"


def format_duration(seconds: float) -> str:
    """``"45s"``, ``"12m05s"``, ``"3h02m"``: short enough for a log line."""
    whole = max(0, int(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _describe(backlog: Backlog) -> str:
    oldest = f", oldest {format_duration(backlog.oldest_age_s)} old" if backlog.oldest_age_s is not None else ""
    size = f"{backlog.bytes / 1024**2:.1f} MiB" if backlog.bytes >= 1024**2 else f"{backlog.bytes / 1024:.0f} KiB"
    return f"{backlog.events} events ({size}) waiting{oldest}"


class OutageLog:
    """Tracks one upstream's outages and logs their start, reminders, end and drain.

    Args:
        upstream: how to name the upstream in the log (its URL without credentials).
        backlog: returns the outbox now; called only when a line is logged.
        pending_events: the outbox's event count (cheap: kept in memory), checked after
            each batch while draining.
        caught_up_events: the drain is over when at most this many events wait (one batch:
            with new events flowing in, the outbox is rarely empty).
        remind_every_s: the reminder interval while the upstream stays down.
        clock: monotonic seconds (tests pass a fake one).
    """

    def __init__(self, upstream: str, backlog: Callable[[], Backlog], pending_events: Callable[[], int], *,
                 caught_up_events: int = 0, remind_every_s: float = REMIND_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.upstream = upstream
        self._backlog = backlog
        self._pending_events = pending_events
        self.caught_up_events = caught_up_events
        self.remind_every_s = remind_every_s
        self._clock = clock
        self.down_since: float | None = None
        self.failures = 0
        self._reminded_at = 0.0
        self._drain_started: float | None = None
        self._drained_events = 0

    def failed(self, reason: str, retry_in_s: float) -> None:
        """A delivery failed and will be retried in ``retry_in_s``."""
        now = self._clock()
        self.failures += 1
        self._drain_started = None
        if self.down_since is None:
            self.down_since = self._reminded_at = now
            log.warning("upstream DOWN: %s: %s; %s; retrying with backoff (next in %.1f s), nothing is lost",
                        self.upstream, reason, _describe(self._backlog()), retry_in_s)
        elif now - self._reminded_at >= self.remind_every_s:
            self._reminded_at = now
            log.warning("upstream still DOWN for %s (%d attempts): %s; %s; last error: %s; next retry in %.1f s",
                        format_duration(now - self.down_since), self.failures, self.upstream,
                        _describe(self._backlog()), reason, retry_in_s)
        else:
            log.debug("upstream %s did not take a batch: %s; retry %d in %.1f s", self.upstream, reason,
                      self.failures, retry_in_s)

    def delivered(self, events: int) -> None:
        """A batch of ``events`` was acknowledged."""
        now = self._clock()
        if self.down_since is not None:
            backlog = self._backlog()
            log.info("upstream is BACK after %s down (%d failed attempts): %s; %s, draining",
                     format_duration(now - self.down_since), self.failures, self.upstream, _describe(backlog))
            self.down_since = None
            self.failures = 0
            self._drain_started = now
            self._drained_events = 0
        if self._drain_started is None:
            return
        self._drained_events += events
        if self._pending_events() <= self.caught_up_events:
            log.info("outbox drained after the outage: %d events delivered in %s", self._drained_events,
                     format_duration(now - self._drain_started))
            self._drain_started = None

    @property
    def down(self) -> bool:
        """Whether the upstream is failing now."""
        return self.down_since is not None


__all__ = ["REMIND_EVERY_S", "Backlog", "OutageLog", "format_duration", "public_url"]
