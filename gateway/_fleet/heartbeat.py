"""Each box's heartbeat: a small JSON value in a JetStream key-value bucket, one key per box.

With ``[upstream] kind = "nats"`` the daemon runs ``serve_heartbeat``: every
``heartbeat_interval_s`` it puts this box's state under its ``[gateway] id`` in the bucket
``heartbeat_bucket`` (created at the first put when missing: history 1, as many replicas as
the event stream has). ``gateway fleet status`` reads the bucket (``gateway._fleet.status``)::

    bucket gateway_fleet
      key wh-sh-01 -> {"gateway_id": "wh-sh-01", "at": 1764900000.1, "interval_s": 15.0,
                       "backlog_events": 0, "backlog_bytes": 0, "oldest_age_s": null,
                       "forwarder": "idle", "last_error": "", "devices_up": 7,
                       "devices_down": ["station-2/printer"], "oci": {"shop-a": 0.97},
                       "version": "0.1.0"}

The heartbeat goes over the sink's own connection, on its thread (``NatsSink.call``); a
cluster that is down costs one skipped heartbeat, never the forwarder's progress.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import nats.errors
import nats.js.errors
import orjson
import trio
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig

from gateway._forward.nats_sink import NatsSink, NatsUnavailableError
from gateway._settings.nats import NatsSettings

log = logging.getLogger(__name__)

_KEY_UNSAFE = re.compile(r"[^-/_=.a-zA-Z0-9]")


def box_key(gateway_id: str) -> str:
    """The bucket key of a box: its id with characters a key may not hold replaced by ``_``."""
    return _KEY_UNSAFE.sub("_", gateway_id).strip(".") or "_"


@dataclass(frozen=True)
class Heartbeat:
    """One box's state at ``at`` (unix seconds); see the module docstring for the JSON."""

    gateway_id: str
    at: float
    interval_s: float
    backlog_events: int = 0
    backlog_bytes: int = 0
    oldest_age_s: float | None = None
    forwarder: str = "idle"
    last_error: str = ""
    devices_up: int = 0
    devices_down: list[str] = field(default_factory=list)
    oci: dict[str, float | None] | None = None
    version: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> Heartbeat:
        """The heartbeat in ``data``; unknown keys (a newer box) are ignored.

        Raises:
            ValueError: not a heartbeat.
        """
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(value, dict) or not isinstance(value.get("gateway_id"), str):
            raise ValueError("not a heartbeat: no gateway_id")
        known = {name: value[name] for name in cls.__dataclass_fields__ if name in value}
        try:
            return cls(**known)
        except TypeError as exc:
            raise ValueError(f"not a heartbeat: {exc}") from exc


def heartbeat_of(gateway_id: str, interval_s: float, outbox: dict[str, Any], devices: list[dict[str, Any]],
                 oci: dict[str, float | None] | None, version: str, now: float) -> Heartbeat:
    """The heartbeat from ``outbox_report``'s dict, the devices' reports and the OCI scores.

    Args:
        outbox: ``gateway._forward.outbox_report(...)``.
        devices: ``DeviceRegistry.report()`` (``station``, ``device``, ``kind``, ``state``).
        oci: ``{tenant: combined score}``, ``None`` when the OCI is not computed yet.
    """
    down = sorted(f"{d.get('station', '?')}/{d.get('kind', d.get('device', '?'))}" for d in devices
                  if d.get("state") == "down")
    return Heartbeat(
        gateway_id=gateway_id, at=round(now, 3), interval_s=interval_s,
        backlog_events=int(outbox.get("backlog_events") or 0), backlog_bytes=int(outbox.get("backlog_bytes") or 0),
        oldest_age_s=outbox.get("oldest_age_s"), forwarder=str(outbox.get("state", "")),
        last_error=str(outbox.get("last_error") or "")[:300],
        devices_up=sum(1 for d in devices if d.get("state") == "up"), devices_down=down, oci=oci, version=version)


class HeartbeatPublisher:
    """Puts heartbeats into the bucket through a ``NatsSink``'s connection.

    Args:
        sink: the running sink (its thread owns the connection).
        settings: ``[upstream.nats]`` (bucket, stream for the replica count).
    """

    def __init__(self, sink: NatsSink, settings: NatsSettings) -> None:
        self.sink = sink
        self.settings = settings
        self._kv: Any = None  # the KeyValue handle; used on the sink's thread only

    def __repr__(self) -> str:
        return f"<HeartbeatPublisher bucket {self.settings.heartbeat_bucket}>"

    async def put(self, heartbeat: Heartbeat) -> int:
        """Store ``heartbeat``; the bucket's revision.

        Raises:
            NatsUnavailableError: not connected; nats.errors.Error: the bucket refused it.
        """

        async def on_loop(js: JetStreamContext) -> int:
            if self._kv is None:
                self._kv = await self._bucket(js)
            try:
                revision: int = await self._kv.put(box_key(heartbeat.gateway_id), heartbeat.to_json())
            except BaseException:
                self._kv = None  # look the bucket up again next time (it may have been re-created)
                raise
            return revision

        return await self.sink.call(on_loop)

    async def _bucket(self, js: JetStreamContext) -> Any:
        bucket = self.settings.heartbeat_bucket
        try:
            return await js.key_value(bucket)
        except nats.js.errors.BucketNotFoundError:
            pass
        replicas = 1
        try:
            replicas = (await js.stream_info(self.settings.stream)).config.num_replicas or 1
        except nats.js.errors.NotFoundError:
            pass
        log.info("creating the fleet's heartbeat bucket %s (%d replicas)", bucket, replicas)
        return await js.create_key_value(KeyValueConfig(bucket=bucket, history=1, replicas=replicas,
                                                        description="edge gateways' heartbeats"))


async def serve_heartbeat(publisher: HeartbeatPublisher, snapshot: Callable[[], Heartbeat], interval_s: float,
                          *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Put ``snapshot()`` every ``interval_s`` until cancelled; failures are logged once and retried."""
    task_status.started()
    failing = ""
    while True:
        started = time.monotonic()
        try:
            await publisher.put(snapshot())
            if failing:
                log.info("fleet heartbeat: published again")
            failing = ""
        except (NatsUnavailableError, nats.errors.Error, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"[:300]
            if not failing:
                log.warning("fleet heartbeat not published (%s); retrying every %.0f s", reason, interval_s)
            failing = reason
        await trio.sleep(max(0.0, interval_s - (time.monotonic() - started)))


__all__ = ["Heartbeat", "HeartbeatPublisher", "box_key", "heartbeat_of", "serve_heartbeat"]
