"""Schemathesis against the running daemon: every operation of the OpenAPI description
(``GET /api/v1/openapi.json``) called with generated data, valid and invalid, with the
admin token; no answer may be a 5xx and every status must be one the description lists.

The daemon is the real one (``gateway._daemon.serve_gateway``: RocksDB in ``tmp_path``, the
builtin HTTP server on 127.0.0.1, port 0) running in a background thread under its own
``trio.run``; the test thread calls it over HTTP as schemathesis's CLI would. Before the
run it holds a little data (ERP orders of two tenants through the signed webhook, a
catalog, a quarantined event, an API token, a pack station ``A1`` with simulated scanner,
printer and NVR), and a third of the generated cases keep ``{tenant}`` = ``t1`` (an order
id that exists, the station ``A1``) so they reach the handlers' real paths, not only
their 404s.

Bounded: ``GATEWAY_SCHEMATHESIS_EXAMPLES`` examples per operation (default 60, about half a
minute); no shrinking (a failure prints its ``curl`` reproduction instead). Left out:
``GET /stations/{name}/events`` (an endless Server-Sent Events stream; its 404 is the same
code as ``/stations/{name}/view``'s) and ``POST /api/v1/admin/backup`` (it writes a backup
into whatever absolute directory a case names: tested in tests/appliance/test_backup.py).

By hand, against any running gateway::

    schemathesis run http://127.0.0.1:8080/api/v1/openapi.json \\
        -H "Authorization: Bearer $(cat data/api-token)" \\
        --checks not_a_server_error,status_code_conformance --max-examples 50 \\
        --exclude-path-regex "^/stations/.*/events$" --exclude-path /api/v1/admin/backup
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
import trio
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devices.simulators.nvr import NvrSimulator
from devices.simulators.printer import PrinterSimulator
from devices.simulators.scanner import TcpScannerServer
from gateway._daemon import serve_gateway
from gateway._server.openapi import OPENAPI_PATH, OPERATIONS
from gateway._server.tokens import create_token
from gateway._settings import load_settings
from tests._support import erp_event, signed, write_config
from tests._support.packline import line_config
from tests.server.test_catalog_api import CSV

EXAMPLES = int(os.environ.get("GATEWAY_SCHEMATHESIS_EXAMPLES", "60"))
SKIPPED = {"station_events", "admin_backup"}
ORDER = "douyin|DY00000001"
STARLETTE_PLAIN = (b"Not Found", b"Method Not Allowed")
#: Refusals of the builtin HTTP server (``gateway._server.h1_limits``) before any route runs:
#: a request line or headers over its limits. Not the API's answers: only "no 5xx" applies.
HTTP_LAYER = (414, 431)


def content_type(response: Any) -> str:
    value = response.headers.get("content-type") or ""
    return str(value[0] if isinstance(value, list) else value)  # schemathesis keeps a list per header


def http_layer(response: Any) -> bool:
    return response.status_code in HTTP_LAYER and content_type(response).startswith("text/plain")


@schemathesis.check
def api_error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """An error answer of the API (not a webhook's platform reply, not a page) is
    ``{"error": ..., "code": ...}``."""
    path = case.operation.path
    if response.status_code < 400 or path.startswith(("/webhooks/", "/stations", "/dashboard")):
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    if not (isinstance(body, dict) and isinstance(body.get("error"), str) and isinstance(body.get("code"), str)):
        raise AssertionError(f"{response.status_code} without error and code: {response.content[:200]!r}, "
                             f"{content_type(response)}")
    return True


def tolerant_content_type(ctx: Any, response: Any, case: Any) -> bool | None:
    """``content_type_conformance``, except Starlette's plain-text 404/405 (an unmatched
    path, e.g. an id with a newline, which ``{x:path}`` does not match) when the app has no
    JSON handler for them yet."""
    if response.status_code in (404, 405) and response.content in STARLETTE_PLAIN:
        return None
    return content_type_conformance(ctx, response, case)


@schemathesis.serializer("text/csv")
def _csv(ctx: Any, value: Any) -> dict[str, Any]:
    return {"data": value.encode() if isinstance(value, str) else str(value).encode()}


@dataclass
class Running:
    base: str
    auth: dict[str, str]


def _serve(tmp_path: Path, started: queue.Queue[Any], stop: threading.Event) -> None:
    """The daemon with one pack station (a TCP scanner, a ZPL printer and an NVR, the
    simulators of ``tests._support.packline``), until ``stop`` is set."""

    async def main() -> None:
        scanner, printer = TcpScannerServer(), PrinterSimulator()
        now = datetime.now(UTC)
        with NvrSimulator(clock_offset_s=0.0) as nvr:
            nvr.add_recording(1, now - timedelta(minutes=10), now + timedelta(minutes=30))
            async with trio.open_nursery() as nursery:
                scanner_port = await nursery.start(scanner.serve)
                printer_port = await nursery.start(printer.serve_tcp)
                config = write_config(tmp_path, line_config(scanner_port, printer_port, nvr))
                settings = load_settings(config)
                create_token(settings.tokens_path, "viewer-t1", "t1", "viewer", actor="test")
                shutdown = trio.Event()
                async with trio.open_nursery() as gateway:
                    services = await gateway.start(serve_gateway, settings, shutdown)
                    started.put(services)
                    await trio.to_thread.run_sync(stop.wait)
                    shutdown.set()
                nursery.cancel_scope.cancel()  # the simulators

    try:
        trio.run(main)
    except BaseException as exc:  # the test thread reports it instead of hanging
        started.put(exc)
        raise


def _seed(base: str, auth: dict[str, str]) -> None:
    with httpx.Client(base_url=base, timeout=10) as client:
        for tenant, first in (("t1", 1), ("t2", 11)):
            events = [erp_event(first), erp_event(first + 1, "PAID"), erp_event(first + 2, "SHIPPED")]
            body, headers = signed(events, tenant)
            assert client.post(f"/webhooks/erp/{tenant}", content=body, headers=headers).status_code == 200
        body, headers = signed([erp_event(99, "NO_SUCH_STATUS")], "t1")  # quarantined
        assert client.post("/webhooks/erp/t1", content=body, headers=headers).status_code == 200
        reply = client.post("/api/v1/tenants/t1/catalog?format=csv", content=CSV, headers=auth)
        assert reply.status_code == 200, reply.text


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp_path = tmp_path_factory.mktemp("schemathesis")
    started: queue.Queue[Any] = queue.Queue()
    stop = threading.Event()
    thread = threading.Thread(target=_serve, args=(tmp_path, started, stop), name="gateway", daemon=True)
    thread.start()
    services = started.get(timeout=30)
    if isinstance(services, BaseException):
        raise services
    bound = services.bound[0]
    base = bound if "://" in bound else f"http://{bound}"
    auth = {"Authorization": f"Bearer {services.api_token}"}
    try:
        _seed(base, auth)
        yield Running(base, auth)
    finally:
        stop.set()
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def schema(running: Running) -> Any:
    return schemathesis.openapi.from_url(running.base + OPENAPI_PATH, timeout=10)


@pytest.fixture(scope="module")
def checks(running: Running) -> list[Any]:
    """Strict checks once Starlette's own 404/405 answer JSON (``http.http_error_json``
    registered in ``app.py``); until then their plain text is tolerated, nothing else."""
    probe = requests.get(running.base + "/api/v1/no-such-route", timeout=10)
    strict = probe.headers.get("content-type", "").startswith("application/json")
    return [not_a_server_error, status_code_conformance, response_schema_conformance,
            content_type_conformance if strict else tolerant_content_type, api_error_shape if strict else lenient_error_shape]


def lenient_error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    if response.content in STARLETTE_PLAIN:
        return None
    return api_error_shape(ctx, response, case)


def _strategy(operation: Any) -> Any:
    """Valid and invalid cases, a third of them aimed at tenant t1's real data."""
    names = {p.name for p in operation.path_parameters}
    real = {name: value for name, value in (("tenant", "t1"), ("order_id", ORDER), ("name", "A1")) if name in names}
    strategies = [operation.as_strategy(GenerationMode.POSITIVE)]
    if real:
        strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=real))
    strategies.append(operation.as_strategy(GenerationMode.NEGATIVE))
    return st.one_of(strategies)


