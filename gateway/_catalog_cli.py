"""Catalog commands: ``gateway catalog import | show`` and ``gateway stock``.

Like ``gateway outbox``: when the gateway runs, the command goes through its local API (the
address is ``[http] host/port`` of the config, the token the file ``[api] token_file`` points
at), so the import is committed by the gateway in order with everything else; when it does
not (RocksDB admits one process), the store is opened directly.

    gateway catalog import FILE --tenant T [--format csv|json] [--dry-run] [--lang zh-CN|en]
        validate the file (every problem as file:row:column on stderr) and store its
        products and stock levels; --dry-run only validates and counts
    gateway catalog show --tenant T [--sku S | --barcode B] [--json | --csv]
        the products (--csv writes them in the import's CSV form), or one of them
    gateway stock --tenant T [--json]
        the gift stock levels with how old each figure is

Exit codes: 0 done, 1 error (a refused file, an unknown SKU, store locked and API unreachable).
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from gateway._errors import GatewayError
from gateway._packline.catalog import (
    CatalogImportError,
    CatalogProblem,
    catalog_to_csv,
    catalog_write,
    load_catalog,
    load_stock,
    parse_catalog,
    product_to_json,
    stock_age_s,
)
from gateway._packline.values import Product
from gateway._server.local_client import LocalGateway
from gateway._settings import Settings


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class _Target(LocalGateway):
    """The running gateway's API, or the store opened directly (``LocalGateway``)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, timeout_s=60)  # a big catalog takes a while to validate

    def get(self, path: str, *, missing_ok: bool = True, **params: Any) -> dict[str, Any] | None:
        """The JSON of ``GET path`` (``None`` on 404)."""
        return super().get(path, missing_ok=missing_ok, **params)


def _print_problems(problems: list[CatalogProblem], more: int, lang: str) -> None:
    for problem in problems:
        print(f"error: {problem.text(lang)}", file=sys.stderr)
    total = len(problems) + more
    print(f"{total} problem(s); nothing was imported" if lang == "en" else f"共 {total} 个问题；未导入任何数据",
          file=sys.stderr)


