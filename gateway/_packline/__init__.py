"""The pack line: stations, their devices, pack sessions with verdicts, labels, evidence, alerts.

In: ``[stations.*]``, ``[nvrs.*]``, ``[packline]`` and ``[alerts]`` settings; ``Scan`` values
from the scanner drivers in ``devices``; every durable commit of the pipeline (refunds,
waybills, orders ready to pack, catalog and stock changes) through a commit listener.
Out: verdicts at every scan, committed through the pipeline at station priority before they
are shown (events forwarded upstream: ``pack_open``, ``pack_scan``, ``pack_exception``,
``packed``, ``cancel_shipment``); each station's live view for its display page; label jobs
printed only on a complete close; the NVR clip of every session; alerts to a WeCom robot;
a ``DeviceRegistry`` of every device's state.

Parts: ``values`` (catalog, bill and verdict types), ``catalog`` (a catalog file or ERP event
checked across rows; the catalog's API), ``catalog_files`` (CSV and JSON read and written),
``catalog_problems`` (each problem named by file, row and column, zh-CN and English),
``catalog_store`` (the catalog and stock records, what packing uses), ``bill`` (the expected
bill per parcel), ``session`` (the pack session's verdicts, pure), ``session_text`` (what a
session shows: ``ScanResult`` and its lines), ``station`` (what a scan is; the station's
events), ``line_declaration`` (a cross-border order held while its customs declaration is
incomplete: ``DECLARATION_INCOMPLETE``), ``line`` (``PackLine``: every station, interrupts, follow-ups), ``printing`` (the
durable label queue), ``evidence`` (NVR clips), ``alerts`` (alerts raised: builders, WeCom
bodies, the durable queue), ``alert_sender`` (the queue delivered to the WeCom robot),
``display`` (each station's live view), ``devices`` (drivers built from settings,
supervised), ``serve`` (the daemon's wiring).
"""

from devices.supervisor import DeviceRegistry, DeviceState
from gateway._packline.devices import (
    framing_of,
    nvr_client,
    printer_of,
    scanner_driver,
    serve_station_devices,
)
from gateway._packline.display import StationDisplay
from gateway._packline.line import PackLine
from gateway._packline.serve import serve_pack_line

__all__ = ["DeviceRegistry", "DeviceState", "PackLine", "StationDisplay", "framing_of", "nvr_client", "printer_of",
           "scanner_driver", "serve_pack_line", "serve_station_devices"]
