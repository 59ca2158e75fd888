"""The pack line in the local API (``gateway._server.packline_api``), over a running station:
an uncertain label waits for a person and is never re-sent by itself; the decision is
audited; the evidence of a packed order names the clip and each scan's second."""

from __future__ import annotations

from devices.simulators.printer import PrinterSimulator
from tests._support import erp_event
from tests._support.packline import ITEM, Line, run_line


async def test_an_uncertain_label_waits_for_a_decision_and_a_reprint_prints_once(tmp_path):
    async def body(line: Line, printer: PrinterSimulator) -> None:
        api = line.client
        await line.post(erp_event(100, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 1}]))
        printer.cut_after_label_bytes = 20  # the cable is pulled in the middle of the label
        await line.scan("OP-0001", "SIGNED_IN")
        await line.scan("DY00000100", "OPENED")
        await line.scan(ITEM, "CLOSED")
        view = await line.until(lambda: line.view() if (line.view().get("label") or {}).get("state") == "uncertain"
                                else None)
        job_id = view["label"]["job_id"]
        stations = (await api.get("/api/v1/stations", headers=line.auth)).json()["stations"]
        assert stations[0]["label"]["state"] == "uncertain"
        listed = (await api.get("/api/v1/tenants/t1/labels?state=uncertain", headers=line.auth)).json()["labels"]
        assert [j["job_id"] for j in listed] == [job_id] and "zpl" not in listed[0]
        assert printer.cut_connections == 1
        printer.cut_after_label_bytes = None
        refused = await api.post(f"/api/v1/tenants/t1/labels/{job_id}/decide", json={"decision": "cancel", "by": "x"},
                                 headers=line.auth)
        assert refused.status_code == 409  # an uncertain job cannot be cancelled: it may be in the box
        missing_by = await api.post(f"/api/v1/tenants/t1/labels/{job_id}/decide", json={"decision": "reprint"},
                                    headers=line.auth)
        assert missing_by.status_code == 400
        reply = await api.post(f"/api/v1/tenants/t1/labels/{job_id}/decide",
                               json={"decision": "reprint", "by": "supervisor Wang"}, headers=line.auth)
        assert reply.status_code == 200, reply.text
        again = reply.json()["job"]
        assert again["job_id"].endswith("/r1") and again["reprint_of"] == job_id
        await line.until(lambda: printer.printed())
        assert len([label for label in printer.printed() if not label.blocked_by]) == 1
        audit = list(line.services.store.iter_audit("t1", "douyin|DY00000100"))
        assert any(a["decision"] == "label_queued" and a["actor"] == "api:supervisor Wang" for a in audit)
        assert any(a["decision"] == "label_uncertain" for a in audit)
        unauthorised = await api.get("/api/v1/stations")
        assert unauthorised.status_code == 401

    await run_line(tmp_path, body)


async def test_the_evidence_of_a_packed_order_names_the_clip_and_the_second_of_each_scan(tmp_path):
    async def body(line: Line, printer: PrinterSimulator) -> None:
        api = line.client
        await line.post(erp_event(110, "READY_TO_PACK", lines=[{"sku": "A1", "qty": 2}]))
        await line.scan("OP-0001", "SIGNED_IN")
        opened = await line.scan("DY00000110", "OPENED")
        await line.scan(ITEM, "OK")
        await line.scan(ITEM, "CLOSED")
        url = "/api/v1/tenants/t1/evidence/douyin|DY00000110"

        async def found():
            reply = await api.get(url, headers=line.auth)
            return reply.json() if reply.status_code == 200 and reply.json()["evidence"] else None

        import trio

        with trio.fail_after(15):
            while not (evidence := await found()):  # noqa: ASYNC110  (polling the API, as an agent would)
                await trio.sleep(0.1)
        (reference,) = evidence["evidence"]
        assert reference["session_id"] == opened["session"]["session_id"] and reference["operator"] == "OP-0001"
        scans = [s for s in reference["scans"] if s.get("code") == ITEM]
        assert len(scans) == 2 and all(s["playback_uri"] for s in scans)
        assert scans[0]["offset_s"] <= scans[1]["offset_s"]
        session = (await api.get(f"/api/v1/tenants/t1/sessions/{reference['session_id']}", headers=line.auth)).json()
        assert session["state"] == "closed"
        nothing = await api.get("/api/v1/tenants/t1/evidence/douyin|NOPE", headers=line.auth)
        assert nothing.status_code == 404
        parcels = (await api.get("/api/v1/tenants/t1/packline/parcel", headers=line.auth)).json()["items"]
        assert [p["id"] for p in parcels] == ["douyin|DY00000110"]

    await run_line(tmp_path, body)
