"""Normalise decoded source events into ``Event`` values, through a source's mapping rules.

This is the stage between the adapters (which verify signatures and unwrap each
platform's envelope into plain decoded dicts) and the processing step. It calls the
accelerated core once per batch (``core_ext.process_batch``: fingerprint, buyer-group key,
status lookup) and then reads the remaining rule fields (time, waybill, type, data).

A batch is all-or-nothing at this stage: an event without an event id, or without both an
order id and a waybill, cannot be de-duplicated or attached to an order, so the whole batch
is refused with ``MalformedEventError`` naming every bad index; the sender fixes and resends
and nothing half-accepted exists. An *unknown or missing status* is not malformed: the event
is accepted and quarantined by the processing step (kept, visible, never dropped).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import core_ext
from gateway._errors import MalformedEventError
from gateway._model import Event
from gateway._rules.mapping import SourceRules, parse_occurred_at
from gateway._rules.privacy import alias_keys, alias_paths, redact_identities, redacted_paths


def get_path(obj: Any, parts: Sequence[str]) -> Any:
    """The raw value at a pre-split dotted path (digit parts index lists), or ``None``."""
    for part in parts:
        if isinstance(obj, dict):
            obj = obj.get(part)
        elif isinstance(obj, list) and part.isdigit():
            index = int(part)
            obj = obj[index] if index < len(obj) else None
        else:
            return None
        if obj is None:
            return None
    return obj


def normalise_batch(
    rules: SourceRules, tenant: str, raw_events: list[Any], received_at_ms: int
) -> list[Event]:
    """Turn decoded events of one source and tenant into ``Event`` values.

    Args:
        rules: the source's live mapping rules.
        tenant: the tenant the request was authenticated for.
        raw_events: decoded JSON objects, one per event, as the adapter unwrapped them.
        received_at_ms: the gateway's receive time.

    Returns:
        One ``Event`` per input, in order; each keeps its decoded input as ``raw`` so the
        event log can replay it against other rules, with its phone numbers and addresses
        replaced by their keys' tokens (``gateway._rules.privacy``: in place, in
        ``raw_events`` too).

    Raises:
        MalformedEventError: some events lack an id or anything to attach to an order.
    """
    rows = core_ext.process_batch(rules.spec, tenant, raw_events)
    problems: list[str] = []
    events: list[Event] = []
    extract = core_ext.extract
    source = rules.name
    kind = rules.kind
    time_paths = rules.occurred_at
    time_format = rules.occurred_at_format
    waybill_paths = rules.waybill
    type_paths = rules.event_type
    # Most data paths are one top-level key: read those with one dict lookup each.
    flat_paths = rules.flat_data
    private = redacted_paths(rules.spec.buyer)  # phone numbers and addresses: only as key tokens
    aliases = alias_paths(rules.spec.buyer)  # the other identities an agent may search by
    data_paths = rules.nested_data
    for index, (raw, row) in enumerate(zip(raw_events, rows, strict=True)):
        fingerprint, buyer, code, event_id, order_id, raw_status = row
        if not isinstance(raw, dict):
            problems.append(f"[{index}]: not a JSON object")
            continue
        if private:
            redact_identities(raw, tenant, private)
        waybill = (extract(raw, waybill_paths) if waybill_paths else None) or ""
        if event_id is None:
            problems.append(f"[{index}]: no event id ({'+'.join(rules.spec.event_id)})")
            continue
        if order_id is None and not waybill:
            problems.append(f"[{index}]: neither an order id ({'+'.join(rules.spec.order_id)}) nor a waybill")
            continue
        occurred = 0
        if time_paths:
            occurred = parse_occurred_at(extract(raw, time_paths), time_format)
        data: dict[str, Any] = {}
        for name, key in flat_paths:
            value = raw.get(key)
            if value is not None:
                data[name] = value
        for name, parts in data_paths:
            value = get_path(raw, parts)
            if value is not None:
                data[name] = value
        events.append(
            Event(
                tenant=tenant,
                source=source,
                source_event_id=event_id,
                order_id=order_id or "",
                type=(extract(raw, type_paths) if type_paths else None) or kind,
                raw_status=raw_status or "",
                status_code=code,
                occurred_at_ms=occurred,
                received_at_ms=received_at_ms,
                fingerprint=fingerprint,
                buyer_key=buyer,
                waybill=waybill,
                data=data,
                rule=rules.rule_ref(raw_status),
                raw=raw,
                buyer_aliases=alias_keys(raw, tenant, aliases, buyer) if aliases else (),
            )
        )
    if problems:
        shown = "; ".join(problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise MalformedEventError(f"{len(problems)} of {len(raw_events)} events refused: {shown}{more}")
    return events
