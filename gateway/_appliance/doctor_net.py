"""Doctor checks that talk over the network: the upstream probe, the clocks, the HTTP port.

**The upstream probe.** The ``upstream`` check POSTs to ``[upstream] url`` a batch with no
event, signed and sent by the forwarder's own sink (``gateway._forward.sink.HttpSink``), so
it proves exactly what a real batch needs: the address answers and the ERP accepts our
signature. The body::

    {"gateway_id": "<[gateway] id>", "batch_id": "<gateway_id>-probe-<unix seconds>",
     "events": [], "probe": true}

with the usual ``Idempotency-Key`` (= ``batch_id``), ``X-Gateway-Id``,
``X-Gateway-Timestamp`` and ``X-Gateway-Signature`` headers. An ERP following the contract
(apply each event not yet applied, answer 2xx) applies nothing and answers 2xx: the probe is
a no-op without any change on the ERP side; an ERP that wants to can recognise it by
``"probe": true`` (or the ``-probe-`` in ``batch_id``). Its answer means: 2xx ok; 401/403
our signature is refused (the secret differs); 404/405/3xx the URL is wrong; 408/429/5xx the
ERP is there but busy or failing (a warning: the forwarder retries); another 4xx the ERP
refuses an empty batch (a warning: ask the ERP side to answer 2xx to it).

**The clock.** NTP synchronisation from ``timedatectl show -p NTPSynchronized`` where
``timedatectl`` exists; our skew against the ``Date`` header of the probe's answer (an ERP
refusing replays rejects signatures whose timestamp is more than a few minutes off); each
NVR's clock offset as the ISAPI client measures it (the gateway corrects its searches by
it, so a large offset is a warning).
"""

from __future__ import annotations

import email.utils
import errno
import shutil
import socket
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import trio

from gateway._appliance.doctor_core import DoctorContext, Findings
from gateway._forward.outage import public_url
from gateway._forward.sink import HttpSink, OutboundBatch
from gateway._settings import Secret, Settings

#: The ERP side's usual replay window (README: "Verifying a batch"): a timestamp further off is refused.
REPLAY_WINDOW_S = 300.0
#: Our clock against the upstream's ``Date``: ok within this (the header has 1 s resolution)...
SKEW_OK_S = 10.0
#: ...a failure beyond this (too close to the replay window).
SKEW_FAIL_S = 240.0
LIVEZ_TIMEOUT_S = 2.0
TIMEDATECTL_TIMEOUT_S = 5.0


def base_url(settings: Settings) -> str:
    """``http://host:port`` of the gateway's own HTTP server."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(settings.http.host, settings.http.host)
    return f"http://[{host}]:{settings.http.port}" if ":" in host else f"http://{host}:{settings.http.port}"


async def livez(settings: Settings) -> str:
    """The base URL when a gateway answers ``GET /livez`` on ``[http] host:port``, else ""."""
    if not settings.http.port:
        return ""
    base = base_url(settings)
    try:
        async with httpx.AsyncClient(timeout=LIVEZ_TIMEOUT_S) as client:
            reply = await client.get(f"{base}/livez")
        live = reply.status_code == 200 and orjson.loads(reply.content).get("status") == "live"
    except (httpx.HTTPError, orjson.JSONDecodeError, AttributeError):
        return ""
    return base if live else ""


# -- the upstream probe -------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeAnswer:
    """What the upstream answered the probe.

    Attributes:
        url: the upstream, without user info or query (for messages).
        status: the HTTP status, 0 when there was no answer.
        reason: why there was no answer ("" otherwise).
        date: the answer's ``Date`` header ("" when none).
        midpoint_s: our clock half-way through the request (to compare with ``date``).
    """

    url: str
    status: int
    reason: str = ""
    date: str = ""
    midpoint_s: float = 0.0


class _RecordingTransport(httpx.AsyncBaseTransport):
    """The default transport, remembering the answer's ``Date`` and when it came."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.date = ""
        self.midpoint_s = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = time.time()
        response = await self.inner.handle_async_request(request)
        self.midpoint_s = (sent_at + time.time()) / 2
        self.date = response.headers.get("date", "")
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def probe_batch(gateway_id: str, now_s: float) -> OutboundBatch:
    """The probe: a batch without events, marked ``"probe": true`` (module docstring)."""
    batch_id = f"{gateway_id}-probe-{int(now_s)}"
    body = orjson.dumps({"gateway_id": gateway_id, "batch_id": batch_id, "events": [], "probe": True})
    return OutboundBatch(batch_id, [], body)


