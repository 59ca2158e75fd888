"""Which Pinduoduo message clients a configuration runs, and running them.

A Pinduoduo **channel** is one app's message WebSocket: a ``ws_url`` and the ``app_key``
(PDD's client_id) that signs its path. Every ``[tenants.T.pinduoduo]`` with both opens one;
a tenant with no ``ws_url`` takes PDD messages only as relayed webhooks. Tenants naming the
same channel (an ISV app that several shops authorised) share ONE connection: PDD sends
every shop's messages down the app's one socket, and a second connection with the same
client_id would compete for them. That shared client routes each message by ``mallID`` to
the tenant listing the shop in ``mall_ids`` (``gateway._ingest.pdd_ws``, "Several shops on one
app"); the settings make sure every sharing tenant lists its shops, none twice, with one app
secret (``gateway._settings.loader``).

``channels`` is the plan (pure); ``serve_pinduoduo_clients`` runs it for the daemon;
``serve_pinduoduo_client`` runs one tenant's client from plain arguments (tests, tools).
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass

import trio

from gateway._ingest.pdd_ws import SOURCE, PinduoduoClient
from gateway._metrics import Metrics
from gateway._pipeline import Pipeline
from gateway._rules import RuleHolder
from gateway._settings import Secret, Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Channel:
    """One message WebSocket to open.

    Attributes:
        label: the tenant, or the sharing tenants joined by ``+`` (``"t1+t2"``), in config order.
        client_id: the app's client_id (the tenants' ``app_key``).
        ws_url: the endpoint, without a trailing ``/``.
        secret: the app's client_secret.
        routes: ``{mallID (text): tenant}`` from the tenants' ``mall_ids``; empty when one
            tenant has the channel and lists no shops (every message is its own).
    """

    label: str
    client_id: str
    ws_url: str
    secret: Secret
    routes: dict[str, str]


def channels(settings: Settings) -> list[Channel]:
    """The channels ``settings`` configure, tenants sorted by name within and across them."""
    grouped: dict[tuple[str, str], list[tuple[str, Secret, tuple[str, ...]]]] = {}
    for tenant, sources in sorted(settings.tenants.items()):
        credentials = sources.get(SOURCE)
        if credentials is None or not credentials.app_key or not credentials.ws_url:
            continue
        grouped.setdefault((credentials.ws_url.rstrip("/"), credentials.app_key), []).append(
            (tenant, credentials.secret, credentials.mall_ids))
    return [
        Channel("+".join(tenant for tenant, _, _ in members), client_id, ws_url, members[0][1],
                {mall: tenant for tenant, _, malls in members for mall in malls})
        for (ws_url, client_id), members in grouped.items()
    ]


async def serve_pinduoduo_client(
    url_base: str, tenant: str, client_id: str, secret: Secret, rules: RuleHolder, pipeline: Pipeline,
    metrics: Metrics | None, *, backoff_initial_s: float = 1.0, backoff_max_s: float = 60.0,
    heartbeat_interval_s: float = 5.0, ping_timeout_s: float = 20.0, connect_timeout_s: float = 20.0,
    ssl_context: ssl.SSLContext | None = None,
    task_status: trio.TaskStatus[PinduoduoClient] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run one tenant's Pinduoduo message client until cancelled.

    Args: as ``PinduoduoClient``.
        task_status: ``started(client)`` at once (before the first connection attempt).

    Raises:
        ValueError: ``client_id`` is empty or the backoff values are inconsistent.

    Network failures never raise: they are logged and retried (``gateway._ingest.pdd_ws``).
    """
    client = PinduoduoClient(
        url_base, tenant, client_id, secret, rules, pipeline, metrics, backoff_initial_s=backoff_initial_s,
        backoff_max_s=backoff_max_s, heartbeat_interval_s=heartbeat_interval_s, ping_timeout_s=ping_timeout_s,
        connect_timeout_s=connect_timeout_s, ssl_context=ssl_context,
    )
    await client.serve(task_status=task_status)


async def serve_pinduoduo_clients(
    settings: Settings, rules: RuleHolder, pipeline: Pipeline, metrics: Metrics | None,
    shutdown: trio.Event | None = None, *,
    task_status: trio.TaskStatus[list[PinduoduoClient]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """One message client per channel that ``settings`` configure (``channels``).

    The WebSocket is opt-in: ``ws_url = ""`` (the default) means relay webhooks only. The
    settings refuse a ``ws_url`` without an ``app_key`` (PDD's client_id signs the path).

    Args:
        settings: the daemon settings.
        rules / pipeline / metrics: as for ``PinduoduoClient``.
        shutdown: when set, the clients are closed and this returns (``None``: run until
            cancelled).
        task_status: ``started(clients)`` at once, with the clients being started (maybe none).

    Cancellation: closes every client's WebSocket (see ``gateway._ingest.pdd_ws``).
    """
    for tenant, sources in sorted(settings.tenants.items()):
        credentials = sources.get(SOURCE)
        if credentials is not None and not (credentials.app_key and credentials.ws_url):
            log.info("tenant %s: pinduoduo has no ws_url; no message WebSocket (webhook relay only)", tenant)
    async with trio.open_nursery() as nursery:
        clients: list[PinduoduoClient] = []
        for channel in channels(settings):
            client = PinduoduoClient(channel.ws_url, channel.label, channel.client_id, channel.secret, rules,
                                     pipeline, metrics, mall_routes=channel.routes)
            clients.append(await nursery.start(client.serve))
        task_status.started(clients)
        if not clients:
            return
        if shutdown is not None:
            await shutdown.wait()
            log.info("closing %d pinduoduo message client(s)", len(clients))
            nursery.cancel_scope.cancel()


__all__ = ["Channel", "channels", "serve_pinduoduo_client", "serve_pinduoduo_clients"]
