"""Pinduoduo message frames -> events, for the WebSocket client (``gateway._ingest.pdd_ws``). Pure.

A Common frame is decoded by ``gateway._ingest.adapters.pinduoduo.decode_frame`` (``content`` JSON
string -> object) and normalised with the live ``pinduoduo`` rules, the whole batch in one
core call. A frame that cannot be — not JSON, an unknown ``commandType``, a ``content`` that
is not an object, no ``tid`` — is not dropped: it becomes a quarantine event (no order,
status missing, rule ``pinduoduo-ws:malformed``) keeping the raw frame text and the reason,
so it is stored, listed at ``/api/v1/tenants/{t}/quarantine`` and then acknowledged like any
other frame (the client's module docstring says why). On a channel several tenants share,
``route`` says whose each frame is, by its ``mallID``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

import core_ext
from gateway._errors import MalformedEventError
from gateway._model import CODE_MISSING, Event
from gateway._rules import SourceRules, normalise_batch

SOURCE = "pinduoduo"
MALFORMED_RULE = "pinduoduo-ws:malformed"


@dataclass
class Inbound:
    """One frame waiting for its commit: decoded, or the raw text and why it is malformed.

    ``frame`` is the decoded Common frame, or for a malformed one whatever JSON object
    could be read (for its id, type and mall in the ack), or ``None``.
    """

    text: str
    frame: dict[str, Any] | None = None
    error: str = ""
    counted: bool = False  # a malformed frame is counted and logged once, not per retry

    @property
    def frame_id(self) -> Any:
        return self.frame.get("id") if self.frame is not None else None


class NoRulesError(Exception):
    """The live rule set has no ``pinduoduo`` file (a rule reload may bring it back)."""


def frames_to_events(rules: SourceRules | None, tenant: str, batch: Sequence[Inbound],
                     received_ms: int) -> tuple[list[Event], list[Inbound]]:
    """One event per frame, in order: normalised, or a quarantine event for a malformed one.

    Args:
        rules: the live ``pinduoduo`` rules (``None`` when no such file is loaded).
        tenant: the tenant the connection belongs to.
        batch: frames received together.
        received_ms: the gateway's receive time.

    Returns:
        ``(events, newly malformed)``: the second list holds the frames found malformed for
        the first time (each is marked ``counted``, so a retry of the batch reports none twice).

    Raises:
        NoRulesError: ``rules`` is ``None``; nothing can be stored until a reload brings them.
    """
    if rules is None:
        raise NoRulesError(f"no {SOURCE} rules are loaded")
    if not any(item.error for item in batch):
        try:  # the usual case: the whole batch in one core call
            return normalise_batch(rules, tenant, [item.frame for item in batch], received_ms), []
        except MalformedEventError:
            pass  # find the bad frames one by one
    events: list[Event] = []
    malformed: list[Inbound] = []
    for item in batch:
        if not item.error and item.frame is not None:
            try:
                events.extend(normalise_batch(rules, tenant, [item.frame], received_ms))
                continue
            except MalformedEventError as exc:
                item.error = str(exc)
        if not item.counted:
            item.counted = True
            malformed.append(item)
        events.append(malformed_event(tenant, item, received_ms))
    return events, malformed


def route(item: Inbound, mall_routes: Mapping[str, str], tenants: Sequence[str]) -> str | None:
    """The tenant whose message ``item`` is, on a channel owned by ``tenants``.

    Args:
        item: the frame.
        mall_routes: ``{mallID (text): tenant}``; empty = every frame is ``tenants[0]``'s.
        tenants: the channel's tenants, the first one keeping malformed frames with no shop.

    Returns:
        The tenant, or ``None``: a well-formed frame from a shop no tenant lists (not to be
        stored under anyone: one seller must never see another's orders).
    """
    if not mall_routes:
        return tenants[0]
    message = item.frame.get("message") if item.frame is not None else None
    mall = message.get("mallID") if isinstance(message, dict) else None
    tenant = mall_routes.get(str(mall)) if mall is not None else None
    if tenant is None and item.error:  # malformed, and no listed shop to go by
        return tenants[0]
    return tenant


def routed_events(rules: SourceRules | None, routed: Sequence[tuple[Inbound, str]],
                  received_ms: int) -> tuple[list[Event], list[tuple[Inbound, str]]]:
    """``frames_to_events`` for frames of several tenants: one event per frame, each under its
    tenant, in arrival order; the second list holds the newly malformed frames and their tenant.

    Raises:
        NoRulesError: as ``frames_to_events``.
    """
    by_tenant: dict[str, list[int]] = {}
    for index, (_, tenant) in enumerate(routed):
        by_tenant.setdefault(tenant, []).append(index)
    events: list[Event | None] = [None] * len(routed)
    malformed: list[tuple[Inbound, str]] = []
    for tenant, indexes in by_tenant.items():
        made, bad = frames_to_events(rules, tenant, [routed[i][0] for i in indexes], received_ms)
        for index, event in zip(indexes, made, strict=True):
            events[index] = event
        malformed += [(item, tenant) for item in bad]
    return [event for event in events if event is not None], malformed


def malformed_event(tenant: str, item: Inbound, received_ms: int) -> Event:
    """The quarantine event keeping a malformed frame (its id, or a digest of its text, as the id)."""
    if item.frame_id is not None:
        event_id = str(item.frame_id)
    else:
        event_id = "noid-" + hashlib.sha256(item.text.encode()).hexdigest()[:16]
    return Event(
        tenant=tenant, source=SOURCE, source_event_id=event_id, order_id="",
        type="malformed_frame", raw_status="", status_code=CODE_MISSING, occurred_at_ms=0,
        received_at_ms=received_ms,
        fingerprint=core_ext.fingerprint(tenant, SOURCE, event_id, "", "malformed"),
        rule=MALFORMED_RULE, raw={"malformed": item.error, "frame": item.text},
    )


def loose_frame(text: str) -> dict[str, Any] | None:
    """A frame that failed validation, if it is at least a JSON object (for its id)."""
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


__all__ = ["MALFORMED_RULE", "Inbound", "NoRulesError", "frames_to_events", "loose_frame", "malformed_event", "route",
           "routed_events"]
