"""``gateway doctor``: check everything an installer gets wrong, and say how to fix each.

Checks, in the order they run (``--only`` takes their names)::

    config      gateway.toml and every rule file valid (errors name file:line: key); secrets.env
                beside the config is read first, as systemd gives it to the service
    data_dir    the data directory exists and is writable; free disk against the outbox bound
    open_files  RLIMIT_NOFILE against [http] max_connections + RocksDB and the rest
    http_port   [http] host:port free, or held by a running gateway (its /livez answers)
    secrets     token files, the buyer salt, every *_file secret, secrets.env: not world-readable
    logs        [logging] file writable, when set
    upstream    the upstream answers a signed probe (an empty batch) with 2xx
    clock       NTP synchronised; skew against the upstream's Date; each NVR's clock
    devices     each configured scanner, printer (~HS), scale and NVR (login) present and answering
    store       the store opens and every tenant's audit chain verifies (through the running
                gateway's API when it runs: RocksDB admits one process)

Each check yields findings: ``ok``, ``warn`` (works, but will bite) or ``fail`` (fix before
going live), each non-ok one with its fix. Every check has a timeout: past it the check is a
failure that says so, never a hang. A config that does not load stops the run after the
``config`` check (the others need it).

Exit status (``exit_status``): 0 all ok, 1 warnings only, 2 at least one failure.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from gateway._appliance.doctor_core import (
    STATUSES,
    Check,
    DoctorContext,
    Finding,
    Findings,
    Progress,
    apply_env_file,
)
from gateway._appliance.doctor_devices import check_devices, device_count
from gateway._appliance.doctor_host import check_data_dir, check_log_file, check_open_files, check_secrets
from gateway._appliance.doctor_net import check_clock, check_http_port, check_upstream
from gateway._appliance.doctor_store import check_store
from gateway._errors import ConfigError
from gateway._settings import Settings

#: A check that talks to nothing but this box.
LOCAL_TIMEOUT_S = 10.0
#: Reading every audit chain of a large store takes a while (about a minute per 10M records).
STORE_TIMEOUT_S = 600.0


def _upstream_timeout(settings: Settings) -> float:
    attempts = 3 if settings.upstream.kind == "nats" else 1  # gateway._appliance.doctor_nats retries a reset
    return attempts * min(settings.upstream.timeout_s, 10.0) + 5.0


def _devices_timeout(settings: Settings) -> float:
    slowest = max([*(p.timeout_s * 2 for s in settings.stations.values() if (p := s.printer)),
                   *(n.timeout_s for n in settings.nvrs.values()), 3.0])
    return 5.0 + device_count(settings) * (slowest + 1.0)


async def _not_here(ctx: DoctorContext, found: Findings) -> None:
    raise AssertionError("the config check runs before the context exists")  # pragma: no cover


CHECKS: tuple[Check, ...] = (
    Check("config", "gateway.toml and the rule files", _not_here, lambda s: LOCAL_TIMEOUT_S),
    Check("data_dir", "the data directory and its free disk", check_data_dir, lambda s: LOCAL_TIMEOUT_S),
    Check("open_files", "the open-files limit", check_open_files, lambda s: LOCAL_TIMEOUT_S),
    Check("http_port", "the HTTP port", check_http_port, lambda s: LOCAL_TIMEOUT_S),
    Check("secrets", "the secret files' modes", check_secrets, lambda s: LOCAL_TIMEOUT_S),
    Check("logs", "the log file", check_log_file, lambda s: LOCAL_TIMEOUT_S),
    Check("upstream", "the upstream ERP (a signed probe)", check_upstream, _upstream_timeout, long=True),
    Check("clock", "NTP, the upstream's clock, the NVRs' clocks", check_clock,
          lambda s: _upstream_timeout(s) + 5.0 + sum(n.timeout_s + 1.0 for n in s.nvrs.values()), long=True),
    Check("devices", "the stations' devices", check_devices, _devices_timeout, long=True),
    Check("store", "the store and its audit chains", check_store, lambda s: STORE_TIMEOUT_S, long=True),
)
CHECK_NAMES: tuple[str, ...] = tuple(check.name for check in CHECKS)


@dataclass(frozen=True)
class DoctorReport:
    """Everything one run found.

    Attributes:
        config: the config file checked ("" when none could be named).
        findings: in check order.
    """

    config: str
    findings: tuple[Finding, ...]

    @property
    def status(self) -> str:
        """The worst status found (``ok`` when nothing ran)."""
        return max((f.status for f in self.findings), key=STATUSES.index, default="ok")

    def exit_status(self) -> int:
        """0 all ok, 1 warnings only, 2 a failure."""
        return STATUSES.index(self.status)

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` object."""
        counts = {status: sum(f.status == status for f in self.findings) for status in STATUSES}
        return {"config": self.config, "status": self.status, "exit_status": self.exit_status(), "counts": counts,
                "checks": [f.to_dict() for f in self.findings]}


