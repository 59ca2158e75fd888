"""Token commands: ``gateway token create | list | revoke`` (scoped tokens of the local API).

    gateway token create --name N --tenant T|'*' --role viewer|operator|supervisor|admin [--json]
        a new token; its secret is printed ONCE, alone on stdout (what it is goes to stderr);
        the gateway keeps only its SHA-256
    gateway token list [--json]
        name, tenant, role and creation time of every token (never a secret or a hash)
    gateway token revoke NAME
        the token is refused within a second, by a running gateway too

Like ``gateway outbox``: when the gateway runs, the command goes through its local API with
the admin token (``[api] token_file``), so the change is in the store's audit trail
(``token:admin``, the gateway's chain ``_gateway``); when it does not, the tokens file
(``[api] tokens_file``) is edited directly and the change is recorded in the file-side log
next to it (``api-tokens.log``, actor ``cli:<user>``). The running gateway re-reads the file
either way. Roles and the file: ``gateway._server.tokens``.

Exit codes: 0 done, 1 error (unknown role or tenant, name taken, no such token, file
unreadable); the message says what to do.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from gateway._errors import GatewayError
from gateway._server.local_client import LocalGateway
from gateway._server.tokens import ADMIN_NAME, ALL_TENANTS, ROLES, create_token, list_tokens, revoke_token
from gateway._settings import Settings


def _config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="gateway.toml to use (default: the embedded config)")
    parser.add_argument("--data-dir", metavar="DIR", help="override [gateway] data_dir")


def add_token_parser(subparsers: Any, config_options: Callable[[argparse.ArgumentParser], None] | None = None
                     ) -> argparse.ArgumentParser:
    """Register ``gateway token`` on the CLI's sub-parsers; returns its parser (give it
    ``set_defaults(func=...)``)."""
    options = config_options or _config_options
    token: argparse.ArgumentParser = subparsers.add_parser(
        "token", help="scoped tokens of the local API: create, list, revoke",
        description="Tokens of the local API, each for one tenant (or '*') and one role (viewer < operator < "
        "supervisor < admin). The admin token of [api] token_file always works. Talks to the running gateway's "
        "API (audited), or edits the tokens file when it is stopped.")
    commands = token.add_subparsers(dest="token_command", required=True, metavar="SUBCOMMAND")
    create = commands.add_parser("create", help="create a token and print its secret once")
    options(create)
    create.add_argument("--name", required=True, help="unique; shown in the audit trail as token:NAME")
    create.add_argument("--tenant", required=True, help="the tenant it may see, or '*' for every tenant")
    create.add_argument("--role", required=True, help=f"one of {', '.join(ROLES)}")
    create.add_argument("--json", action="store_true", help="one JSON object, the secret under \"token\"")
    listing = commands.add_parser("list", help="the tokens (never their secrets)")
    options(listing)
    listing.add_argument("--json", action="store_true")
    revoke = commands.add_parser("revoke", help="revoke a token (refused within a second)")
    options(revoke)
    revoke.add_argument("name", metavar="NAME")
    return token


def _api_error(what: str, reply: Any) -> GatewayError:
    try:
        message = reply.json().get("error", reply.text)
    except ValueError:
        message = reply.text
    return GatewayError(f"{what}: {message} (HTTP {reply.status_code})")


def _create(target: LocalGateway, args: argparse.Namespace) -> dict[str, Any]:
    """The created token's fields and its secret (``token``)."""
    if target.client is not None:
        reply = target.client.post("/api/v1/tokens", json={"name": args.name, "tenant": args.tenant,
                                                           "role": args.role})
        if reply.status_code != 201:
            raise _api_error("token create", reply)
        body: dict[str, Any] = reply.json()
        return {**body["token"], "token": body["secret"]}
    token, secret = create_token(target.settings.tokens_path, args.name, args.tenant, args.role,
                                 actor=f"cli:{getpass.getuser()}", known_tenants=target.settings.tenants)
    return {**token.to_dict(), "token": secret}


def _list(target: LocalGateway) -> list[dict[str, Any]]:
    if target.client is not None:
        reply = target.client.get("/api/v1/tokens")
        if reply.status_code != 200:
            raise _api_error("token list", reply)
        tokens: list[dict[str, Any]] = reply.json()["tokens"]
        return tokens
    admin = {"name": ADMIN_NAME, "tenant": ALL_TENANTS, "role": "admin", "created_at": ""}
    return [admin, *(t.to_dict() for t in list_tokens(target.settings.tokens_path))]


def _revoke(target: LocalGateway, name: str) -> None:
    if target.client is not None:
        reply = target.client.delete(f"/api/v1/tokens/{name}")
        if reply.status_code != 200:
            raise _api_error("token revoke", reply)
        return
    revoke_token(target.settings.tokens_path, name, actor=f"cli:{getpass.getuser()}")


def run_token_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``gateway token ...``; returns the exit code (an error is printed on stderr: what
    went wrong and what to do)."""
    try:
        target = LocalGateway(settings, store_fallback=False)
    except GatewayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        return _run(target, args)
    except (GatewayError, httpx.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        target.close()


def _run(target: LocalGateway, args: argparse.Namespace) -> int:
    if args.token_command == "create":
        created = _create(target, args)
        if args.json:
            print(orjson.dumps(created).decode())
        else:
            print(f"token {created['name']!r} created for tenant {created['tenant']!r}, role "
                  f"{created['role']}. Copy it now: it is shown only this once.", file=sys.stderr)
            print(created["token"])  # alone on stdout: TOKEN=$(gateway token create ...)
        return 0
    if args.token_command == "list":
        tokens = _list(target)
        if args.json:
            print(orjson.dumps({"tokens": tokens}).decode())
            return 0
        print(f"{'NAME':<24} {'TENANT':<16} {'ROLE':<10} CREATED")
        for token in tokens:
            created_at = token["created_at"] or ("[api] token_file" if token["name"] == ADMIN_NAME else "")
            print(f"{token['name']:<24} {token['tenant']:<16} {token['role']:<10} {created_at}")
        return 0
    _revoke(target, args.name)
    print(f"token {args.name!r} revoked" + (" (the running gateway refuses it now)" if target.client else
                                              " (a running gateway refuses it within a second)"))
    return 0


__all__ = ["add_token_parser", "run_token_command"]
