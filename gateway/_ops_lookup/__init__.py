"""After-sales lookup: a buyer's orders with each component's status and its video proof.

In: a phone number, an order id, a waybill or a buyer nick (and a keyword); an order id for
a packing proof. Reads only: the store's orders, buyer and waybill indexes, audit trail and
the pack line's records (sessions, parcels, plans, evidence, catalog entries); the
snapshot files the evidence names.
Out: ``BuyerLookup`` (the buyer's orders of the last 30 days across every channel, newest
first, each component's status in words, e.g. "试用装 已随 SF123 发出 / trial kit shipped
with SF123", with the clip at the second each unit was scanned and the snapshot at close);
``PackingProof`` and its renderings (a self-contained HTML page, a PNG), stamped with the
order's latest audit hash.

Parts: ``values`` (the value types), ``texts`` (states and keywords in zh-CN and English),
``records`` (the pack line's records of one order, by point gets and selective prefixes),
``components`` (each component's state and scans, pure), ``lookup`` (``find_buyer``),
``proof`` (``proof_data``, ``proof_html``), ``proof_image`` (``proof_png``, Pillow).
Every read blocks: the HTTP routes (``gateway._server.lookup_api``) call them in a worker
thread. This stage sits between the pack line and the server: it imports the store, the
pack line's value types and bill, never the server.
"""

from gateway._ops_lookup.lookup import WINDOW_DAYS, LookupInputError, find_buyer
from gateway._ops_lookup.proof import AuditStamp, PackingProof, load_snapshot, proof_data, proof_html
from gateway._ops_lookup.proof_image import RendererMissingError, proof_png
from gateway._ops_lookup.values import BuyerLookup, ComponentView, OrderView, ScanProof, SessionRef

__all__ = [
    "WINDOW_DAYS",
    "AuditStamp",
    "BuyerLookup",
    "ComponentView",
    "LookupInputError",
    "OrderView",
    "PackingProof",
    "RendererMissingError",
    "ScanProof",
    "SessionRef",
    "find_buyer",
    "load_snapshot",
    "proof_data",
    "proof_html",
    "proof_png",
]
