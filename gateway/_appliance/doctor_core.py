"""The values every ``gateway doctor`` check shares: a finding, a check, and the context.

A **check** (``Check``) is one thing an installer gets wrong (the data directory, the clock,
the devices...); ``--only NAME`` selects it by ``name``. Running it yields one or more
**findings** (``Finding``): a status (``ok`` / ``warn`` / ``fail``), what was found, and for
anything not ``ok`` the fix in words an installer can act on. A check about many things
(every device, every tenant's audit chain) yields one finding per thing, each with its
``subject``.

The ``DoctorContext`` holds the settings and what more than one check asks the world:
whether a gateway answers on the HTTP port, the upstream probe's answer (the ``upstream``
check judges the signature, the ``clock`` check reads its ``Date``), each NVR's login and
clock offset (the ``devices`` check judges the login, ``clock`` the offset). Each is asked
once per run and remembered, so an NVR that locks accounts after a few failures sees one
login per run, not two.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway._settings import Settings

Status = Literal["ok", "warn", "fail"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "fail")
#: How a check reports progress on stderr ("checking devices: A1 printer ...").
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Finding:
    """What one check found about one thing.

    Attributes:
        name: the check's name (as ``--only`` takes it).
        status: ``ok``, ``warn`` (works, but will bite: fix it when you can) or ``fail``
            (the gateway will not work as configured: fix it before going live).
        message: what was found, in one line.
        fix: what to do about it ("" when ``ok``).
        subject: the thing a many-things check looked at ("A1 printer tcp:...", a tenant);
            "" for checks about one thing.
        details: machine-readable facts (``--json``), e.g. free bytes, an offset in seconds.
    """

    name: str
    status: Status
    message: str
    fix: str = ""
    subject: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The finding as ``--json`` prints it."""
        return {"name": self.name, "subject": self.subject, "status": self.status, "message": self.message,
                "fix": self.fix, "details": self.details}


class Findings:
    """Collects one check's findings: ``ok(...)``, ``warn(...)``, ``fail(...)``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[Finding] = []

    def __repr__(self) -> str:
        return f"Findings({self.name!r}, {len(self.items)} items)"

    def add(self, status: Status, message: str, fix: str = "", *, subject: str = "", **details: Any) -> None:
        self.items.append(Finding(self.name, status, message, fix, subject, details))

    def ok(self, message: str, *, subject: str = "", **details: Any) -> None:
        self.add("ok", message, "", subject=subject, **details)

    def warn(self, message: str, fix: str, *, subject: str = "", **details: Any) -> None:
        self.add("warn", message, fix, subject=subject, **details)

    def fail(self, message: str, fix: str, *, subject: str = "", **details: Any) -> None:
        self.add("fail", message, fix, subject=subject, **details)


@dataclass(frozen=True)
class Check:
    """One doctor check.

    Attributes:
        name: its ``--only`` name.
        title: what it checks, for ``--help`` and the progress line.
        run: ``await run(context, findings)`` adds its findings.
        timeout_s: its bound from the settings; past it the check is a ``fail``
            ("did not finish"), never a hang.
        long: says "checking ..." on stderr before it starts (it talks to the network or
            reads the whole store).
    """

    name: str
    title: str
    run: Callable[[DoctorContext, Findings], Awaitable[None]]
    timeout_s: Callable[[Settings], float]
    long: bool = False


@dataclass
class DoctorContext:
    """The settings and the answers several checks share (each asked once per run).

    Attributes:
        settings: the gateway's settings (the config check passed).
        progress: prints one progress line on stderr.
        memo: answers already asked for, by key (``"running"``, ``"upstream"``, ``"nvr:NAME"``).
    """

    settings: Settings
    progress: Progress
    memo: dict[str, Any] = field(default_factory=dict)

    async def once(self, key: str, ask: Callable[[], Awaitable[Any]]) -> Any:
        """``await ask()`` the first time ``key`` is asked, its remembered answer after."""
        if key not in self.memo:
            self.memo[key] = await ask()
        return self.memo[key]

    async def running_gateway(self) -> str:
        """The base URL of a gateway answering ``/livez`` on ``[http] host:port``, or ""."""
        from gateway._appliance.doctor_net import livez

        return str(await self.once("running", lambda: livez(self.settings)))


def read_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of a systemd ``EnvironmentFile`` (``secrets.env``).

    Blank lines and ``#`` comments are skipped, ``export`` and one pair of surrounding
    quotes are removed. Unreadable: ``{}`` (the caller says so).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def apply_env_file(path: Path) -> list[str]:
    """Set the variables of ``path`` that this process's environment lacks (as systemd gives
    them to the service), so ``secret_env`` keys resolve here as they do in the service.

    Returns:
        The names set (never their values).
    """
    added = []
    for key, value in read_env_file(path).items():
        if key and key not in os.environ:
            os.environ[key] = value
            added.append(key)
    return added


__all__ = ["STATUSES", "Check", "DoctorContext", "Finding", "Findings", "Progress", "Status", "apply_env_file",
           "read_env_file"]
