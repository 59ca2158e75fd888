"""``gateway token create|list|revoke``: on a stopped gateway's tokens file and through a
running one's API; the secret is printed once and never listed."""

from __future__ import annotations

import argparse
from functools import partial

import httpx
import orjson
import pytest
import trio

from gateway._server.tokens import API_AUDIT_TENANT, hash_secret
from gateway._settings import load_settings, with_overrides
from gateway._token_cli import add_token_parser, run_token_command
from gateway.cli import build_parser
from tests._support import erp_event, signed, write_config
from tests.server.test_catalog_api import catalog_gateway

ORDER = "/api/v1/tenants/t1/orders/douyin|DY00000001"


def run(settings, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gateway")
    add_token_parser(parser.add_subparsers(dest="command", required=True))
    return run_token_command(parser.parse_args(list(argv)), settings)


@pytest.fixture
def offline(tmp_path):
    return load_settings(write_config(tmp_path))


def test_create_list_revoke_on_the_file(offline, capsys):
    assert run(offline, "token", "create", "--name", "ops", "--tenant", "t1", "--role", "operator") == 0
    out, err = capsys.readouterr()
    secret = out.strip()
    assert secret.startswith("gw_") and len(out.splitlines()) == 1  # alone on stdout
    assert "shown only this once" in err
    assert run(offline, "token", "create", "--name", "all", "--tenant", "*", "--role", "viewer", "--json") == 0
    created = orjson.loads(capsys.readouterr().out)
    assert (created["name"], created["tenant"], created["role"]) == ("all", "*", "viewer")

    assert run(offline, "token", "list") == 0
    listing = capsys.readouterr().out
    assert "ops" in listing and "operator" in listing and "t1" in listing and "admin" in listing
    assert run(offline, "token", "list", "--json") == 0
    listed = capsys.readouterr().out
    assert [t["name"] for t in orjson.loads(listed)["tokens"]] == ["admin", "ops", "all"]
    for hidden in (secret, hash_secret(secret), created["token"], hash_secret(created["token"])):
        assert hidden not in listing and hidden not in listed

    for argv, message in ((("create", "--name", "ops", "--tenant", "t1", "--role", "viewer"), "revoke it first"),
                          (("create", "--name", "x", "--tenant", "t1", "--role", "boss"),
                           "unknown role 'boss': give one of viewer, operator, supervisor, admin"),
                          (("create", "--name", "x", "--tenant", "nope", "--role", "viewer"), "unknown tenant 'nope'"),
                          (("revoke", "ghost"), "`gateway token list` shows the names")):
        assert run(offline, "token", *argv) == 1
        assert message in capsys.readouterr().err
    assert run(offline, "token", "revoke", "ops") == 0
    assert "revoked" in capsys.readouterr().out
    assert run(offline, "token", "list", "--json") == 0
    assert [t["name"] for t in orjson.loads(capsys.readouterr().out)["tokens"]] == ["admin", "all"]
    log = [orjson.loads(line) for line in offline.tokens_path.with_suffix(".log").read_text().splitlines()]
    assert [(e["action"], e["name"], e["actor"].split(":")[0]) for e in log] == [
        ("create", "ops", "cli"), ("create", "all", "cli"), ("revoke", "ops", "cli")]


def test_the_gateway_command_has_token(offline):
    args = build_parser().parse_args(["token", "create", "--name", "n", "--tenant", "t1", "--role", "viewer"])
    assert args.token_command == "create" and callable(args.func)


async def test_the_commands_go_through_the_running_gateway_and_are_audited(offline, capsys):
    async with catalog_gateway(offline) as gw, httpx.AsyncClient(base_url=gw.base) as client:
        body, headers = signed([erp_event(1)], "t1")
        assert (await client.post("/webhooks/erp/t1", content=body, headers=headers)).status_code == 200
        settings = with_overrides(offline, http={"port": int(gw.base.rsplit(":", 1)[1])})
        cli = partial(run, settings)
        assert await trio.to_thread.run_sync(cli, "token", "create", "--name", "v", "--tenant", "t1",
                                             "--role", "viewer") == 0
        secret = capsys.readouterr().out.strip()
        auth = {"Authorization": f"Bearer {secret}"}
        assert (await client.get(ORDER, headers=auth)).status_code == 200  # the printed token works
        assert await trio.to_thread.run_sync(cli, "token", "list") == 0
        assert secret not in capsys.readouterr().out
        assert await trio.to_thread.run_sync(cli, "token", "revoke", "v") == 0
        assert "refuses it now" in capsys.readouterr().out
        assert (await client.get(ORDER, headers=auth)).status_code == 401
        assert await trio.to_thread.run_sync(cli, "token", "revoke", "v") == 1
        assert "no token named 'v'" in capsys.readouterr().err
        calls = list(gw.store.iter_audit(API_AUDIT_TENANT))
        assert [(c["actor"], c["detail"]["method"]) for c in calls] == [("token:admin", "POST"),
                                                                      ("token:admin", "DELETE")]


def test_tokens_file_is_an_api_setting(tmp_path):
    default = load_settings(write_config(tmp_path))
    assert default.tokens_path == default.data_path / "api-tokens.json"
    moved = load_settings(write_config(tmp_path, extra="[api]\ntokens_file = 'secrets/tokens.json'"))
    assert moved.tokens_path == (tmp_path / "secrets" / "tokens.json").resolve()