def _import(target: _Target, args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise GatewayError(f"cannot read {path}: {exc.strerror}") from exc
    actor = f"cli:{getpass.getuser()}"
    if target.client is not None:
        params = {"filename": path.name, **({"format": args.format} if args.format else {}),
                  **({"dry_run": "1"} if args.dry_run else {})}
        reply = target.client.post(f"/api/v1/tenants/{args.tenant}/catalog", content=data, params=params,
                                   headers={"X-Gateway-Actor": actor})
        if reply.status_code == 422:
            body = reply.json()
            _print_problems([CatalogProblem(e["file"], e["row"], e["column"], e["message"], e["message_en"])
                             for e in body["errors"]], body.get("more", 0), args.lang)
            return 1
        if reply.status_code != 200:
            raise GatewayError(f"import: HTTP {reply.status_code}: {reply.text[:200]}")
        counts: dict[str, Any] = reply.json()
    else:
        assert target.store is not None
        existing = load_catalog(target.store, args.tenant)
        at_ms = now_ms()
        try:
            parsed = parse_catalog(data, args.format, name=str(path), existing=existing, now_ms=at_ms)
        except CatalogImportError as exc:
            _print_problems(list(exc.problems), exc.more, args.lang)
            return 1
        new = sum(1 for p in parsed.products if existing.product(p.sku) is None)
        unchanged = sum(1 for p in parsed.products if existing.product(p.sku) == p)
        counts = {"products": len(parsed.products), "new": new, "unchanged": unchanged,
                  "updated": len(parsed.products) - new - unchanged, "stock": len(parsed.stock)}
        if not args.dry_run:
            note = f"import {path.name}: {len(parsed.products)} products, {len(parsed.stock)} stock levels"
            target.store.commit(catalog_write(args.tenant, parsed.products, parsed.stock, actor=actor, note=note,
                                              now_ms=at_ms))
    verb = "would import" if args.dry_run else "imported"
    print(f"{path.name}: {verb} {counts['products']} products ({counts['new']} new, {counts['updated']} updated, "
          f"{counts['unchanged']} unchanged) and {counts['stock']} stock levels for tenant {args.tenant!r}")
    return 0


def _products(target: _Target, tenant: str) -> Iterator[Product]:
    if target.store is not None:
        yield from sorted(load_catalog(target.store, tenant), key=lambda p: p.sku)
        return
    after: str | None = ""
    while after is not None:
        page = target.get(f"/api/v1/tenants/{tenant}/catalog", after=after or None, limit=10_000) or {}
        for raw in page.get("products", []):
            yield _from_json(raw)
        after = page.get("next")


def _from_json(raw: dict[str, Any]) -> Product:
    return Product.from_dict({**raw, "parts": [(p["sku"], p["quantity"]) for p in raw.get("parts", [])]})


def _one(target: _Target, tenant: str, sku: str | None, barcode: str | None) -> Product | None:
    if target.store is not None:
        catalog = load_catalog(target.store, tenant)
        return catalog.product(sku) if sku is not None else catalog.by_barcode(barcode or "")
    found = target.get(f"/api/v1/tenants/{tenant}/catalog", sku=sku, barcode=barcode)
    return None if found is None else _from_json(found["product"])


def _line(product: Product) -> str:
    weight = "-" if product.weight_g is None else f"{product.weight_g} g"
    what = (" = " + " + ".join(f"{p.sku}x{p.quantity}" for p in product.parts)) if product.parts else (
        "  " + (", ".join(product.barcodes) or "(no barcode)"))
    flag = "  serialised" if product.serialised else ""
    return f"{product.sku:<16} {product.kind:<8} {weight:>8}  {product.name}{what}{flag}"


def _show(target: _Target, args: argparse.Namespace) -> int:
    if args.sku is not None or args.barcode is not None:
        product = _one(target, args.tenant, args.sku, args.barcode)
        if product is None:
            what = f"sku {args.sku!r}" if args.sku is not None else f"barcode {args.barcode!r}"
            print(f"error: no product with {what} for tenant {args.tenant!r}", file=sys.stderr)
            return 1
        products = [product]
    else:
        products = list(_products(target, args.tenant))
    if args.json:
        print(orjson.dumps([product_to_json(p) for p in products], option=orjson.OPT_INDENT_2).decode())
    elif args.csv:
        sys.stdout.write(catalog_to_csv(products))
    else:
        print(f"{len(products)} products of tenant {args.tenant!r}")
        for product in products:
            print("  " + _line(product))
    return 0


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _stock(target: _Target, args: argparse.Namespace) -> int:
    if target.store is not None:
        at_ms = now_ms()
        levels = load_stock(target.store, args.tenant)
        items = [{**levels[s].to_dict(), "age_s": stock_age_s(levels[s], at_ms)} for s in sorted(levels)]
    else:
        items = (target.get(f"/api/v1/tenants/{args.tenant}/stock") or {}).get("stock", [])
    if args.json:
        print(orjson.dumps({"stock": items}, option=orjson.OPT_INDENT_2).decode())
        return 0
    print(f"{len(items)} stock levels of tenant {args.tenant!r}")
    for item in items:
        print(f"  {item['sku']:<16} {item['quantity']:>8}  {_age(item['age_s']):>9} old  (set by {item['source']})")
    return 0


def run_catalog_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``gateway catalog import|show`` or ``gateway stock``; the exit code."""
    try:
        target = _Target(settings)
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        if args.command == "stock":
            return _stock(target, args)
        if args.catalog_command == "import":
            return _import(target, args)
        return _show(target, args)
    except (GatewayError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        target.close()


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="gateway.toml to use")
    parser.add_argument("--data-dir", metavar="DIR", help="override [gateway] data_dir")


def add_catalog_commands(subparsers: Any, config_options: Callable[[argparse.ArgumentParser], None] | None = None
                         ) -> list[argparse.ArgumentParser]:
    """Register ``gateway catalog`` and ``gateway stock`` on the CLI's sub-parsers; returns
    both parsers (give them ``set_defaults(func=...)``)."""
    options = config_options or _config_options
    catalog: argparse.ArgumentParser = subparsers.add_parser(
        "catalog", help="the pack line's products: import a CSV/JSON file, show them",
        description="Import the catalog (products, barcodes, kits, gifts, weights, gift stock) from a CSV or "
        "JSON file, or show it. Talks to the running gateway's local API, or opens the store when it is stopped.")
    commands = catalog.add_subparsers(dest="catalog_command", required=True, metavar="SUBCOMMAND")
    load = commands.add_parser("import", help="validate a catalog file and store it",
                               description="Every problem is printed as file:row:column; nothing is stored "
                               "unless the whole file is valid. Products are added or replaced by SKU.")
    options(load)
    load.add_argument("file", metavar="FILE")
    load.add_argument("--tenant", required=True)
    load.add_argument("--format", choices=["csv", "json"], help="default: from the name or the content")
    load.add_argument("--dry-run", action="store_true", help="validate and count only")
    load.add_argument("--lang", choices=["zh-CN", "en"], default="zh-CN", help="language of the problems")
    show = commands.add_parser("show", help="list the products, or one by SKU or barcode")
    options(show)
    show.add_argument("--tenant", required=True)
    which = show.add_mutually_exclusive_group()
    which.add_argument("--sku")
    which.add_argument("--barcode")
    form = show.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true")
    form.add_argument("--csv", action="store_true", help="in the import's CSV form (an export)")
    stock: argparse.ArgumentParser = subparsers.add_parser(
        "stock", help="gift stock levels and how old each figure is",
        description="The gift stock the pack line checks before packing: each level, who set it (erp, import, "
        "packing) and how old the ERP's figure is.")
    options(stock)
    stock.add_argument("--tenant", required=True)
    stock.add_argument("--json", action="store_true")
    return [catalog, stock]


__all__ = ["add_catalog_commands", "run_catalog_command"]
