"""Scoped API tokens over real HTTP (``gateway._server.tokens`` and ``http.token_guard``): a
tenant's token sees nothing of another tenant (the same 404 as a missing order), a role too
low is a 403 naming the role needed, a revoked token is refused within a second while the
server runs, the admin token keeps working, and every change is audited with the token's
name in the gateway's own audit chain.

The gateway is the one ``tests.server.test_catalog_api.catalog_gateway`` serves: the real
``build_app`` over a real store and pipeline, on 127.0.0.1.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import httpx
import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from gateway._errors import GatewayError
from gateway._server import tokens as tokens_module
from gateway._server.tokens import (
    API_AUDIT_TENANT,
    ROLES,
    ApiToken,
    TokenRegistry,
    create_token,
    hash_secret,
    list_tokens,
    revoke_token,
)
from tests._support import erp_event, signed
from tests.server.test_catalog_api import CSV, catalog_gateway, settings_in

T1_ORDER = "/api/v1/tenants/t1/orders/douyin|DY00000001"
T2_ORDER = "/api/v1/tenants/t2/orders/douyin|DY00000002"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def post_orders(client: httpx.AsyncClient) -> None:
    for n, tenant in ((1, "t1"), (2, "t2")):
        body, headers = signed([erp_event(n)], tenant)
        assert (await client.post(f"/webhooks/erp/{tenant}", content=body, headers=headers)).status_code == 200


def api_calls(store) -> list[dict]:
    return list(store.iter_audit(API_AUDIT_TENANT))


async def test_a_tenant_viewer_reads_its_tenant_and_learns_nothing_of_another(tmp_path):
    settings = settings_in(tmp_path)
    async with catalog_gateway(settings) as gw, httpx.AsyncClient(base_url=gw.base) as client:
        await post_orders(client)
        _, secret = create_token(settings.tokens_path, "viewer-t1", "t1", "viewer", actor="test")
        viewer = bearer(secret)
        assert secret.startswith("gw_")

        own = await client.get(T1_ORDER, headers=viewer)
        assert own.status_code == 200 and own.json()["order"]["tenant"] == "t1"
        foreign = await client.get(T2_ORDER, headers=viewer)
        missing = await client.get("/api/v1/tenants/t1/orders/douyin|NOPE", headers=viewer)
        unknown_tenant = await client.get("/api/v1/tenants/t9/orders/douyin|DY00000002", headers=viewer)
        for reply in (foreign, unknown_tenant):  # B's order, a tenant that does not exist, a missing order: alike
            assert (reply.status_code, reply.content) == (missing.status_code, missing.content) == (
                404, b'{"error":"no such order","code":"not_found"}')
            assert reply.headers["content-type"] == missing.headers["content-type"]
        assert (await client.get(T2_ORDER, headers=gw.auth)).status_code == 200  # the admin token sees B

        for path in ("/api/v1/tenants/t2/quarantine", "/api/v1/tenants/t2/events", "/api/v1/tenants/t2/stock",
                     "/api/v1/tenants/t2/audit/verify", "/api/v1/tenants/t2/labels"):
            reply = await client.get(path, headers=viewer)
            assert (reply.status_code, reply.json()) == (404, {"error": "not found", "code": "not_found"}), path
        for path in ("/api/v1/outbox", "/metrics", "/api/v1/stations", "/api/v1/tokens"):
            reply = await client.get(path, headers=viewer)  # every tenant's figures: tenant "*" only
            assert reply.status_code == 403 and "'*'" in reply.json()["error"], path
        dead = await client.get("/api/v1/outbox/dead", params={"tenant": "t2"}, headers=viewer)
        assert dead.json() == {"count": 0, "items": [], "next_cursor": None, "next_after": None}
        assert (await client.get("/api/v1/rules", headers=viewer)).status_code == 200
        assert (await client.get("/metrics", headers=gw.auth)).status_code == 200
        assert (await client.get(T1_ORDER, headers=bearer(secret + "x"))).status_code == 401
        assert (await client.get(T1_ORDER)).status_code == 401


async def test_a_role_below_the_route_is_403_and_every_change_is_audited_with_the_token(tmp_path):
    settings = settings_in(tmp_path)
    async with catalog_gateway(settings) as gw, httpx.AsyncClient(base_url=gw.base) as client:
        viewer = bearer(create_token(settings.tokens_path, "view1", "t1", "viewer", actor="test")[1])
        operator = bearer(create_token(settings.tokens_path, "op1", "t1", "operator", actor="test")[1])
        supervisor = bearer(create_token(settings.tokens_path, "sup1", "t1", "supervisor", actor="test")[1])
        tenant_admin = bearer(create_token(settings.tokens_path, "adm1", "t1", "admin", actor="test")[1])
        release = "/api/v1/tenants/t1/quarantine/release"

        refused = await client.post(release, json={"all": True}, headers=viewer)
        assert refused.status_code == 403 and refused.json()["needed_role"] == "supervisor"
        assert "view1" in refused.json()["error"]
        assert (await client.post("/api/v1/tenants/t2/quarantine/release", json={"all": True},
                                  headers=supervisor)).status_code == 404  # another tenant: not even a 403
        catalog = await client.post("/api/v1/tenants/t1/catalog", content=CSV, headers=operator)
        assert catalog.status_code == 403 and catalog.json()["needed_role"] == "supervisor"
        assert (await client.post("/api/v1/rules/reload", headers=supervisor)).status_code == 403  # "*" only
        assert (await client.post("/api/v1/tokens", json={"name": "x", "tenant": "t1", "role": "viewer"},
                                  headers=tenant_admin)).status_code == 403
        assert api_calls(gw.store) == []  # nothing refused is a change

        assert (await client.post(release, json={"all": True}, headers=supervisor)).status_code == 200
        assert (await client.post("/api/v1/tenants/t1/catalog", content=CSV, headers=supervisor)).status_code == 200
        assert (await client.post("/api/v1/outbox/requeue", json={"all": True}, headers=supervisor)).status_code == 200
        assert (await client.post("/api/v1/rules/reload", headers=gw.auth)).status_code == 200  # admin still works

        calls = api_calls(gw.store)
        assert [(c["actor"], c["detail"]["method"], c["detail"]["path"]) for c in calls] == [
            ("token:sup1", "POST", release),
            ("token:sup1", "POST", "/api/v1/tenants/t1/catalog"),
            ("token:sup1", "POST", "/api/v1/outbox/requeue"),
            ("token:admin", "POST", "/api/v1/rules/reload"),
        ]
        assert calls[0]["detail"]["released"] == 0 and calls[0]["detail"]["token"] == {
            "name": "sup1", "tenant": "t1", "role": "supervisor"}
        assert all(c["decision"] == "api_call" and c["detail"]["status"] == 200 for c in calls)
        assert gw.store.verify_audit_chain(API_AUDIT_TENANT).ok
        assert [a["decision"] for a in gw.store.iter_audit("t1")] == ["catalog_import"]  # the tenant's own chain


async def test_a_revoked_token_is_refused_within_a_second_while_the_server_runs(tmp_path):
    settings = settings_in(tmp_path)
    async with catalog_gateway(settings) as gw, httpx.AsyncClient(base_url=gw.base) as client:
        await post_orders(client)
        headers = bearer(create_token(settings.tokens_path, "soon-gone", "t1", "viewer", actor="test")[1])
        assert (await client.get(T1_ORDER, headers=headers)).status_code == 200
        await trio.to_thread.run_sync(lambda: revoke_token(settings.tokens_path, "soon-gone", actor="test"))
        revoked_at = time.monotonic()
        with trio.fail_after(5):
            while (await client.get(T1_ORDER, headers=headers)).status_code == 200:  # noqa: ASYNC110  (polling the API)
                await trio.sleep(0.05)
        assert time.monotonic() - revoked_at < 1.5
        assert (await client.get(T1_ORDER, headers=headers)).status_code == 401
        assert (await client.get(T1_ORDER, headers=gw.auth)).status_code == 200  # the admin token is untouched


async def test_tokens_through_the_api_are_shown_once_listed_without_secrets_and_audited(tmp_path):
    settings = settings_in(tmp_path)
    async with catalog_gateway(settings) as gw, httpx.AsyncClient(base_url=gw.base) as client:
        await post_orders(client)
        created = await client.post("/api/v1/tokens", json={"name": "ops", "tenant": "t2", "role": "operator"},
                                    headers=gw.auth)
        assert created.status_code == 201, created.text
        secret = created.json()["secret"]
        assert (await client.get(T2_ORDER, headers=bearer(secret))).status_code == 200  # at once, no wait
        duplicate = await client.post("/api/v1/tokens", json={"name": "ops", "tenant": "t2", "role": "viewer"},
                                      headers=gw.auth)
        assert duplicate.status_code == 409 and "revoke it first" in duplicate.json()["error"]
        bad_role = await client.post("/api/v1/tokens", json={"name": "x", "tenant": "t2", "role": "boss"},
                                     headers=gw.auth)
        assert bad_role.status_code == 400 and "viewer, operator, supervisor, admin" in bad_role.json()["error"]
        listed = await client.get("/api/v1/tokens", headers=gw.auth)
        assert [(t["name"], t["tenant"], t["role"]) for t in listed.json()["tokens"]] == [
            ("admin", "*", "admin"), ("ops", "t2", "operator")]
        assert secret not in listed.text and hash_secret(secret) not in listed.text
        assert (await client.delete("/api/v1/tokens/ops", headers=gw.auth)).status_code == 200
        assert (await client.get(T2_ORDER, headers=bearer(secret))).status_code == 401
        assert (await client.delete("/api/v1/tokens/ops", headers=gw.auth)).status_code == 404

        calls = api_calls(gw.store)
        assert [(c["actor"], c["detail"].get("token_created", c["detail"].get("token_revoked"))["name"])
                for c in calls] == [("token:admin", "ops"), ("token:admin", "ops")]
        assert all(secret not in orjson.dumps(c).decode() for c in calls)
        log_lines = [orjson.loads(line) for line in settings.tokens_path.with_suffix(".log").read_text().splitlines()]
        assert [(entry["action"], entry["actor"]) for entry in log_lines] == [("create", "token:admin"),
                                                                             ("revoke", "token:admin")]


def test_the_tokens_file_keeps_only_hashes_with_mode_0600_and_refuses_what_is_wrong(tmp_path):
    path = tmp_path / "api-tokens.json"
    token, secret = create_token(path, "a", "t1", "viewer", actor="test", known_tenants={"t1": {}})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret not in path.read_text() and hash_secret(secret) in path.read_text()
    assert list_tokens(path) == [token]
    for name, tenant, role, message in (("a", "t1", "viewer", "exists"), ("b", "t1", "boss", "unknown role"),
                                        ("c", "t7", "viewer", "unknown tenant 't7'"),
                                        ("admin", "*", "admin", "admin token"), ("d e", "t1", "viewer", "bad token")):
        with pytest.raises(GatewayError, match=message):
            create_token(path, name, tenant, role, actor="test", known_tenants={"t1": {}})
    with pytest.raises(GatewayError, match="no token named 'zz'"):
        revoke_token(path, "zz", actor="test")
    registry = TokenRegistry("admin-secret", path, check_every_s=0)
    assert registry.authenticate(secret) == token
    assert registry.authenticate("admin-secret") == ApiToken("admin", "*", "admin")
    path.write_text("{not json")  # a damaged file admits the admin token only
    assert registry.authenticate(secret) is None and registry.authenticate("admin-secret") is not None


@given(st.binary(max_size=300) | st.builds(lambda v: orjson.dumps(v), st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(
        ["version", "tokens", "name", "tenant", "role", "sha256", "created_at"]), inner, max_size=5), max_leaves=12)))
@hypothesis_settings(max_examples=300, deadline=None)
def test_a_tokens_file_of_any_bytes_is_read_or_refused_with_a_gatewayerror(data):
    try:
        stored = tokens_module._parse(data, Path("api-tokens.json"))
    except GatewayError as exc:
        assert "api-tokens.json" in str(exc)
    else:
        assert all(s.token.role in ROLES and len(s.sha256) == 64 for s in stored)
