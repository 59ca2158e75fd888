"""Probes and metrics: ``/livez``, ``/healthz`` (open) and ``/metrics`` (a ``viewer`` token of
tenant ``*``: the figures are every tenant's)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import core_ext
from gateway._server.http import Protect, json_response
from gateway._server.services import Services

_LIVE = b'{"status":"live"}'


def probe_routes(services: Services) -> list[Route]:
    """``/livez`` and ``/healthz`` (open) bound to ``services``."""
    settings = services.settings

    async def healthz(request: Request) -> Response:
        live = services.rules.current
        store_error = services.pipeline.store_error
        return json_response({
            "status": "ok" if store_error is None else "degraded",
            "store": "ok" if store_error is None else f"write failed, healing: {store_error}",
            "gateway_id": settings.gateway.id,
            "core": core_ext.IMPLEMENTATION,
            "rules": {"sources": sorted(live.sources), "digest": live.digest},
            "channels": {f"pinduoduo:{c.tenant}": c.stats.state for c in services.channels},
            "devices": services.devices.summary(),
            "uptime_s": round(time.time() - services.started_at, 1),
        })

    async def livez(request: Request) -> Response:
        """For probes that poll often (load balancer, watchdog): answers without touching
        anything, so it also measures the HTTP stack's own ceiling (``benchmarks ingest``)."""
        return Response(_LIVE, media_type="application/json")

    return [Route("/livez", livez, methods=["GET"]), Route("/healthz", healthz, methods=["GET"])]


def metrics_routes(services: Services, protected: Protect) -> list[Route]:
    """The token-protected ``/metrics`` (Prometheus text) bound to ``services``."""
    metrics = services.metrics
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
        for device in services.devices:
            labels = (device.station, device.device, device.kind)
            metrics.device_up.labels(*labels).set(1 if device.state == "up" else 0)
            metrics.device_reconnects.labels(*labels).set(device.reconnects)
            metrics.device_events.labels(*labels).set(device.events)
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return [Route("/metrics", protected(metrics_endpoint, "viewer"), methods=["GET"])]


__all__ = ["metrics_routes", "probe_routes"]
