"""Operator commands: ``gateway outbox status | dead | requeue`` and ``gateway quarantine list | release``.

Where the numbers come from: when the gateway runs, through its local API (the address is
``[http] host/port`` of the config, the token the file ``[api] token_file`` points at);
when it does not (RocksDB admits one process), straight from the store. A gateway that
holds the store but whose API does not answer is reported as such, never guessed around.

    gateway outbox status [--json] [--watch [S]]   backlog, bytes, oldest age, last error,
                                                   dead letters; --watch prints a line every
                                                   S seconds (default 2) with the drain rate
                                                   and ETA until the backlog is empty
    gateway outbox dead [--limit N] [--tenant T] [--json]   dead letters with reasons
    gateway outbox requeue (--all | --id N ...)    dead letters back to the outbox tail
    gateway quarantine list --tenant T [--limit N] [--json]   quarantined events with reasons
    gateway quarantine release --tenant T (--all | --id N ...)   re-read them under the live
                                                   rules (after a rule fix); needs the running
                                                   gateway (the release is committed by it)

Exit codes: 0 done, 1 error (store locked and API unreachable, bad id...).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway._errors import GatewayError
from gateway._server.local_client import LocalGateway
from gateway._settings import Settings


class _Target(LocalGateway):
    """The running gateway's API, or the store opened directly (``LocalGateway``)."""

    store: Any

    def get(self, path: str, *, missing_ok: bool = False, **params: Any) -> dict[str, Any]:
        result = super().get(path, **params)
        assert result is not None
        return result

    def status(self) -> dict[str, Any]:
        if self.client is not None:
            return self.get("/api/v1/outbox")
        from gateway._forward import outbox_report

        upstream = self.settings.upstream.url
        if self.settings.upstream.kind == "nats":
            from gateway._settings.nats import describe_nats

            upstream = describe_nats(self.settings.upstream.nats)
        elif not upstream and self.settings.demo.enabled:
            upstream = "(the demo's own /demo/upstream)"
        report = outbox_report(self.store, None, upstream)
        report["state"] = "stopped"
        return report

    def dead(self, limit: int, tenant: str | None) -> dict[str, Any]:
        if self.client is not None:
            return self.get("/api/v1/outbox/dead", limit=limit, tenant=tenant)
        letters = (d for d in self.store.iter_dead() if tenant is None or d["event"].get("tenant") == tenant)
        items = [d for _, d in zip(range(limit), letters, strict=False)]
        return {"count": self.store.dead_count(), "items": items}

    def requeue(self, ids: list[int] | None) -> list[int]:
        if self.client is not None:
            body = {"all": True} if ids is None else {"ids": ids}
            reply = self.client.post("/api/v1/outbox/requeue", json=body)
            if reply.status_code != 200:
                raise GatewayError(f"requeue: HTTP {reply.status_code}: {reply.text[:200]}")
            seqs: list[int] = reply.json()["outbox_seqs"]
            return seqs
        result: list[int] = self.store.requeue_dead(ids)
        return result

    def quarantine(self, tenant: str, limit: int) -> dict[str, Any]:
        if self.client is not None:
            return self.get(f"/api/v1/tenants/{tenant}/quarantine", limit=limit)
        items = [q for _, q in zip(range(limit), self.store.iter_quarantine(tenant), strict=False)]
        return {"count": self.store.quarantine_count(tenant), "items": items}

    def release(self, tenant: str, ids: list[int] | None) -> dict[str, Any]:
        if self.client is None:
            raise GatewayError("releasing quarantined events needs the running gateway (its committer "
                               "writes them); start it, then run this again")
        body = {"all": True} if ids is None else {"ids": ids}
        reply = self.client.post(f"/api/v1/tenants/{tenant}/quarantine/release", json=body)
        if reply.status_code != 200:
            raise GatewayError(f"release: HTTP {reply.status_code}: {reply.text[:200]}")
        result: dict[str, Any] = reply.json()
        return result


def _when(epoch_s: float | None) -> str:
    if not epoch_s:
        return "never"
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def format_status(report: dict[str, Any]) -> str:
    """The human form of an outbox report."""
    lines = [
        f"upstream:      {report['upstream'] or '(none: forwarding is off)'}  [{report['state']}]",
        f"backlog:       {report['backlog_events']} events, {report['backlog_bytes'] / 1024**2:.2f} MiB "
        f"(bound {report['bounds']['outbox_max_events']} events / "
        f"{report['bounds']['outbox_max_bytes'] / 1024**2:.0f} MiB)",
        f"oldest:        {_age(report['oldest_age_s'])}",
        f"dead letters:  {report['dead_letters']}",
        f"delivered:     {report['delivered_events']} events in {report['delivered_batches']} batches "
        f"since start; last success {_when(report['last_success_at'])}",
        f"last error:    {report['last_error'] or '-'}"
        + (f" ({_when(report['last_error_at'])})" if report["last_error"] else ""),
    ]
    return "\n".join(lines)


