"""Customs commands: ``gateway customs import | board | attributes``.

Like ``gateway catalog``: when the gateway runs, the command goes through its local API (so an
import is committed by the gateway in order with everything else, and the declarations it
completes are forwarded by the running forwarder); when it does not (RocksDB admits one
process), the store is opened directly and the import, with its ``declaration`` events
planned by the same processing step the pipeline runs, is committed in one write batch (the
forwarder sends them at the next start).

    gateway customs import products|suppliers|values FILE --tenant T [--dry-run] [--lang zh-CN|en]
        validate the file (every problem as file:row:column on stderr) and store it; prints
        the orders whose declaration it completed
    gateway customs board --tenant T [--all] [--json | --csv]
        the open cross-border orders with missing attributes and the record that fills each;
        --csv writes the fill file (fill its value column, import it as ``values``)
    gateway customs attributes [--json]
        check the configuration ([customs] dir) and list the attributes and fill rules

Exit codes: 0 done, 1 error (a refused file, a broken configuration, store locked and API
unreachable).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway._customs import CustomsConfig, CustomsImportError, CustomsProblem, board, load_customs
from gateway._errors import ConfigError, GatewayError
from gateway._pipeline import plan_step
from gateway._server.customs_api import config_json, fill_csv, plan_import
from gateway._server.local_client import LocalGateway
from gateway._settings import Settings


def _print_problems(problems: list[CustomsProblem], more: int, lang: str) -> None:
    for problem in problems:
        print(f"error: {problem.text(lang)}", file=sys.stderr)
    total = len(problems) + more
    print(f"{total} problem(s); nothing was imported" if lang == "en" else f"共 {total} 个问题；未导入任何数据",
          file=sys.stderr)


def _import(target: LocalGateway, config: CustomsConfig, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GatewayError(f"cannot read {path}: {exc.strerror}") from exc
    actor = f"cli:{getpass.getuser()}"
    if target.client is not None:
        reply = target.client.post(f"/api/v1/tenants/{args.tenant}/customs/{args.kind}", content=data,
                                   params={"filename": path.name, **({"dry_run": "1"} if args.dry_run else {})},
                                   headers={"X-Gateway-Actor": actor})
        if reply.status_code == 422:
            body = reply.json()
            _print_problems([CustomsProblem(e["file"], e["row"], e["column"], e["message"], e["message_en"])
                             for e in body["errors"]], body.get("more", 0), args.lang)
            return 1
        if reply.status_code != 200:
            raise GatewayError(f"import: HTTP {reply.status_code}: {reply.text[:200]}")
        counts: dict[str, Any] = reply.json()
    else:
        store = target.store
        assert store is not None
        at_ms = time.time_ns() // 1_000_000
        try:
            events, write, counts = plan_import(store, config, args.tenant, args.kind, data, str(path), actor, at_ms)
        except CustomsImportError as exc:
            _print_problems(list(exc.problems), exc.more, args.lang)
            return 1
        if not args.dry_run:
            plan = plan_step(events, store.get_order, store.seen_fingerprint, store.order_for_waybill,
                             store.orders_for_buyer, at_ms, merge_window_ms=0)
            plan.write.merge(write)
            store.commit(plan.write)
    verb = "would import" if args.dry_run else "imported"
    completed = counts.get("completed") or []
    print(f"{path.name}: {verb} {counts['rows']} {args.kind} rows for tenant {args.tenant!r}; "
          f"{len(completed)} declaration(s) complete and forwarded, {counts.get('incomplete', 0)} still incomplete")
    for order_id in completed:
        print(f"  complete: {order_id}")
    return 0


def _board(target: LocalGateway, config: CustomsConfig, args: argparse.Namespace) -> int:
    if target.client is not None:
        params = {"all": "1" if args.all else None, "format": "csv" if args.csv else None}
        if args.csv:
            reply = target.client.get(f"/api/v1/tenants/{args.tenant}/customs/board",
                                      params={k: v for k, v in params.items() if v})
            if reply.status_code != 200:
                raise GatewayError(f"board: HTTP {reply.status_code}: {reply.text[:200]}")
            sys.stdout.write(reply.content.decode("utf-8-sig"))
            return 0
        found = target.get(f"/api/v1/tenants/{args.tenant}/customs/board", all=params["all"]) or {}
        orders = found.get("orders", [])
    else:
        assert target.store is not None
        declarations = board(target.store, config, args.tenant)
        if args.csv:
            sys.stdout.write(fill_csv(config, declarations))
            return 0
        orders = [d.to_dict(config) for d in declarations if args.all or not d.complete]
    if args.json:
        print(orjson.dumps({"orders": orders}, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{len(orders)} cross-border order(s) of tenant {args.tenant!r}" + ("" if args.all else
                                                                             " with missing attributes"))
    for order in orders:
        print(f"  {order['order_id']}  -> {order['destination'] or '?'}  ({order['cross_border_because']})")
        for need in order["missing"]:
            print(f"      {need['message_en'] if args.lang == 'en' else need['message']}")
    return 0


def _attributes(config: CustomsConfig, settings: Settings, args: argparse.Namespace) -> int:
    if args.json:
        print(orjson.dumps(config_json(config), option=orjson.OPT_INDENT_2).decode())
        return 0
    if not config.enabled:
        print(f"the customs declaration check is off: no {settings.customs_path}/attributes.toml")
        return 0
    print(f"{config.source}: {len(config.attributes)} attributes, {len(config.rules)} fill rules")
    for attribute in config.attributes.values():
        print(f"  {attribute.id:<26} {attribute.type:<8} {attribute.label} / {attribute.label_en}")
    for rule in config.rules:
        print(f"  rule {rule.name}: {rule.attribute} from the {rule.source}'s {rule.field}")
    return 0


def run_customs_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``gateway customs ...``; the exit code."""
    try:
        config = load_customs(settings.customs_path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.customs_command == "attributes":
        return _attributes(config, settings, args)
    try:
        target = LocalGateway(settings, timeout_s=60)
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return _import(target, config, args) if args.customs_command == "import" else _board(target, config, args)
    except (GatewayError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        target.close()


def add_customs_parser(subparsers: Any, config_options: Callable[[argparse.ArgumentParser], None]
                       ) -> argparse.ArgumentParser:
    """Register ``gateway customs`` on the CLI's sub-parsers; returns its parser (give it
    ``set_defaults(func=...)``)."""
    customs: argparse.ArgumentParser = subparsers.add_parser(
        "customs", help="customs declarations of cross-border orders: import master data, the board",
        description="Customs-declaration completeness: import product and supplier master data or declaration "
        "values (CSV/JSON), show the pre-declaration board, check the attribute configuration. Values are not "
        "extracted from PDF test reports.")
    commands = customs.add_subparsers(dest="customs_command", required=True, metavar="SUBCOMMAND")
    load = commands.add_parser("import", help="validate a file and store it",
                               description="Every problem is printed as file:row:column; nothing is stored "
                               "unless the whole file is valid.")
    config_options(load)
    load.add_argument("kind", choices=["products", "suppliers", "values"])
    load.add_argument("file", metavar="FILE")
    load.add_argument("--tenant", required=True)
    load.add_argument("--dry-run", action="store_true", help="validate and count only")
    load.add_argument("--lang", choices=["zh-CN", "en"], default="zh-CN", help="language of the problems")
    show = commands.add_parser("board", help="cross-border orders with missing attributes")
    config_options(show)
    show.add_argument("--tenant", required=True)
    show.add_argument("--all", action="store_true", help="also the complete declarations")
    show.add_argument("--lang", choices=["zh-CN", "en"], default="zh-CN")
    form = show.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true")
    form.add_argument("--csv", action="store_true", help="the fill file: fill the value column, import as values")
    attributes = commands.add_parser("attributes", help="check the configuration and list the attributes")
    config_options(attributes)
    attributes.add_argument("--json", action="store_true")
    return customs


__all__ = ["add_customs_parser", "run_customs_command"]
