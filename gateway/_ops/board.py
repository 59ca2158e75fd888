"""The anomaly board of a tenant: every kind gathered from where the store keeps it, and the
acknowledgements (who, when) kept durably beside them.

Where each kind comes from::

    unshipped_24h, status_disagrees,   the orders (gateway._ops.scan: one pass)
    held (status ON_HOLD),
    repeat_order_72h                   the open orders with a buyer, and the buyer index
    quarantined                        Store.iter_quarantine(tenant)
    dead_letter                        Store.iter_dead(), the tenant's letters
    waybill_timeout                    pack-line "parcel" records without a waybill, packed
                                       at least [packline] waybill_timeout_s ago
    intercept                          pack-line "intercept" records whose order is still
                                       refunded or cancelled (the watch list)
    gift_shortfall                     pack-line "plan" records with shortfalls, while no
                                       parcel was packed and an order of the group is open
    held (pack line)                   pack-line "hold" records, same condition; a gift-stock
                                       hold (STOP_NO_STOCK) is shown as gift_shortfall only
    declaration_incomplete             "customs_hold" records (gateway._customs: a cross-border
                                       order whose declaration is incomplete, seen when it
                                       became ready to pack or at the station) with no
                                       "declaration" record forwarded since, order still open

The pack line never deletes its ``plan``, ``hold`` and ``intercept`` records, so a condition
ends when the orders say so (packed, shipped, withdrawn), as above.

**Acknowledgements** are pack-line-keyspace records of kind ``anomaly_ack`` (id: the anomaly's
id; value ``{"anomaly_id", "kind", "order_id", "by", "at_ms"}``), written with an audit record
(decision ``anomaly_ack``, actor ``api:<by>``) in one batch: ``ack_write``. Acknowledging again
records the latest person and time; the audit trail keeps every one. An acknowledgement stays
after its condition ended and applies again if the same condition comes back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway._customs import DECLARATION
from gateway._customs import HOLD as CUSTOMS_HOLD
from gateway._model import Status
from gateway._ops import anomalies as build
from gateway._ops.anomalies import Anomaly
from gateway._ops.judge import PREPARING, WITHDRAWN
from gateway._ops.settings import BoardSettings
from gateway._store import StepWrite, Store

ACK_KIND = "anomaly_ack"
_OPEN = PREPARING | {Status.ON_HOLD}


def record_anomalies(store: Store, tenant: str, board: BoardSettings, now_ms: int) -> list[Anomaly]:
    """The kinds read from records: quarantine, dead letters and the pack line's. Blocking."""
    found = [build.quarantined(tenant, record) for record in store.iter_quarantine(tenant)]
    found.extend(build.dead_letter(tenant, letter) for letter in store.iter_dead()
                 if (letter.get("event") or {}).get("tenant") == tenant)
    timeout_ms = board.waybill_timeout_s * 1000
    packed: set[str] = set()
    for _, group_id, parcel in store.iter_records("parcel", tenant):
        packed.add(group_id)
        if not parcel.get("waybill") and now_ms - int(parcel.get("packed_at_ms") or 0) >= timeout_ms:
            found.append(build.waybill_timeout(tenant, group_id, parcel, now_ms))
    for _, _, record in store.iter_records("intercept", tenant):
        order = store.get_order(tenant, str(record.get("order_id", "")))
        if order is not None and order.status in WITHDRAWN:
            found.append(build.intercept(tenant, record))
    for _, group_id, plan in store.iter_records("plan", tenant):
        if plan.get("shortfalls") and group_id not in packed and _still_open(store, tenant, plan.get("orders")):
            found.append(build.gift_shortfall(tenant, group_id, plan))
    for _, group_id, hold in store.iter_records("hold", tenant):
        if hold.get("reason") == "STOP_NO_STOCK" or group_id in packed:
            continue
        if _still_open(store, tenant, hold.get("orders")):
            found.append(build.held_group(tenant, group_id, hold))
    for _, order_id, hold in store.iter_records(CUSTOMS_HOLD, tenant):
        done = store.get_record(tenant, DECLARATION, order_id)
        if (done is None or int(done.get("at_ms") or 0) < int(hold.get("at_ms") or 0)) and _still_open(
                store, tenant, [order_id]):
            found.append(build.declaration_incomplete(tenant, hold))
    return found


def _still_open(store: Store, tenant: str, order_ids: Any) -> bool:
    """Whether an order of the group still waits to be packed (not shipped, not withdrawn)."""
    for order_id in order_ids or ():
        order = store.get_order(tenant, str(order_id))
        if order is not None and order.status in _OPEN:
            return True
    return False


def sort_board(anomalies: Iterable[Anomaly]) -> list[Anomaly]:
    """Oldest first, then by id (the order the cursor walks); duplicates of an id dropped."""
    seen: dict[str, Anomaly] = {}
    for anomaly in anomalies:
        seen.setdefault(anomaly.anomaly_id, anomaly)
    return sorted(seen.values(), key=lambda a: a.sort_key)


def read_acks(store: Store, tenant: str) -> dict[str, dict[str, Any]]:
    """``{anomaly_id: ack record}`` of a tenant. Blocking (one prefix scan; acks are few)."""
    return {record_id: value for _, record_id, value in store.iter_records(ACK_KIND, tenant)}


def ack_write(anomaly: Anomaly, by: str, at_ms: int) -> StepWrite:
    """What acknowledging ``anomaly`` commits: the ack record and its audit record. Pure.

    Args:
        anomaly: the anomaly acknowledged (its id, kind and order are recorded).
        by: who (the person's name as the API received it; the token's name once tokens are
            named: issue 14 part 1).
        at_ms: when (epoch ms).
    """
    record = {"anomaly_id": anomaly.anomaly_id, "kind": anomaly.kind, "order_id": anomaly.order_id,
              "by": by, "at_ms": at_ms}
    audit = {"tenant": anomaly.tenant, "at_ms": at_ms, "actor": f"api:{by}", "source": "ops", "event_id": "",
             "rule": "", "order_id": anomaly.order_id, "decision": ACK_KIND, "changes": [],
             "note": f"acknowledged {anomaly.anomaly_id}: {anomaly.reason_en}"}
    return StepWrite(audit=[audit], records=[(anomaly.tenant, ACK_KIND, anomaly.anomaly_id, record)])


__all__ = ["ACK_KIND", "ack_write", "read_acks", "record_anomalies", "sort_board"]
