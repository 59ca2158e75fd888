"""The demo: a simulated ERP feeding the gateway, simulated pack stations, and a simulated upstream ERP.

In: ``[demo]`` settings. Out: signed ERP batches posted to ``/webhooks/erp/demo`` every
``interval_s`` (``serve_demo_feeder``), and the ``/demo/upstream`` route that verifies and logs
what the forwarder sends (``demo_upstream_endpoint``). All speak the real wire formats, so
the demo exercises the same code a warehouse runs. With ``[demo] devices``, simulated
scanners, printers and NVRs stand where ``[stations.*]`` places devices on 127.0.0.1
(``serve_demo_devices``, found through ``demo_floor``), the demo catalog
(``gateway._demo.catalog``) is imported through the API, and a simulated packer
(``gateway._demo.packer``) packs the ERP's released orders at every station. Used by
``make run``; never on by itself in a production config (``[demo] enabled`` defaults to false).
"""

from gateway._demo.devices import DemoFloor, demo_floor, serve_demo_devices
from gateway._demo.feeder import DemoErp, serve_demo_feeder
from gateway._demo.packer import Mishap, Packer, choose_mishap, script_parcel
from gateway._demo.upstream import DEMO_UPSTREAM_PATH, DEMO_UPSTREAM_SECRET, demo_upstream_endpoint

__all__ = ["DEMO_UPSTREAM_PATH", "DEMO_UPSTREAM_SECRET", "DemoErp", "DemoFloor", "Mishap", "Packer", "choose_mishap",
           "demo_floor", "demo_upstream_endpoint", "script_parcel", "serve_demo_devices", "serve_demo_feeder"]
