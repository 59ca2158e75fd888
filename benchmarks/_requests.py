"""The traffic every benchmark sends: signed ERP webhooks, as raw HTTP/1.1 requests.

``erp_events`` makes distinct ERP events (one order per buyer, consecutive events on
different orders, each order's statuses in ``FLOW``); ``post_request`` / ``signed_requests``
turn bodies into complete signed ``POST /webhooks/erp/bench`` requests (``X-Gateway-Timestamp``
and the HMAC signature of the ERP adapter, ``gateway._signing``); ``noop_request`` is the
``GET /livez`` the baselines send. The tenant, its secret and the shipped rules the gateways
under test use are here too.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gateway._signing import sign

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "config" / "rules"
TENANT = "bench"
SECRET = "bench-erp-secret-0123456789"
FLOW = ["PAID", "WAIT_AUDIT", "AUDITED", "PICKING"]


def erp_events(count: int, prefix: str, first_buyer: int, events_per_order: int = 4) -> list[dict[str, Any]]:
    """``count`` distinct ERP events; consecutive events belong to different orders.

    Order ``k`` belongs to buyer ``first_buyer + k``: one order per buyer, as in the store
    benchmark (so each new order costs one buyer-index look-up that finds nothing else).
    """
    orders = max(1, count // events_per_order)
    events = []
    for n in range(count):
        order = n % orders
        events.append({
            "event_id": f"{prefix}-{n:09d}",
            "platform": "douyin",
            "order_no": f"{prefix.upper()}{order:010d}",
            "status": FLOW[(n // orders) % len(FLOW)],
            "occurred_at": "2026-11-25T10:00:00+08:00",
            "buyer": {"phone": f"139{(first_buyer + order) % 10**8:08d}"},
            "amount": 129.0,
            "lines": [{"sku": "SKU-1", "qty": 1}, {"sku": "TRIAL-KIT", "qty": 1}],
        })
    return events


def post_request(port: int, body: bytes, timestamp: str) -> bytes:
    """A complete signed ``POST /webhooks/erp/bench`` request, ready for the socket."""
    head = (
        f"POST /webhooks/erp/{TENANT} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Gateway-Timestamp: {timestamp}\r\n"
        f"X-Gateway-Signature: {sign(SECRET.encode(), timestamp, body)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def signed_requests(port: int, bodies: list[bytes]) -> list[bytes]:
    timestamp = str(int(time.time()))
    return [post_request(port, body, timestamp) for body in bodies]


def noop_request(port: int) -> bytes:
    return f"GET /livez HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
