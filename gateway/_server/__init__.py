"""The server: the gateway's HTTP face, one HTTP/1.1 server on trio, routes by audience.

In: TCP connections on ``[http] host:port`` (webhooks from the internet, usually through a
reverse proxy; the local API, probes and Prometheus from the site network).
Out: ASGI requests dispatched to the Starlette routes: ``webhooks`` (verified, normalised and
submitted to the pipeline), ``api`` (the local API over the store, the rules, the outbox),
``health`` (``/livez``, ``/healthz``, ``/metrics``).

Parts: ``h1`` (the accept loop, connection limit and eviction, graceful shutdown),
``h1_connection`` (one connection: framing by httptools/llhttp, limits and timeouts, ASGI),
``h1_request`` (one request's ASGI side), ``h1_limits`` (the limits and the RFC 9112 rules
llhttp leaves to the server, pure), ``h1_framing`` (response heads and chunks, pure), ``http`` (shared helpers: JSON replies, bounded body
reads, the bearer-token guard), ``services`` (what the routes talk to), ``app`` (the
application).
"""

from gateway._server.app import build_app
from gateway._server.h1 import ServerSettings, serve_http1
from gateway._server.services import Services, load_or_create_token

__all__ = ["ServerSettings", "Services", "build_app", "load_or_create_token", "serve_http1"]
