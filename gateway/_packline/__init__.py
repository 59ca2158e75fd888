"""The pack line: stations, their devices, and (next) pack sessions, guards and evidence.

In: ``[stations.*]`` and ``[nvrs.*]`` settings; ``Scan`` values from the scanner drivers in
``devices``.
Out: a ``DeviceRegistry`` of every device's state (up/down, since when, reconnects, events,
last error) for the API, ``/healthz`` and the metrics; supervised drivers that reopen their
devices by themselves; scans routed to one channel for the line (logged and counted until
pack sessions consume them).

Parts: ``devices`` (drivers built from settings, supervised; printer, NVR and scale probes).
"""

from devices.supervisor import DeviceRegistry, DeviceState
from gateway._packline.devices import (
    framing_of,
    log_scans,
    nvr_client,
    printer_of,
    scanner_driver,
    serve_pack_line,
    serve_station_devices,
)

__all__ = ["DeviceRegistry", "DeviceState", "framing_of", "log_scans", "nvr_client", "printer_of", "scanner_driver",
           "serve_pack_line", "serve_station_devices"]