async def probe_upstream(url: str, secret: Secret, gateway_id: str, timeout_s: float) -> ProbeAnswer:
    """POST the probe to ``url`` signed with ``secret``, as the forwarder sends a batch."""
    transport = _RecordingTransport()
    sink = HttpSink(url, secret, gateway_id, timeout_s, transport=transport)
    try:
        delivery = await sink.deliver(probe_batch(gateway_id, time.time()))
    finally:
        await sink.aclose()
    return ProbeAnswer(public_url(url), delivery.status, delivery.reason if not delivery.status else "",
                       transport.date, transport.midpoint_s)


async def _upstream_target(ctx: DoctorContext) -> tuple[str, Secret] | None:
    """(url, secret) the forwarder would use; the demo's own route when the demo forwards
    to itself (only while that gateway runs); ``None`` when there is nothing to probe."""
    upstream = ctx.settings.upstream
    if upstream.url:
        return upstream.url, upstream.secret
    if ctx.settings.demo.enabled:
        from gateway._demo.upstream import DEMO_UPSTREAM_PATH, DEMO_UPSTREAM_SECRET

        running = await ctx.running_gateway()
        if running:
            return running + DEMO_UPSTREAM_PATH, Secret(DEMO_UPSTREAM_SECRET)
    return None


async def upstream_answer(ctx: DoctorContext) -> ProbeAnswer | None:
    """The probe's answer (asked once per run), ``None`` when there is nothing to probe."""
    async def ask() -> ProbeAnswer | None:
        target = await _upstream_target(ctx)
        if target is None:
            return None
        timeout_s = min(ctx.settings.upstream.timeout_s, 10.0)
        return await probe_upstream(target[0], target[1], ctx.settings.gateway.id, timeout_s)

    answer: ProbeAnswer | None = await ctx.once("upstream", ask)
    return answer


async def check_upstream(ctx: DoctorContext, found: Findings) -> None:
    """The upstream answers the signed probe with 2xx."""
    settings = ctx.settings
    if settings.upstream.kind == "nats":  # the fleet sink: its own probe
        from gateway._appliance.doctor_nats import check_nats_upstream

        await check_nats_upstream(ctx, found)
        return
    if not settings.upstream.url and not settings.demo.enabled:
        found.warn("forwarding is off ([upstream] url is empty): the outbox fills up to its bound, then webhooks "
                   "get 503", "set [upstream] url and secret_file (or secret_env) to the ERP's endpoint")
        return
    answer = await upstream_answer(ctx)
    if answer is None:
        found.ok("the demo forwards to its own /demo/upstream (checked while the gateway runs)")
        return
    status, where = answer.status, answer.url
    details: dict[str, Any] = {"url": where, "http_status": status}
    if 200 <= status < 300:
        found.ok(f"{where} accepted the signed probe (HTTP {status})", **details)
    elif status == 0:
        found.fail(f"cannot reach {where}: {answer.reason}", "check [upstream] url, this box's network, DNS and "
                   "firewall (the ERP must be reachable from here), then run the doctor again", **details)
    elif status in (401, 403):
        found.fail(f"{where} refused our signature (HTTP {status})", "the [upstream] secret (secret_file / "
                   "secret_env) differs from the one the ERP verifies with: get the right one from the ERP side",
                   **details)
    elif status in (404, 405) or 300 <= status < 400:
        found.fail(f"{where} is not the batch endpoint (HTTP {status})", "check [upstream] url: it must be the "
                   "ERP's batch endpoint itself (no redirect), exactly as the ERP side gave it", **details)
    elif status in (408, 429) or status >= 500:
        found.warn(f"{where} is there but busy or failing (HTTP {status})", "the gateway retries by itself; if it "
                   "lasts, ask the ERP side (their service answered an error)", **details)
    else:
        found.warn(f"{where} answered HTTP {status} to an empty batch", "ask the ERP side to answer 2xx to a batch "
                   'without events ({"events": [], "probe": true}): the doctor uses it to check the signature',
                   **details)


# -- the clock ---------------------------------------------------------------------------


async def ntp_synchronized() -> bool | None:
    """``timedatectl``'s NTPSynchronized, ``None`` when there is no ``timedatectl`` (or no answer)."""
    command = shutil.which("timedatectl")
    if command is None:
        return None
    with trio.move_on_after(TIMEDATECTL_TIMEOUT_S):
        try:
            done = await trio.run_process([command, "show", "-p", "NTPSynchronized", "--value"],
                                          capture_stdout=True, capture_stderr=True, check=False)
        except OSError:
            return None
        text = done.stdout.decode(errors="replace").strip()
        return text == "yes" if done.returncode == 0 and text in ("yes", "no") else None
    return None


