"""Wiring of the daemon: one trio process, a lifespan nursery around a serving nursery.

Start-up order: load and validate rules (a broken rule set refuses to start, naming file,
line and key), open the store, start the committer, the Pinduoduo message clients (one
outbound WebSocket per tenant that configures one), then the HTTP server, then the
forwarder, the demo's simulated devices, the pack line's devices (a device missing at start
is reported down and waited for; it never holds the gateway up) and the helpers (rule
watcher, demo feeder). ``task_status.started`` reports
the bound addresses.

Shutdown (SIGINT/SIGTERM or ``shutdown.set()``): the HTTP server stops accepting and gives
in-flight requests ``shutdown_grace_s``; then the committer drains every submission it
has already taken (each is committed and acknowledged); then the forwarder gets up to
``shutdown_grace_s`` more to flush the outbox, then stops after the POST in flight (at most
``[upstream] timeout_s``) having deleted all it delivered, so the next start re-sends
nothing acknowledged (what it could not send stays in the outbox); then the helpers are
cancelled; the store is closed last.

Demo upstream: with ``[demo] enabled`` and no ``[upstream] url``, the gateway forwards to
its own ``/demo/upstream`` route (signed with a fixed demo secret), which verifies each
batch and logs it, so ``make run`` shows the whole path from webhook to ERP.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import signal
import time
from functools import partial

import trio
from starlette.routing import Route

import core_ext
from gateway._appliance.retention import serve_retention
from gateway._customs import load_customs
from gateway._demo import (
    DEMO_UPSTREAM_PATH,
    DEMO_UPSTREAM_SECRET,
    demo_upstream_endpoint,
    serve_demo_devices,
    serve_demo_feeder,
)
from gateway._forward import Forwarder, open_forwarder
from gateway._ingest import serve_pinduoduo_clients
from gateway._metrics import Metrics
from gateway._ops import BoardSettings, OpsMetrics, OpsState, serve_ops
from gateway._packline import serve_pack_line
from gateway._pipeline import Pipeline, apply_buyer_salt
from gateway._rules import RuleHolder, watch_rules, watch_sighup
from gateway._server import ServerSettings, Services, build_app, load_or_create_token, serve_http1
from gateway._settings import Secret, Settings, UpstreamSection
from gateway._store import StepWrite, Store, check_at_start, open_store, store_settings

log = logging.getLogger("gateway")


def tune_gc() -> None:
    """Relax the cyclic garbage collector for a long-running ingest process.

    The hot-order cache holds hundreds of thousands of small dicts; with the default
    thresholds (700 allocations) the collector walks them constantly. Measured with
    ``python -m benchmarks store``: ~1.5x faster ingest with these thresholds. Nothing the
    gateway builds forms reference cycles on the hot path, so memory stays bounded.
    """
    gc.set_threshold(100_000, 50, 100)


#: Open files the gateway needs beyond its client sockets (RocksDB's tables and WAL, logs,
#: the forwarder's and Pinduoduo's sockets), with room to spare.
FILES_BESIDES_CONNECTIONS = 1024


def raise_open_files_limit(max_connections: int) -> int:
    """Raise the soft ``RLIMIT_NOFILE`` towards the hard limit when it is too low for
    ``max_connections`` client sockets plus ``FILES_BESIDES_CONNECTIONS``.

    Many systems start services with a soft limit of 1,024: at ``[http] max_connections``
    (1,000) the accept loop and RocksDB would then compete for the last descriptors. The
    limit is raised only as far as needed (at most to the hard limit); when even the hard
    limit is too low a warning says what to set (``LimitNOFILE=`` in the systemd unit).

    Returns:
        The soft limit now in force.
    """
    import resource

    needed = max_connections + FILES_BESIDES_CONNECTIONS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            log.info("open files limit raised from %d to %d ([http] max_connections = %d)", soft, target,
                     max_connections)
            soft = target
        if soft < needed:
            log.warning("open files limit is %d, below the %d that [http] max_connections = %d needs: raise "
                        "the hard limit (LimitNOFILE= in the systemd unit) or lower max_connections", soft,
                        needed, max_connections)
    return int(soft)


def _upstream_settings(settings: Settings, bound: str) -> UpstreamSection:
    """``[upstream]``, or the demo's own upstream route when the demo runs without one."""
    upstream = settings.upstream
    if upstream.kind == "nats" or upstream.url or not settings.demo.enabled:
        return upstream
    base = bound if "://" in bound else f"http://{bound}"
    return dataclasses.replace(upstream, url=base + DEMO_UPSTREAM_PATH, secret=Secret(DEMO_UPSTREAM_SECRET))


