"""The HTTP surface: webhooks in, local API and metrics out (Starlette on the builtin HTTP/1.1 server, ``gateway._h1``).

Routes::

    GET  /livez                                     open: 200 while the process serves HTTP, no work
    GET  /healthz                                   open: liveness + store state, core, rule digest
    POST /webhooks/{source}/{tenant}                signed per source (see gateway.adapters)
    GET  /metrics                                   Prometheus text          (token)
    GET  /api/v1/rules                              live rule set, last reload error (token)
    POST /api/v1/rules/reload                       reload rule files now    (token)
    GET  /api/v1/tenants/{tenant}/orders/{order_id} order + its audit trail  (token)
    GET  /api/v1/tenants/{tenant}/quarantine        quarantined events       (token)
    POST /api/v1/tenants/{tenant}/quarantine/release  {"ids": [...]} | {"all": true}:
                                                    re-read under the live rules (token)
    GET  /api/v1/tenants/{tenant}/events?after=N&limit=M   the event log     (token)
    GET  /api/v1/tenants/{tenant}/audit/verify      check the audit hash chain (token)
    GET  /api/v1/channels                           outbound message channels (PDD WebSocket) (token)
    GET  /api/v1/outbox                             backlog, oldest age, last error (token)
    GET  /api/v1/outbox/dead?after=N&limit=M&tenant=T   dead letters with reasons (token)
    POST /api/v1/outbox/requeue  {"ids": [...]} | {"all": true}   dead letters back (token)
    POST /demo/upstream                             the demo's upstream ERP (demo only)

The local API wants ``Authorization: Bearer <token>`` (the token file is created at first
start, mode 0600; see ``[api] token_file``). Webhooks authenticate by their platform's
signature with the tenant's secret instead. Status codes of ``/webhooks``: 200 stored
durably (or a duplicate of something stored), 400 malformed, 401 signature / tenant /
allow-list, 404 unknown source, 413 body or batch too large, 503 backpressure or store
failure with ``Retry-After`` — on every non-2xx nothing was stored.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import core_ext
from gateway._addresses import Network, client_address, parse_networks
from gateway._demo import DEMO_UPSTREAM_PATH, demo_upstream_endpoint
from gateway._errors import (
    BackpressureError,
    IngestError,
    MalformedEventError,
    PayloadTooLargeError,
    StoreError,
)
from gateway._forwarder import Forwarder, outbox_report
from gateway._metrics import Metrics
from gateway._normalize import normalise_batch
from gateway._pipeline import Pipeline, now_ms
from gateway._quarantine import plan_release
from gateway._reload import RuleHolder
from gateway._settings import TENANT_NAME, Settings
from gateway._store import Store
from gateway.adapters import ADAPTERS, RawRequest, Reply

log = logging.getLogger(__name__)

Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class Services:
    """Everything the HTTP layer talks to; built by the daemon."""

    settings: Settings
    store: Store
    pipeline: Pipeline
    rules: RuleHolder
    metrics: Metrics
    api_token: str
    started_at: float = field(default_factory=time.time)
    bound: list[str] = field(default_factory=list)
    channels: list[Any] = field(default_factory=list)  # outbound message clients (PinduoduoClient)
    forwarder: Forwarder | None = None

    def outbox_report(self) -> dict[str, Any]:
        upstream = self.forwarder.settings.url if self.forwarder else self.settings.upstream.url
        return outbox_report(self.store, self.forwarder, upstream)


def load_or_create_token(path: Path) -> str:
    """The API token in ``path``; a new random one (mode 0600) when the file is missing."""
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(token + "\n", encoding="utf-8")
    log.info("created a new API token in %s", path)
    return token


_LIVE = b'{"status":"live"}'


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(data), status, headers, media_type="application/json")


def _reply(reply: Reply, headers: dict[str, str] | None = None) -> Response:
    return Response(reply.body, reply.status, headers, media_type=reply.content_type)


async def _read_body(request: Request, limit: int, declared: str | None) -> bytes:
    """The whole body, refused past ``limit`` bytes (by its ``declared`` Content-Length,
    before reading).

    Reads the ASGI messages directly (Starlette's ``stream()`` would wrap each in an async
    generator): the body is read once, here, for every webhook.

    Raises:
        PayloadTooLargeError: over ``limit``.
        MalformedEventError: the client left before the whole body arrived.
    """
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"body of {declared} bytes is over max_body_bytes={limit}")
    chunks: list[bytes] = []
    size = 0
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise MalformedEventError("the client left before the whole body arrived")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body is over max_body_bytes={limit}")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _headers(request: Request) -> dict[str, str]:
    """The request's headers, names lower-cased (ASGI gives them so); a repeated header
    keeps its last value."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in request.scope["headers"]}


