"""The demo: a simulated ERP feeding the gateway, and a simulated upstream ERP receiving from it.

In: ``[demo]`` settings. Out: signed ERP batches posted to ``/webhooks/erp/demo`` every
``interval_s`` (``serve_demo_feeder``), and the ``/demo/upstream`` route that verifies and logs
what the forwarder sends (``demo_upstream_endpoint``). Both speak the real wire formats, so
the demo exercises the same code a warehouse runs. With ``[demo] devices``, simulated
scanners, printers and NVRs stand where ``[stations.*]`` places devices on 127.0.0.1
(``serve_demo_devices``). Used by ``make run``; never on by itself
in a production config (``[demo] enabled`` defaults to false).
"""

from gateway._demo.devices import serve_demo_devices
from gateway._demo.feeder import DemoErp, serve_demo_feeder
from gateway._demo.upstream import DEMO_UPSTREAM_PATH, DEMO_UPSTREAM_SECRET, demo_upstream_endpoint

__all__ = ["DEMO_UPSTREAM_PATH", "DEMO_UPSTREAM_SECRET", "DemoErp", "demo_upstream_endpoint", "serve_demo_devices",
           "serve_demo_feeder"]