@pytest.mark.parametrize("operation_id", [o.operation_id for o in OPERATIONS if o.operation_id not in SKIPPED])
def test_no_operation_answers_a_server_error(running: Running, schema: Any, checks: list[Any],
                                            operation_id: str) -> None:
    operation = schema.find_operation_by_id(operation_id)
    session = requests.Session()

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=_strategy(operation))
    def call(case: Any) -> None:
        response = case.call(base_url=running.base, session=session, headers=running.auth, timeout=15)
        case.validate_response(response, checks=[not_a_server_error] if http_layer(response) else checks)

    try:
        call()
    finally:
        session.close()


ODD_NUMBERS = ("\u00b2", "\u0663", "9" * 40, "-1", "1e3", "0x10", " 1")


@pytest.mark.parametrize("operation", [o for o in OPERATIONS if o.operation_id not in SKIPPED
                                       and any(p.schema.get("type") == "integer" for p in o.params)],
                         ids=lambda o: o.operation_id)
def test_an_odd_number_in_a_query_is_never_a_server_error(running: Running, operation: Any) -> None:
    """Integer parameters given what ``str.isdigit`` accepts but ``int`` does not ("²",
    Arabic-Indic digits), 40 digits, signs and exponents: a 2xx or a 4xx, never a 5xx."""
    path = operation.path.replace("{tenant}", "t1").replace("{order_id}", ORDER)
    path = path.replace("{kind}", "hold").replace("{part}", "freshness").replace("{source}", "erp")
    for parameter in (p for p in operation.params if p.schema.get("type") == "integer"):
        for value in ODD_NUMBERS:
            reply = requests.request(operation.method, running.base + path, params={parameter.name: value},
                                     headers=running.auth, timeout=15)
            assert reply.status_code < 500, (operation.operation_id, parameter.name, value, reply.text[:200])