def _watch(target: _Target, every_s: float) -> None:
    previous: tuple[float, int] | None = None
    while True:
        report = target.status()
        now, backlog = time.monotonic(), report["backlog_events"]
        line = f"{time.strftime('%H:%M:%S')}  backlog {backlog} events ({report['backlog_bytes'] / 1024**2:.1f} MiB)"
        if previous is not None and now > previous[0]:
            rate = (previous[1] - backlog) / (now - previous[0])
            eta = f"ETA {backlog / rate:.0f} s" if rate > 0 and backlog else ""
            line += f"  {rate:,.0f} events/s  {eta}"
        if report["last_error"] and report["state"] == "backoff":
            line += f"  [{report['last_error']}]"
        print(line, flush=True)
        if not backlog:
            print("outbox empty")
            return
        previous = (now, backlog)
        time.sleep(every_s)


def cmd_outbox(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``gateway outbox`` sub-command."""
    target = _Target(settings)
    try:
        if args.outbox_command == "status":
            if args.watch is not None:
                _watch(target, args.watch)
                return 0
            report = target.status()
            print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() if args.json else format_status(report))
        elif args.outbox_command == "dead":
            result = target.dead(args.limit, args.tenant)
            if args.json:
                print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
            else:
                print(f"{result['count']} dead letters")
                for letter in result["items"]:
                    event = letter["event"]
                    print(f"  id {letter['outbox_seq']}: {event.get('tenant')} {event.get('order_id')} "
                          f"{event.get('status')} event {event.get('event_id')} -> HTTP {letter.get('status')} "
                          f"{(letter.get('response') or '')[:120]!r} at {_when(letter.get('at_ms', 0) / 1000)}")
        else:
            seqs = target.requeue(None if args.all else args.id)
            print(f"requeued {len(seqs)} dead letters (new outbox seqs {seqs[:10]}{' ...' if len(seqs) > 10 else ''})")
            if not args.all and len(seqs) < len(set(args.id)):
                print(f"{len(set(args.id)) - len(seqs)} of the given ids are not dead letters")
                return 1
    finally:
        target.close()
    return 0


def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    """Run one ``gateway quarantine`` sub-command."""
    target = _Target(settings)
    try:
        if args.quarantine_command == "list":
            result = target.quarantine(args.tenant, args.limit)
            if args.json:
                print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
                return 0
            print(f"{result['count']} quarantined events of tenant {args.tenant!r}")
            for item in result["items"]:
                print(f"  id {item['seq']}: {item.get('source')} {item.get('order_id') or item.get('waybill') or '-'} "
                      f"raw status {item.get('raw_status')!r}: {item.get('reason')}")
            return 0
        result = target.release(args.tenant, None if args.all else args.id)
        print(f"released {result['released']}; {result['quarantined']} stay quarantined"
              + (" (more to release: run again)" if result.get("more") else ""))
        for item in result["results"]:
            print(f"  id {item['seq']}: {item['order_id']} -> {item['outcome']} {item.get('status') or ''}")
        for kept in result["kept"]:
            print(f"  id {kept['seq']}: kept: {kept['reason']}")
        return 0
    finally:
        target.close()


def add_quarantine_parser(sub: Any, config_options: Any) -> argparse.ArgumentParser:
    """Register ``gateway quarantine`` on the CLI's sub-parsers."""
    quarantine: argparse.ArgumentParser = sub.add_parser(
        "quarantine", help="events with a status the rules do not know: list, release after a rule fix",
        description="Quarantined events are kept with their raw input. After the mapping rules learn the "
        "missing status (edit the rule file; the gateway reloads it), release them: they are re-read under "
        "the live rules and processed like new events.")
    commands = quarantine.add_subparsers(dest="quarantine_command", required=True, metavar="SUBCOMMAND")
    listing = commands.add_parser("list", help="quarantined events with their reasons")
    config_options(listing)
    listing.add_argument("--tenant", required=True)
    listing.add_argument("--limit", type=int, default=100)
    listing.add_argument("--json", action="store_true")
    release = commands.add_parser("release", help="re-read quarantined events under the live rules")
    config_options(release)
    release.add_argument("--tenant", required=True)
    which = release.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every quarantined event of the tenant")
    which.add_argument("--id", type=int, action="append", help="a quarantined event id (repeatable)")
    return quarantine


def add_outbox_parser(sub: Any, config_options: Any) -> argparse.ArgumentParser:
    """Register ``gateway outbox`` on the CLI's sub-parsers."""
    outbox: argparse.ArgumentParser = sub.add_parser("outbox", help="store-and-forward: backlog, dead letters, requeue",
                            description="Inspect and repair the outbox to the upstream ERP. Talks to the "
                            "running gateway's local API, or opens the store when the gateway is stopped.")
    commands = outbox.add_subparsers(dest="outbox_command", required=True, metavar="SUBCOMMAND")
    status = commands.add_parser("status", help="backlog count, bytes, oldest age, last error, dead letters")
    config_options(status)
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.add_argument("--watch", nargs="?", type=float, const=2.0, metavar="S",
                        help="print the drain's progress every S seconds (default 2) until the backlog is empty")
    dead = commands.add_parser("dead", help="list dead letters (events the upstream refused) with reasons")
    config_options(dead)
    dead.add_argument("--limit", type=int, default=100)
    dead.add_argument("--tenant")
    dead.add_argument("--json", action="store_true")
    requeue = commands.add_parser("requeue", help="put dead letters back at the end of the outbox")
    config_options(requeue)
    which = requeue.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every dead letter")
    which.add_argument("--id", type=int, action="append", help="a dead letter id (repeatable)")
    return outbox
