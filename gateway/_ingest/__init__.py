"""Ingest: what the platforms, carriers and the ERP send, verified and unwrapped.

In: raw HTTP requests (headers, body bytes, query, peer) on ``/webhooks/{source}/{tenant}``,
and frames of the Pinduoduo message WebSocket the gateway opens itself.
Out: decoded event dicts (``Adapter.decode``) for the rules to normalise, and the
platform's own reply (``Adapter.success`` / ``failure``). A request whose signature, replay
window or allow-list fails is refused before anything is decoded.

Parts: ``adapters`` (one module per source: signature rule, envelope, reply; the module
docstrings are the reference), ``pdd_ws`` (the WebSocket client: heartbeat, ack after the
commit, reconnect), ``pdd_commit`` (its commit side: frames -> durable events -> acks,
``ClientStats``), ``pdd_inbound`` (frames -> events, shop routing; pure),
``pdd_clients`` (which clients a configuration runs).
"""

from gateway._ingest.adapters import ADAPTERS, Adapter, RawRequest, Reply
from gateway._ingest.pdd_clients import serve_pinduoduo_clients
from gateway._ingest.pdd_ws import PinduoduoClient

__all__ = ["ADAPTERS", "Adapter", "PinduoduoClient", "RawRequest", "Reply", "serve_pinduoduo_clients"]