def _raw_request(request: Request, headers: dict[str, str], body: bytes,
                 trusted_proxies: tuple[Network, ...]) -> RawRequest:
    """The adapters' view of ``request``: ``_headers``, the peer resolved through trusted
    proxies (``gateway._addresses``)."""
    scope = request.scope
    query = scope.get("query_string", b"")
    client = scope.get("client")
    peer = client[0] if client else ""
    if trusted_proxies:
        forwarded = [v.decode("latin-1") for n, v in scope["headers"] if n == b"x-forwarded-for"]
        peer = client_address(peer, ",".join(forwarded) or None, trusted_proxies)
    return RawRequest(headers=headers, body=body, query=dict(request.query_params) if query else {}, peer=peer)


def build_app(services: Services) -> Starlette:
    """The Starlette application bound to ``services``."""
    settings = services.settings
    metrics = services.metrics
    token = services.api_token.encode()
    trusted_proxies = parse_networks(settings.http.trusted_proxies)

    def protected(handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            given = request.headers.get("authorization", "")
            scheme, _, value = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token):
                return _json({"error": "missing or wrong API token"}, 401, {"WWW-Authenticate": "Bearer"})
            tenant = request.path_params.get("tenant")
            if tenant is not None and not TENANT_NAME.match(tenant):
                return _json({"error": "bad tenant name"}, 400)
            return await handler(request)

        return guarded

    async def healthz(request: Request) -> Response:
        live = services.rules.current
        store_error = services.pipeline.store_error
        return _json({
            "status": "ok" if store_error is None else "degraded",
            "store": "ok" if store_error is None else f"write failed, healing: {store_error}",
            "gateway_id": settings.gateway.id,
            "core": core_ext.IMPLEMENTATION,
            "rules": {"sources": sorted(live.sources), "digest": live.digest},
            "channels": {f"pinduoduo:{c.tenant}": c.stats.state for c in services.channels},
            "uptime_s": round(time.time() - services.started_at, 1),
        })

    async def livez(request: Request) -> Response:
        """For probes that poll often (load balancer, watchdog): answers without touching
        anything, so it also measures the HTTP stack's own ceiling (``benchmarks ingest``)."""
        return Response(_LIVE, media_type="application/json")

    async def webhook(request: Request) -> Response:
        source = request.path_params["source"]
        tenant = request.path_params["tenant"]
        adapter = ADAPTERS.get(source)
        rules = services.rules.current.get(source)
        if adapter is None or rules is None:
            metrics.refused.labels(source[:32], "unknown_source").inc()
            return _json({"ok": False, "error": f"unknown source {source!r}"}, 404)
        credentials = settings.credentials(tenant, source) if TENANT_NAME.match(tenant) else None
        if credentials is None:
            metrics.refused.labels(source, "unknown_tenant").inc()
            return _reply(adapter.failure(401, "unknown tenant for this source"))
        try:
            headers = _headers(request)
            body = await _read_body(request, settings.http.max_body_bytes, headers.get("content-length"))
            raw = _raw_request(request, headers, body, trusted_proxies)
            adapter.verify(raw, credentials, time.time())
            decoded = adapter.decode(raw)
            if len(decoded) > settings.http.max_events_per_request:
                raise PayloadTooLargeError(
                    f"{len(decoded)} events is over max_events_per_request={settings.http.max_events_per_request}")
            events = normalise_batch(rules, tenant, decoded, now_ms())
            report = await services.pipeline.submit(events)
        except IngestError as exc:
            reason = type(exc).__name__.removesuffix("Error").lower()
            metrics.refused.labels(source, reason).inc()
            log.info("refused %s webhook for tenant %s: %s", source, tenant, exc)
            return _reply(adapter.failure(exc.http_status, str(exc)))
        except BackpressureError as exc:
            metrics.refused.labels(source, "backpressure").inc()
            return _reply(adapter.failure(503, str(exc)), {"Retry-After": str(exc.retry_after_s)})
        except StoreError:
            metrics.refused.labels(source, "store").inc()
            return _reply(adapter.failure(503, "store unavailable"), {"Retry-After": "5"})
        return _reply(adapter.success({
            "accepted": len(report.results),
            "counts": report.counts(),
            "results": [r.to_dict() for r in report.results],
        }))

    reported = {"ok": 0, "failed": 0}

    async def metrics_endpoint(request: Request) -> Response:
        # Reloads happen in the poller, on SIGHUP and over the API: count them from the
        # holder's own tallies so every trigger is included exactly once.
        holder = services.rules
        for result, total in (("ok", holder.successes), ("failed", holder.failures)):
            if total > reported[result]:
                metrics.rules_reloads.labels(result).inc(total - reported[result])
                reported[result] = total
        metrics.rules_version.info({"digest": holder.current.digest})
        metrics.quarantined.set(services.store.quarantine_count())
        report = services.outbox_report()
        metrics.outbox_events.set(report["backlog_events"])
        metrics.outbox_bytes.set(report["backlog_bytes"])
        metrics.outbox_oldest_age.set(report["oldest_age_s"] or 0)
        metrics.dead_letters.set(report["dead_letters"])
        metrics.upstream_failures.set(report["consecutive_failures"])
        if report["last_success_at"]:
            metrics.upstream_last_success.set(report["last_success_at"])
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    async def rules_info(request: Request) -> Response:
        holder = services.rules
        live = holder.current
        return _json({
            "digest": live.digest,
            "sources": {name: {"version": r.version, "kind": r.kind, "statuses": len(r.status)}
                        for name, r in sorted(live.items())},
            "reloads_ok": holder.successes,
            "reloads_failed": holder.failures,
            "last_error": str(holder.last_error) if holder.last_error else None,
        })

    async def rules_reload(request: Request) -> Response:
        outcome = services.rules.reload()
        return _json({"ok": outcome.ok, "error": str(outcome.error) if outcome.error else None,
                      "digest": services.rules.current.digest}, 200 if outcome.ok else 422)

    async def order(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        order_id = request.path_params["order_id"]
        state = services.store.get_order(tenant, order_id)
        if state is None:
            return _json({"error": "no such order"}, 404)
        return _json({"order": state.to_dict(), "audit": list(services.store.iter_audit(tenant, order_id))})

    async def quarantine(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        limit = _int_param(request, "limit", 100)
        items = list(islice(services.store.iter_quarantine(tenant), limit))
        return _json({"count": services.store.quarantine_count(tenant), "items": items})

    async def quarantine_release(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        ids = await _ids_or_all(request)
        if isinstance(ids, Response):
            return ids
        release = await trio.to_thread.run_sync(
            plan_release, services.store, services.rules.current, tenant, ids, now_ms(),
            settings.http.max_events_per_request)
        try:
            report = await services.pipeline.submit(release.events)
        except BackpressureError as exc:
            return _json({"error": str(exc)}, 503, {"Retry-After": str(exc.retry_after_s)})
        results = [{"seq": e.release_of, **r.to_dict()} for e, r in zip(release.events, report.results, strict=True)]
        released = sum(1 for r in report.results if r.outcome != "quarantined")
        log.info("tenant %s: released %d quarantined events, %d stay", tenant, released,
                 len(release.kept) + len(results) - released)
        return _json({"released": released, "results": results, "kept": release.kept, "more": release.more,
                      "quarantined": services.store.quarantine_count(tenant)})

    async def events(request: Request) -> Response:
        tenant = request.path_params["tenant"]
        after = _int_param(request, "after", 0)
        limit = _int_param(request, "limit", 100)
        return _json({"items": list(islice(services.store.iter_events(tenant, after), limit))})

    async def audit_verify(request: Request) -> Response:
        result = services.store.verify_audit_chain(request.path_params["tenant"])
        return _json({"ok": result.ok, "records": result.records, "first_bad_seq": result.first_bad_seq,
                      "reason": result.reason}, 200 if result.ok else 409)

    async def channels(request: Request) -> Response:
        return _json({"channels": [{"source": "pinduoduo", "tenant": c.tenant, "endpoint": c.url_base,
                                    "client_id": c.client_id, **c.stats.report()} for c in services.channels]})

    async def outbox(request: Request) -> Response:
        return _json(services.outbox_report())

    async def outbox_dead(request: Request) -> Response:
        after = _int_param(request, "after", 0)
        limit = _int_param(request, "limit", 100)
        tenant = request.query_params.get("tenant")
        letters = services.store.iter_dead(after)
        if tenant:
            letters = (d for d in letters if d.get("event", {}).get("tenant") == tenant)
        return _json({"count": services.store.dead_count(), "items": list(islice(letters, limit))})

    async def outbox_requeue(request: Request) -> Response:
        ids = await _ids_or_all(request)
        if isinstance(ids, Response):
            return ids
        try:
            seqs = await trio.to_thread.run_sync(services.store.requeue_dead, ids)
        except StoreError as exc:
            return _json({"error": f"store: {exc}"}, 503, {"Retry-After": "5"})
        log.info("requeued %d dead letters through the API", len(seqs))
        return _json({"requeued": len(seqs), "outbox_seqs": seqs})

    routes = [
        Route("/livez", livez, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/webhooks/{source}/{tenant}", webhook, methods=["POST"]),
        Route("/metrics", protected(metrics_endpoint), methods=["GET"]),
        Route("/api/v1/rules", protected(rules_info), methods=["GET"]),
        Route("/api/v1/rules/reload", protected(rules_reload), methods=["POST"]),
        Route("/api/v1/tenants/{tenant}/orders/{order_id:path}", protected(order), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/quarantine", protected(quarantine), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/quarantine/release", protected(quarantine_release), methods=["POST"]),
        Route("/api/v1/tenants/{tenant}/events", protected(events), methods=["GET"]),
        Route("/api/v1/tenants/{tenant}/audit/verify", protected(audit_verify), methods=["GET"]),
        Route("/api/v1/channels", protected(channels), methods=["GET"]),
        Route("/api/v1/outbox", protected(outbox), methods=["GET"]),
        Route("/api/v1/outbox/dead", protected(outbox_dead), methods=["GET"]),
        Route("/api/v1/outbox/requeue", protected(outbox_requeue), methods=["POST"]),
    ]
    if settings.demo.enabled:
        routes.append(Route(DEMO_UPSTREAM_PATH, demo_upstream_endpoint(), methods=["POST"]))
    async def store_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("%s %s: store unavailable: %s", request.method, request.url.path, exc)
        return _json({"error": f"store unavailable: {exc}"}, 503, {"Retry-After": "5"})

    return Starlette(routes=routes, exception_handlers={StoreError: store_unavailable})


async def _ids_or_all(request: Request) -> list[int] | None | Response:
    """The ``{"ids": [positive ints]}`` (a list) or ``{"all": true}`` (``None``) of a request,
    or the 400 response for anything else."""
    try:
        body = orjson.loads(await _read_body(request, 1024 * 1024, request.headers.get("content-length")) or b"{}")
    except (orjson.JSONDecodeError, PayloadTooLargeError, MalformedEventError) as exc:
        return _json({"error": f"body must be JSON: {exc}"}, 400)
    ids = body.get("ids") if isinstance(body, dict) else None
    if isinstance(body, dict) and body.get("all") is True:
        return None
    if isinstance(ids, list) and ids and all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in ids):
        return ids
    return _json({"error": 'give {"ids": [positive ids]} or {"all": true}'}, 400)


def _int_param(request: Request, name: str, default: int) -> int:
    value = request.query_params.get(name, "")
    return int(value) if value.isdigit() else default


__all__ = ["Services", "build_app", "load_or_create_token"]