LISTS = {  # path: the answer's list field
    "/api/v1/tenants/t1/events": "items",
    "/api/v1/tenants/t1/quarantine": "items",
    "/api/v1/outbox/dead": "items",
    "/api/v1/tenants/t1/catalog": "products",
    "/api/v1/tenants/t1/labels": "labels",
    "/api/v1/tenants/t1/packline/plan": "items",
    "/api/v1/tenants/t1/anomalies": "items",
}


def _timeless(item: Any) -> Any:
    """An item without the figures that follow the clock (an anomaly's ``age_s`` grows between pages)."""
    return {k: v for k, v in item.items() if k != "age_s"} if isinstance(item, dict) else item


@pytest.mark.parametrize("path", list(LISTS))
def test_every_list_pages_by_cursor_to_the_same_items(running: Running, path: str) -> None:
    field = LISTS[path]
    whole = requests.get(running.base + path, params={"limit": 1000}, headers=running.auth, timeout=15).json()
    assert whole["next_cursor"] is None
    walked: list[Any] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = requests.get(running.base + path, params=params, headers=running.auth, timeout=15).json()
        walked.extend(page[field])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [_timeless(item) for item in walked] == [_timeless(item) for item in whole[field]]
    bad = requests.get(running.base + path, params={"cursor": "not-a-cursor"}, headers=running.auth, timeout=15)
    assert bad.status_code == 400 and bad.json()["code"] == "bad_cursor", bad.text


def test_the_event_log_pages_by_after_too_and_says_where_to_go_on(running: Running) -> None:
    path = running.base + "/api/v1/tenants/t1/events"
    whole = requests.get(path, headers=running.auth, timeout=15).json()["items"]
    assert len(whole) >= 3
    first = requests.get(path, params={"limit": 2}, headers=running.auth, timeout=15).json()
    assert first["next_after"] == whole[1]["seq"] and first["next_cursor"]
    rest = requests.get(path, params={"after": first["next_after"]}, headers=running.auth, timeout=15).json()
    assert first["items"] + rest["items"] == whole and rest["next_after"] is None
    other = requests.get(running.base + "/api/v1/tenants/t1/quarantine",
                         params={"cursor": first["next_cursor"]}, headers=running.auth, timeout=15)
    assert other.status_code == 400 and other.json()["code"] == "bad_cursor"  # a cursor of another list
