"""Wiring of the pack line in the daemon: devices, stations, alerts.

``serve_pack_line`` builds the drivers from ``[stations.*]`` / ``[nvrs.*]``, the ``PackLine``
(every station's sessions), registers it as a listener of the pipeline's commits (refunds
reach an open session at once), and runs the devices' supervisors and the alert sender
until cancelled. The NVR clients are closed on the way out.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

import trio

from devices.printer import ZplPrinter
from devices.scan import Scan
from devices.supervisor import DeviceRegistry
from gateway._customs import CustomsConfig, load_customs
from gateway._metrics import Metrics
from gateway._packline.alerts import AlertWake, alert_listener, serve_alerts
from gateway._packline.devices import SCAN_QUEUE, nvr_client, printer_of, serve_station_devices
from gateway._packline.display import StationDisplay
from gateway._packline.line import PackLine
from gateway._packline.stock_reader import StockReader
from gateway._packline.weighing import station_scale
from gateway._pipeline import Pipeline
from gateway._rules import RuleSet
from gateway._settings import Settings
from gateway._store import Store

log = logging.getLogger(__name__)


async def serve_pack_line(settings: Settings, registry: DeviceRegistry, store: Store, pipeline: Pipeline,
                          rules: Callable[[], RuleSet], display: StationDisplay, metrics: Metrics | None = None, *,
                          customs: CustomsConfig | None = None,
                          task_status: trio.TaskStatus[PackLine] = trio.TASK_STATUS_IGNORED) -> None:
    """Run the pack line until cancelled; reports the ``PackLine`` once its stations run
    (their open sessions restored, queued labels back in their queues). ``customs``: the
    declaration check of cross-border orders (default: read from ``[customs] dir``)."""
    nvrs = {name: nvr_client(name, nvr) for name, nvr in settings.nvrs.items()}
    printers: dict[str, ZplPrinter | None] = {
        name: printer_of(name, config.printer) if config.printer is not None else None
        for name, config in settings.stations.items()}
    scales = {name: station_scale(name, config.scale) for name, config in settings.stations.items()
              if config.scale is not None}
    config = settings.packline
    stock_reader = (StockReader(config.stock_url, settings.upstream.secret, timeout_s=config.stock_timeout_s,
                                fresh_s=config.stock_fresh_s) if config.stock_url else None)
    line = PackLine(settings.packline, {name: (config.nvr, config.nvr_channel)
                                        for name, config in settings.stations.items()},
                    store, pipeline, rules, display, registry, printers, nvrs, settings.data_path / "evidence",
                    scales, stock_reader, metrics,
                    customs if customs is not None else load_customs(settings.customs_path))
    pipeline.add_listener(line.on_commit)
    wake = AlertWake()
    pipeline.add_listener(alert_listener(wake))
    send, receive = trio.open_memory_channel[Scan](SCAN_QUEUE)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(functools.partial(serve_alerts, store, settings.alerts, metrics, wake=wake))
            await nursery.start(line.serve, receive)
            await nursery.start(serve_station_devices, settings, registry, send, nvrs, printers)
            log.info("pack line: %d stations (close mode %s, tenant %s)", len(line.stations),
                     settings.packline.close_mode, settings.packline.tenant or "-")
            task_status.started(line)
    finally:
        with trio.CancelScope(shield=True):
            for client in nvrs.values():
                await client.aclose()
            for scale in scales.values():
                await scale.aclose()
            if stock_reader is not None:
                await stock_reader.aclose()


__all__ = ["serve_pack_line"]