def format_report(report: DoctorReport) -> str:
    """One line per finding (``ok`` / ``warn`` / ``fail``), the fix indented under each
    non-ok one, and a summary line."""
    lines = []
    for finding in report.findings:
        subject = f"{finding.subject}: " if finding.subject else ""
        lines.append(f"{finding.status:<4}  {finding.name:<10}  {subject}{finding.message}")
        if finding.fix:
            lines.append(f"{'':<4}  {'':<10}  fix: {finding.fix}")
    counts = {status: sum(f.status == status for f in report.findings) for status in STATUSES}
    verdict = {"ok": "all good", "warn": "works, but fix the warnings", "fail": "fix the failures before going live"}
    lines.append(f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failure(s): "
                 f"{verdict[report.status]}")
    return "\n".join(lines)


def _check_config(load: Callable[[], Settings], config_path: Path | None) -> tuple[Settings | None, Findings]:
    """Load the settings and the rules; the findings of the ``config`` check."""
    from gateway._rules import RuleErrors, load_rules
    from gateway._settings import TomlDocument

    found = Findings("config")
    env = config_path.parent / "secrets.env" if config_path is not None else None
    added = apply_env_file(env) if env is not None and env.is_file() else []
    fix = "fix the line named (the README's Configuration section lists every key), then run the doctor again"
    try:
        settings = load()
        rules = load_rules(settings.rules_path)
        if settings.path is not None:
            doc = TomlDocument.load(settings.path)
            for tenant, sources in settings.tenants.items():
                for source in sources:
                    if rules.get(source) is None:
                        raise doc.error(("tenants", tenant, source),
                                        f"no rule file for source {source!r} in {settings.rules_path}")
    except RuleErrors as exc:
        for error in exc.errors:
            found.fail(str(error), "fix the rule file at the line named; `gateway check-config` checks them all")
        return None, found
    except ConfigError as exc:
        unreadable = env is not None and env.is_file() and not added and "environment variable" in exc.message
        found.fail(str(exc), fix + ("; secrets.env is not readable by this user: run the doctor as root"
                                    if unreadable else ""), file=exc.path, line=exc.line, key=exc.key)
        return None, found
    note = f" (with {len(added)} variable(s) from {env})" if added else ""
    found.ok(f"{settings.path or 'defaults'}: valid, rules in {settings.rules_path}{note}")
    if settings.demo.enabled:
        found.warn("[demo] enabled = true: a simulated ERP posts made-up orders into the store",
                   "set [demo] enabled = false (or remove [demo]) on a real box")
    return settings, found


async def _run_check(check: Check, ctx: DoctorContext) -> list[Finding]:
    found = Findings(check.name)
    timeout_s = check.timeout_s(ctx.settings)
    if check.long:
        ctx.progress(f"checking {check.title} (at most {timeout_s:.0f} s)")
    with trio.move_on_after(timeout_s) as scope:
        try:
            await check.run(ctx, found)
        except Exception as exc:  # a check's own failure is a finding, never a traceback
            found.fail(f"the check itself failed: {type(exc).__name__}: {exc}", "run it again; if it repeats, "
                       "report it with this line (`gateway doctor --json` gives the details)")
    if scope.cancelled_caught:
        found.fail(f"did not finish within {timeout_s:.0f} s (what it found so far is above)",
                   "look at what it was checking (the progress lines on stderr): a device or server that does not "
                   "answer; fix that, then run the doctor again")
    return found.items


async def run_checks(settings: Settings, names: Sequence[str], progress: Progress) -> list[Finding]:
    """Run the checks named (in ``CHECKS`` order) and return their findings."""
    ctx = DoctorContext(settings, progress)
    findings: list[Finding] = []
    for check in CHECKS:
        if check.name != "config" and check.name in names:
            findings += await _run_check(check, ctx)
    return findings


def _stderr_progress(text: str) -> None:
    print(f"doctor: {text} ...", file=sys.stderr, flush=True)


def run_doctor(load: Callable[[], Settings], config_path: Path | None, only: Sequence[str] = (),
               progress: Progress = _stderr_progress) -> DoctorReport:
    """Load the config (the ``config`` check), then run the other checks (``only``: these).

    Args:
        load: loads the settings (the CLI's, with ``--config`` and ``--data-dir`` applied).
        config_path: the config file ``load`` reads (for ``secrets.env`` beside it).
        only: check names to run (``CHECK_NAMES``); empty: all. ``config`` always runs.
        progress: prints a progress line (stderr by default).
    """
    names = list(only) or list(CHECK_NAMES)
    settings, found = _check_config(load, config_path)
    shown = str(settings.path) if settings is not None and settings.path else str(config_path or "")
    findings = list(found.items)
    if settings is not None:
        findings += trio.run(run_checks, settings, names, progress)
    return DoctorReport(shown, tuple(findings))


__all__ = ["CHECKS", "CHECK_NAMES", "DoctorReport", "format_report", "run_checks", "run_doctor"]