async def _serve_http(
    services: Services, shutdown: trio.Event, *, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED
) -> None:
    http = services.settings.http
    extra = [Route(DEMO_UPSTREAM_PATH, demo_upstream_endpoint(), methods=["POST"])] if services.settings.demo.enabled else []
    app = build_app(services, extra)
    try:
        server_settings = ServerSettings(
            keep_alive_timeout_s=http.keep_alive_timeout_s, request_timeout_s=http.request_timeout_s,
            max_connections=http.max_connections, graceful_timeout_s=http.shutdown_grace_s,
            access_log=http.access_log)
        async def stop_serving() -> None:
            await shutdown.wait()
            services.display.close()  # the station screens' event streams end, not hold the grace period

        await serve_http1(app, [(http.host, http.port)], shutdown_trigger=stop_serving,
                          settings=server_settings, task_status=task_status)
    finally:
        services.pipeline.close()


def _ops_state(settings: Settings, store: Store, pipeline: Pipeline, holder: RuleHolder, metrics: Metrics) -> OpsState:
    """The anomaly board and the OCI (``gateway._ops``): acknowledgements and trend records go
    through the one committer; the gauges are on ``/metrics``."""

    async def commit(write: StepWrite) -> object:
        return await pipeline.submit([], "webhook", extra=write)

    return OpsState(store, lambda: holder.current, settings.oci,
                    BoardSettings(waybill_timeout_s=settings.packline.waybill_timeout_s), commit=commit,
                    metrics=OpsMetrics(metrics.registry))


def _open_checked_store(settings: Settings, accept_damaged: bool) -> Store:
    """The store, opened and checked before anything is served (``gateway._store.check``)."""
    store = open_store(store_settings(settings), accept_damage=accept_damaged)
    try:
        problems = check_at_start(store)
    except BaseException:
        store.close()
        raise
    for problem in problems:
        log.error("%s%s", "ACCEPTED by --accept-damaged-store: " if accept_damaged else "", problem)
    if problems and not accept_damaged:
        store.close()
        raise problems[0]
    return store


def _start_fleet_heartbeat(nursery: trio.Nursery, services: Services, forwarder: Forwarder) -> None:
    """With the NATS sink: this box's heartbeat into the fleet's bucket (``gateway._fleet``)."""
    from gateway import __version__
    from gateway._fleet import Heartbeat, HeartbeatPublisher, heartbeat_of, serve_heartbeat
    from gateway._forward.nats_sink import NatsSink  # nats-py loads only for the fleet

    upstream = services.settings.upstream
    if upstream.kind != "nats" or not upstream.nats.heartbeat_bucket or not isinstance(forwarder.sink, NatsSink):
        return

    interval_s = upstream.nats.heartbeat_interval_s

    def snapshot() -> Heartbeat:
        ops = services.ops
        oci = {tenant: report.oci.score for tenant, report in ops.reports.items()} if ops and ops.reports else None
        return heartbeat_of(services.settings.gateway.id, interval_s, services.outbox_report(),
                            services.devices.report(), oci, __version__, time.time())

    log.info("fleet heartbeat every %g s into bucket %s", interval_s, upstream.nats.heartbeat_bucket)
    nursery.start_soon(serve_heartbeat, HeartbeatPublisher(forwarder.sink, upstream.nats), snapshot, interval_s)


