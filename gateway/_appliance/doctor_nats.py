"""The doctor's probe of a NATS upstream (``[upstream] kind = "nats"``, the fleet sink).

The doctor connects with the box's own credentials exactly as the sink does (``NatsSink``: the
same options, its own thread) and asks the cluster for the stream's info; nothing is published.
It says:

* ok: the stream, its replicas, its duplicate window, and a warning when the window is shorter than
  10 minutes (a box that restarts slower than the window may store a re-sent batch twice;
  "The fleet" in the README suggests 2 h) or the stream has fewer than 3 replicas;
* fail: what the sink's error explains (credentials refused, no server answered, the stream is
  missing), with what to check.
"""

from __future__ import annotations

from typing import Any

from gateway._appliance.doctor_core import DoctorContext, Findings
from gateway._forward.nats_sink import NatsSink, NatsUnavailableError
from gateway._settings.nats import describe_nats

SHORT_WINDOW_S = 600.0


async def check_nats_upstream(ctx: DoctorContext, found: Findings) -> None:
    """The NATS cluster answers with the box's credentials and has the stream."""
    settings = ctx.settings.upstream.nats
    where = describe_nats(settings)
    timeout_s = min(ctx.settings.upstream.timeout_s, 10.0)
    for attempt in range(3):
        sink = NatsSink(settings, ctx.settings.gateway.id, timeout_s)
        try:
            info: Any = await sink.call(lambda js: js.stream_info(settings.stream))
            break
        except NatsUnavailableError as exc:
            if "reset by peer" in str(exc) and attempt < 2:
                continue  # a server closes a refused connection: the refusal itself comes on a retry
            found.fail(f"{where}: {exc}", "check [upstream.nats] servers and credentials, this box's network and "
                       "firewall (port 4222), and that the cluster's operators created the stream", nats=where)
            return
        except Exception as exc:  # nats-py raises its own tree and bare asyncio errors: report, do not crash
            found.fail(f"{where}: {type(exc).__name__}: {exc}", "check that the stream exists on the cluster "
                       f"(nats stream info {settings.stream})", nats=where)
            return
        finally:
            await sink.aclose()
    config = info.config
    replicas = int(config.num_replicas or 1)
    window_s = float(config.duplicate_window or 0)
    details: dict[str, Any] = {"nats": where, "replicas": replicas, "duplicate_window_s": window_s,
               "messages": int(info.state.messages)}
    if replicas < 3:
        found.warn(f"stream {settings.stream} has {replicas} replica(s): a server lost loses what it held",
                   "ask the cluster's operators for 3 replicas (nats stream edit --replicas 3)", **details)
    elif window_s < SHORT_WINDOW_S:
        found.warn(f"stream {settings.stream}: duplicate window {window_s:g} s; a batch re-sent after a longer "
                   "restart is stored twice", "ask for --dupe-window 2h; consumers de-duplicate by event_id anyway",
                   **details)
    else:
        found.ok(f"stream {settings.stream} answers: {replicas} replicas, duplicate window {window_s:g} s, "
                 f"{int(info.state.messages):,} messages", **details)


__all__ = ["check_nats_upstream"]
