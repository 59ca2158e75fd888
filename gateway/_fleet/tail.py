"""``gateway fleet tail``: a durable pull consumer of the fleet stream that prints and acks.

It is also the smallest example of how a central integration consumes the stream (the
README's fleet section shows the same loop in a dozen lines)::

    consumer "gateway-tail" (durable, explicit ack, ack_wait 30 s)
        fetch up to 100 -> for each: print it, then ack it
        an un-acked message comes back after ack_wait (``redelivered`` shows how often)

Printing then acking is at-least-once: a message printed just before a crash is printed
again. A real consumer makes its effect idempotent by ``event_id`` (a re-send older than the
stream's duplicate window is stored twice) and keeps the highest ``seq`` per order.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
import nats.js.errors
import orjson
from nats.js.api import AckPolicy, ConsumerConfig

from gateway._forward.nats_sink import client_options
from gateway._settings.nats import NatsSettings

_PLACEHOLDER = re.compile(r"<[a-z_]+>")
ACK_WAIT_S = 30.0


def subject_filter(template: str) -> str:
    """The subjects of every box: each placeholder of ``template`` becomes ``*``."""
    return _PLACEHOLDER.sub("*", template)


@dataclass(frozen=True)
class TailedEvent:
    """One message as ``gateway fleet tail`` shows it."""

    stream_seq: int
    subject: str
    delivered: int
    event: dict[str, Any]

    def line(self) -> str:
        """``#seq  tenant  order_id  seq  type  status  event_id  (subject)[  redelivered N]``."""
        e = self.event
        again = f"  redelivered {self.delivered - 1}" if self.delivered > 1 else ""
        return (f"#{self.stream_seq}  {e.get('tenant', '?')}  {e.get('order_id', '?')}  seq {e.get('seq', '?')}  "
                f"{e.get('type', '?')}  {e.get('status', '?')}  {e.get('event_id', '?')}  ({self.subject}){again}")

    def json(self) -> str:
        return orjson.dumps({"stream_seq": self.stream_seq, "subject": self.subject, "delivered": self.delivered,
                             "event": self.event}).decode()


def parse_message(stream_seq: int, subject: str, delivered: int, data: bytes) -> TailedEvent:
    """A message as a ``TailedEvent``; a payload that is not a JSON object is shown raw."""
    try:
        event = orjson.loads(data)
    except orjson.JSONDecodeError:
        event = None
    if not isinstance(event, dict):
        event = {"raw": data[:200].decode("utf-8", "replace")}
    return TailedEvent(stream_seq, subject, delivered, event)


async def tail(settings: NatsSettings, show: Callable[[TailedEvent], None], *, durable: str = "gateway-tail",
               subject: str = "", count: int | None = None, batch: int = 100, follow: bool = True,
               timeout_s: float = 10.0, ack_wait_s: float = ACK_WAIT_S) -> int:
    """Consume the stream through the durable pull consumer ``durable``, showing and acking.

    Args:
        show: called with each event before it is acked.
        subject: the filter; "" = every box's subjects (``subject_filter`` of the template).
        count: stop after this many events; ``None`` = no limit.
        follow: keep waiting for new events; ``False`` = stop when none came for one fetch.
        ack_wait_s: a message not acked this long after delivery comes again (when the
            consumer is created; an existing durable keeps its own).

    Returns:
        The number of events shown and acked.

    Raises:
        nats.errors.Error / OSError / TimeoutError: the cluster cannot be reached or refuses.
    """
    options = {**client_options(settings, f"gateway fleet tail {durable}"), "max_reconnect_attempts": 1}
    nc = await asyncio.wait_for(nats.connect(**options), timeout_s)
    shown = 0
    try:
        js = nc.jetstream(timeout=timeout_s)
        config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait_s)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                sub = await js.pull_subscribe(subject or subject_filter(settings.subject), durable=durable,
                                              stream=settings.stream, config=config)
                break
            except nats.js.errors.ServiceUnavailableError:  # no JetStream leader this moment (an election)
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.25)
        while count is None or shown < count:
            want = batch if count is None else min(batch, count - shown)
            try:
                messages = await sub.fetch(want, timeout=1.0)
            except TimeoutError:  # nats' own, or asyncio's when the request's deadline ran out first
                if not follow and (await sub.consumer_info()).num_pending == 0:
                    break  # --no-follow: only once nothing is left, not when a busy server was slow
                continue
            for message in messages:
                meta = message.metadata
                show(parse_message(meta.sequence.stream, message.subject, meta.num_delivered, message.data))
                await message.ack()
                shown += 1
            await nc.flush(max(1, round(timeout_s)))  # the acks are on the server before the next fetch (or the exit)
    finally:
        await nc.close()
    return shown


__all__ = ["ACK_WAIT_S", "TailedEvent", "parse_message", "subject_filter", "tail"]