def skew_of(answer: ProbeAnswer) -> float | None:
    """Our clock minus the upstream's (seconds) from its ``Date``; ``None`` without one."""
    if not answer.date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(answer.date)
    except (TypeError, ValueError):
        return None
    # Date is truncated to the second: it lags the true time by 0.5 s on average.
    return answer.midpoint_s - (when.timestamp() + 0.5)


async def check_clock(ctx: DoctorContext, found: Findings) -> None:
    """NTP synchronised, our clock near the upstream's, each NVR's offset."""
    synced = await ntp_synchronized()
    if synced is None:
        found.ok("NTP not checked (no timedatectl on this box)", subject="ntp")
    elif synced:
        found.ok("synchronised by NTP", subject="ntp")
    else:
        found.warn("the system clock is not synchronised by NTP", "turn NTP on (`timedatectl set-ntp true`) and "
                   "check that the NTP server (systemd-timesyncd or chrony) can reach its servers", subject="ntp")
    if ctx.settings.upstream.url or ctx.settings.demo.enabled:
        answer = await upstream_answer(ctx)
        skew = skew_of(answer) if answer is not None else None
        if answer is not None and skew is None:
            found.ok(f"skew against {answer.url} not measured (no Date in its answer)", subject="upstream")
        elif answer is not None and skew is not None:
            text = f"{abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} {answer.url}"
            fix = ("set the time right (NTP on this box, and ask the ERP side about theirs): the ERP refuses "
                   f"signatures more than {REPLAY_WINDOW_S:.0f} s off")
            if abs(skew) <= SKEW_OK_S:
                found.ok(f"our clock is within {SKEW_OK_S:.0f} s of {answer.url}", subject="upstream", skew_s=skew)
            elif abs(skew) <= SKEW_FAIL_S:
                found.warn(f"our clock is {text}", fix, subject="upstream", skew_s=skew)
            else:
                found.fail(f"our clock is {text}", fix, subject="upstream", skew_s=skew)
    from gateway._appliance.doctor_devices import nvr_login
    from gateway._devices_cli_format import CLOCK_WARN_S

    for name in ctx.settings.nvrs:
        login = await nvr_login(ctx, name)
        if login.offset_s is None:
            found.ok(f"clock not measured ({login.problem}; see the devices check)", subject=f"nvr {name}")
        elif abs(login.offset_s) <= CLOCK_WARN_S:
            found.ok(f"clock within {CLOCK_WARN_S:.0f} s of ours ({login.offset_s:+.1f} s)", subject=f"nvr {name}",
                     offset_s=login.offset_s)
        else:
            way = "ahead of" if login.offset_s > 0 else "behind"
            found.warn(f"clock {abs(login.offset_s):.0f} s {way} ours (the gateway corrects its video searches "
                       "by it)", "set NTP on the NVR (Configuration > System > Time: NTP, the same server as this "
                       "box)", subject=f"nvr {name}", offset_s=login.offset_s)


# -- the HTTP port -----------------------------------------------------------------------


def _bind_error(host: str, port: int) -> OSError | None:
    """The error binding ``host:port`` gives (as the server binds: SO_REUSEADDR), ``None`` if free."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc
    return None


async def check_http_port(ctx: DoctorContext, found: Findings) -> None:
    """``[http] host:port`` is free, or held by a running gateway (its ``/livez`` answers)."""
    http = ctx.settings.http
    where = f"{http.host}:{http.port}"
    if not http.port:
        found.ok("[http] port = 0: any free port is taken at start")
        return
    error = _bind_error(http.host, http.port)
    if error is None:
        found.ok(f"{where} is free", port=http.port)
        return
    if error.errno == errno.EADDRNOTAVAIL:
        found.fail(f"{http.host} is not an address of this box", "set [http] host to one of this box's addresses "
                   "(127.0.0.1 behind a reverse proxy, 0.0.0.0 for every interface)", port=http.port)
        return
    if error.errno == errno.EACCES:
        found.fail(f"port {http.port} needs root (below 1024)", "use a port above 1023 (8780) and let a reverse "
                   "proxy serve 80/443", port=http.port)
        return
    running = await ctx.running_gateway()
    if running:
        found.ok(f"{where} is held by a running gateway ({running}/livez answers)", port=http.port, running=True)
        return
    found.fail(f"{where} is held by another program ({error.strerror})",
               f"find it with `ss -ltnp 'sport = :{http.port}'` and stop it, or set another [http] port",
               port=http.port)


__all__ = ["REPLAY_WINDOW_S", "SKEW_FAIL_S", "SKEW_OK_S", "ProbeAnswer", "base_url", "check_clock",
           "check_http_port", "check_upstream", "livez", "ntp_synchronized", "probe_batch", "probe_upstream",
           "skew_of", "upstream_answer"]
