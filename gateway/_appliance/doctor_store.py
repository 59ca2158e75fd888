"""The doctor's ``store`` check: the store opens and every tenant's audit chain verifies.

RocksDB admits one process. When no gateway runs, the doctor opens the store itself (in a
thread, bounded by the check's timeout) and verifies the chain of every tenant it holds,
every configured tenant and the gateway's own chain (``_gateway``: the API's audit trail).
When a gateway runs, it asks that gateway instead, with the admin token
(``GET /api/v1/tenants/{t}/audit/verify``, as ``LocalGateway`` reaches it). A store that
does not exist yet is fine: the gateway creates it at first start (the doctor does not).
"""

from __future__ import annotations

from typing import Any

import trio

from gateway._appliance.doctor_core import DoctorContext, Findings
from gateway._errors import GatewayError, StoreError, StoreLockedError
from gateway._settings import Settings

#: The gateway's own audit chain (API calls that change something).
GATEWAY_CHAIN = "_gateway"
_BROKEN_FIX = ("the audit trail was altered or damaged: keep a copy of the data directory as it is (evidence), then "
               "restore the last good backup or ask for help; `gateway audit-verify --tenant T` repeats the check")


def _chains(settings: Settings, stored: list[str]) -> list[str]:
    return sorted({*stored, *settings.tenants, GATEWAY_CHAIN})


def _verify_offline(settings: Settings, progress: Any) -> list[tuple[str, dict[str, Any]]]:
    """Open the store, verify every chain (blocking: runs in a thread)."""
    from gateway._store import open_store, store_settings

    results = []
    with open_store(store_settings(settings)) as store:
        for tenant in _chains(settings, store.tenants()):
            trio.from_thread.run_sync(progress, f"store: audit chain of {tenant}")
            result = store.verify_audit_chain(tenant)
            results.append((tenant, {"ok": result.ok, "records": result.records,
                                     "first_bad_seq": result.first_bad_seq, "reason": result.reason}))
    return results


async def _verify_online(ctx: DoctorContext, base: str) -> list[tuple[str, dict[str, Any]]] | str:
    """Every chain verified by the running gateway; a string says why it could not be asked."""
    import httpx

    token_path = ctx.settings.token_path
    try:
        token = token_path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        return f"cannot read the admin token {token_path} ({exc.strerror})"
    results = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for tenant in _chains(ctx.settings, []):
            ctx.progress(f"store: audit chain of {tenant} (by the running gateway)")
            try:
                reply = await client.get(f"/api/v1/tenants/{tenant}/audit/verify")
            except httpx.HTTPError as exc:
                return f"the running gateway at {base} did not answer ({type(exc).__name__})"
            if reply.status_code == 401:
                return f"the running gateway refused the admin token in {token_path}"
            if reply.status_code not in (200, 409):
                return f"the running gateway answered HTTP {reply.status_code}"
            results.append((tenant, reply.json()))
    return results


def _report(found: Findings, results: list[tuple[str, dict[str, Any]]], how: str) -> None:
    for tenant, result in results:
        if result.get("ok"):
            found.ok(f"audit chain OK, {result.get('records', 0)} records{how}", subject=tenant,
                     records=result.get("records", 0))
        else:
            found.fail(f"audit chain BROKEN at seq {result.get('first_bad_seq')}: {result.get('reason')}{how}",
                       _BROKEN_FIX, subject=tenant, first_bad_seq=result.get("first_bad_seq"))


async def check_store(ctx: DoctorContext, found: Findings) -> None:
    """The store opens and every audit chain verifies (module docstring)."""
    settings = ctx.settings
    running = await ctx.running_gateway()
    if running:
        online = await _verify_online(ctx, running)
        if isinstance(online, str):
            found.fail(f"a gateway runs at {running} but the audit chains could not be checked: {online}",
                       "run the doctor as the gateway's user (it reads [api] token_file), or stop the gateway and "
                       "run it again")
            return
        _report(found, online, " (checked by the running gateway)")
        return
    path = settings.data_path / "rocksdb"
    if not path.exists():
        found.ok(f"no store yet at {path}: the gateway creates it at first start")
        return
    try:
        offline = await trio.to_thread.run_sync(_verify_offline, settings, ctx.progress, abandon_on_cancel=True)
    except StoreLockedError as exc:
        found.fail(f"the store is locked, but no gateway answers on {settings.http.host}:{settings.http.port} "
                   f"({exc})", "another process has it open: a gateway with another [http] port, or a hung one "
                   "(`fuser -v " + str(path) + "/LOCK`); stop it, then run the doctor again")
        return
    except StoreError as exc:
        found.fail(f"the store at {path} does not open: {exc}", "check that the data directory is the gateway's and "
                   "writable, and that the disk has room; a damaged store: `gateway store repair` (see the README)")
        return
    except GatewayError as exc:
        found.fail(f"the store at {path}: {exc}", "see the message; `gateway audit-verify --tenant T` for one tenant")
        return
    _report(found, offline, "")


__all__ = ["GATEWAY_CHAIN", "check_store"]
