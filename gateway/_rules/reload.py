"""Hot reload of the mapping and gift rules: a holder with an atomic swap, a file poller, SIGHUP.

``RuleHolder.current`` is the live ``RuleSet``. A reload builds a complete new ``RuleSet``
first (``load_rules`` validates every file) and only then replaces the reference in one
assignment, so a reader that takes ``holder.current`` once per batch sees the old rules or
the new ones, never a mix. A broken edit never goes live and never raises: the old rules
stay, the error (``file:line: key: ...``) is recorded on the holder, logged, and shown by
``GET /api/v1/rules``.

Two triggers, both optional, both calling ``RuleHolder.reload``:

* ``watch_rules``: polls the directory's signature (file names, mtimes, sizes of the
  mapping files and of ``gifts/*.toml``) every ``interval_s`` and reloads when it differs
  from the signature of the last load attempt.
  A failed attempt is not retried until the files change again (no error every second);
  an edit caught half-written fails once and loads on the next poll.
* ``watch_sighup``: reloads on every SIGHUP (``kill -HUP``); must run in the main thread.

Both do their file reads on the event loop, on purpose: a poll (one directory listing and
a ``stat`` per file) measured about 0.1 ms, and a full reload of the eight shipped files
about 4 ms, which happens only when a file changed.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from gateway._errors import ConfigError
from gateway._rules.gifts import gift_files
from gateway._rules.mapping import RuleErrors, RuleSet, load_rules, rule_files

log = logging.getLogger(__name__)

#: What ``watch_rules`` compares: (file name, mtime in ns, size) of every rule file; gift
#: files are named ``gifts/<name>``.
Signature = tuple[tuple[str, int, int], ...]


def rules_signature(directory: Path) -> Signature:
    """The (name, mtime_ns, size) of every mapping and gift rule file in ``directory``;
    ``()`` if unreadable."""
    try:
        named = [(path.name, path) for path in rule_files(directory)]
        named += [(f"gifts/{path.name}", path) for path in gift_files(directory)]
        entries = []
        for name, path in named:
            stat = path.stat()
            entries.append((name, stat.st_mtime_ns, stat.st_size))
    except OSError:
        return ()  # a vanished directory or file: the reload that follows names the problem
    return tuple(entries)


@dataclass(frozen=True)
class ReloadOutcome:
    """The result of one reload attempt.

    Attributes:
        ok: the new rules are live.
        rules: the rules live after the attempt (the new ones, or the unchanged old ones).
        error: why the attempt was refused (a ``RuleErrors`` naming every problem), or ``None``.
        changed: ``ok`` and the rule files differ from the previous live set (by digest).
    """

    ok: bool
    rules: RuleSet
    error: ConfigError | None = None
    changed: bool = False


class RuleHolder:
    """The live rule set of one rules directory, swapped atomically on reload.

    Args:
        directory: the rules directory.

    Raises:
        ConfigError: (``RuleErrors``) the initial load failed; the daemon refuses to start.

    Attributes:
        directory: the rules directory.
        successes / failures: reload attempts that went live / were refused (not counting
            the initial load).
        last_error: the error of the most recent refused attempt, cleared by a success.
        loaded_at: ``time.time()`` when the live rules were loaded.
        signature: the directory signature taken just before the last load attempt.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.successes = 0
        self.failures = 0
        self.last_error: ConfigError | None = None
        self._lock = threading.Lock()  # serialises reloads; readers never take it
        self.signature = rules_signature(self.directory)
        self._current = load_rules(self.directory)
        self.loaded_at = time.time()

    @property
    def current(self) -> RuleSet:
        """The live rules. Take it once per unit of work and use that object throughout."""
        return self._current

    def reload(self) -> ReloadOutcome:
        """Load the directory again and make it live if, and only if, it is valid.

        Never raises for a bad rule file: the failure is recorded (``last_error``,
        ``failures``) and returned, and the previous rules stay live.
        """
        with self._lock:
            return self._reload_locked()

    @contextmanager
    def editing(self) -> Iterator[Callable[[], ReloadOutcome]]:
        """Rewrite several rule files as one set: no other reload (the file poller, SIGHUP,
        the API) runs until the block ends, so none can make half of the set live. Yields
        the reload to call once the files are written (and again after putting old ones back).
        """
        with self._lock:
            yield self._reload_locked

    def _reload_locked(self) -> ReloadOutcome:
        self.signature = rules_signature(self.directory)
        previous = self._current
        try:
            fresh = load_rules(self.directory)
        except ConfigError as exc:
            self.failures += 1
            self.last_error = exc
            return ReloadOutcome(ok=False, rules=previous, error=exc)
        self._current = fresh
        self.successes += 1
        self.last_error = None
        self.loaded_at = time.time()
        return ReloadOutcome(ok=True, rules=fresh, changed=fresh.digest != previous.digest)

    def __repr__(self) -> str:
        return (f"RuleHolder({str(self.directory)!r}, digest={self._current.digest!r}, "
                f"successes={self.successes}, failures={self.failures})")


def log_outcome(outcome: ReloadOutcome, trigger: str) -> None:
    """Log a reload outcome: one line on success, one line per problem on failure."""
    if outcome.ok:
        if outcome.changed:
            sources = ", ".join([*(rules.ref for _, rules in outcome.rules.items()),
                                 *(f"gifts/{gifts.ref}" for gifts in outcome.rules.gifts.files)])
            log.info("rules reloaded (%s): digest %s: %s", trigger, outcome.rules.digest, sources)
        else:
            log.info("rules reloaded (%s): unchanged, digest %s", trigger, outcome.rules.digest)
        return
    error = outcome.error
    problems = error.errors if isinstance(error, RuleErrors) else (error,)
    for problem in problems:
        log.error("rules reload (%s) refused: %s", trigger, problem)
    log.error("rules reload (%s): %d problem(s); the previous rules (digest %s) stay live",
              trigger, len(problems), outcome.rules.digest)


async def watch_rules(
    holder: RuleHolder,
    interval_s: float = 1.0,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Reload ``holder`` whenever its rule files change; runs until cancelled.

    Args:
        holder: the holder to reload.
        interval_s: seconds between two looks at the directory.
        task_status: ``started()`` once polling has begun.

    Cancellation: safe at any time; a reload in progress is synchronous and finishes first.
    """
    if interval_s <= 0:
        raise ValueError("interval_s must be positive")
    task_status.started()
    while True:
        await trio.sleep(interval_s)
        if rules_signature(holder.directory) != holder.signature:
            log_outcome(holder.reload(), "files changed")


async def watch_sighup(
    holder: RuleHolder, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Reload ``holder`` on every SIGHUP; runs until cancelled. Main thread only.

    Args:
        holder: the holder to reload.
        task_status: ``started()`` once the signal handler is installed.
    """
    with trio.open_signal_receiver(signal.SIGHUP) as signals:
        task_status.started()
        async for _ in signals:
            log.info("SIGHUP received by pid %d: reloading rules", os.getpid())
            log_outcome(holder.reload(), "SIGHUP")