async def serve_gateway(
    settings: Settings,
    shutdown: trio.Event | None = None,
    *,
    accept_damaged_store: bool = False,
    task_status: trio.TaskStatus[Services] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the gateway until ``shutdown`` is set.

    Args:
        settings: the validated settings.
        shutdown: set it to stop gracefully (``run_gateway`` sets it on SIGINT/SIGTERM).
        accept_damaged_store: serve even though the store failed its checks (``gateway run
            --accept-damaged-store``); each problem is logged as an error.
        task_status: receives the ``Services`` (with ``services.bound`` addresses) once the
            HTTP server listens.

    Raises:
        ConfigError: the rule files or the customs files are invalid.
        StoreDamagedError: the store failed its checks (``gateway._store.check``) and
            ``accept_damaged_store`` is not set: nothing is served.
        StoreError: the store cannot be opened (e.g. locked by another process).
    """
    if shutdown is None:
        shutdown = trio.Event()
    holder = RuleHolder(settings.rules_path)
    customs = load_customs(settings.customs_path)  # a broken file stops the start: file:line: key
    metrics = Metrics()
    metrics.core.labels(core_ext.IMPLEMENTATION).set(1)
    metrics.rules_version.info({"digest": holder.current.digest})
    store = _open_checked_store(settings, accept_damaged_store)
    try:
        log.info("buyer keys: %s (%s)", apply_buyer_salt(settings, store), settings.buyer_salt_path)
        pipeline = Pipeline(store, settings.pipeline, metrics, rules=lambda: holder.current)
        services = Services(
            settings=settings, store=store, pipeline=pipeline, rules=holder, metrics=metrics,
            api_token=load_or_create_token(settings.token_path), customs=customs,
        )
        log.info("core implementation: %s", core_ext.IMPLEMENTATION)
        log.info("rules: %s sources from %s (digest %s)", len(holder.current.sources),
                 settings.rules_path, holder.current.digest)
        log.info("store: %s (sync=%s)", store.settings.path, store.settings.sync)
        async with trio.open_nursery() as lifespan:
            async with trio.open_nursery() as serving:
                await serving.start(pipeline.serve)
                services.channels = await serving.start(serve_pinduoduo_clients, settings, holder, pipeline,
                                                        metrics, shutdown)
                binds = await serving.start(_serve_http, services, shutdown)
                services.bound = list(binds)
                log.info("listening on %s; API token in %s", ", ".join(binds), settings.token_path)
                log.info("operators' dashboard: %s/dashboard (sign in with the API token)", binds[0])
                upstream = _upstream_settings(settings, binds[0])
                forwarder = open_forwarder(store, upstream, settings.gateway.id, metrics)
                services.forwarder = forwarder
                if forwarder is not None:
                    log.info("forwarding the outbox to %s (%d events waiting)", forwarder.where,
                             store.outbox_stats().count)
                    lifespan.start_soon(forwarder.serve)
                    _start_fleet_heartbeat(lifespan, services, forwarder)
                else:
                    log.warning("no [upstream] url: forwarding is off, the outbox fills up to its bound")
                lifespan.start_soon(serve_retention, store, settings.store.retention_days)
                if settings.gateway.rules_poll_s > 0:
                    lifespan.start_soon(partial(watch_rules, holder, settings.gateway.rules_poll_s))
                if settings.demo.enabled and settings.demo.devices:
                    await lifespan.start(serve_demo_devices, settings)
                services.ops = _ops_state(settings, store, pipeline, holder, metrics)
                await lifespan.start(serve_ops, services.ops)
                if settings.stations:
                    services.packline = await lifespan.start(
                        partial(serve_pack_line, settings, services.devices, store, pipeline, lambda: holder.current,
                                services.display, metrics, customs=customs))
                if settings.demo.enabled:
                    lifespan.start_soon(serve_demo_feeder, settings, binds[0])
                task_status.started(services)
            forwarder = services.forwarder
            if forwarder is not None:
                with trio.move_on_after(settings.http.shutdown_grace_s):
                    await forwarder.wait_flushed()
                forwarder.request_stop()  # the POST in flight finishes, acknowledged records are deleted
                with trio.move_on_after(forwarder.settings.timeout_s + 1):
                    await forwarder.stopped.wait()
                log.info("forwarder stopped; %d events stay in the outbox for the next start",
                         store.outbox_stats().count)
            lifespan.cancel_scope.cancel()
    finally:
        store.close()
        log.info("store closed; gateway stopped")


async def run_gateway(settings: Settings, *, accept_damaged_store: bool = False) -> None:
    """``serve_gateway`` with SIGINT/SIGTERM -> graceful shutdown and SIGHUP -> rule reload.

    A second SIGINT during the graceful shutdown stops at once (the default handler is
    back by then); committed data is safe either way, only unacknowledged requests are cut.
    """
    shutdown = trio.Event()
    tune_gc()
    raise_open_files_limit(settings.http.max_connections)

    async def on_signals() -> None:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                log.info("%s received: shutting down gracefully", signal.Signals(signum).name)
                shutdown.set()
                return

    async with trio.open_nursery() as helpers:
        helpers.start_soon(on_signals)
        async with trio.open_nursery() as main:
            services: Services = await main.start(partial(serve_gateway, settings, shutdown,
                                                          accept_damaged_store=accept_damaged_store))
            helpers.start_soon(watch_sighup, services.rules)
        helpers.cancel_scope.cancel()
