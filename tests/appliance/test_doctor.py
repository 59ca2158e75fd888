"""``gateway._appliance.doctor``: each check ok and failing with its fix, against real parts.

Disks are real tmpfs mounts (skipped where mounting is not allowed), the upstream a real HTTP
server verifying signatures (``tests._support.upstream``), the printer and the NVR their
simulators, the port a real socket, the store a real RocksDB with one audit record altered.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from devices.simulators.nvr import NvrSimulator
from devices.simulators.printer import PrinterSimulator
from devices.simulators.scanner import PtyScanner
from gateway._appliance.doctor import DoctorReport, run_doctor
from gateway._appliance.doctor_core import Finding
from gateway._appliance.doctor_host import FILES_BESIDES_CONNECTIONS, STORE_HEADROOM_BYTES, disk_verdict
from gateway._settings import load_settings
from gateway._store import StepWrite, open_store, store_settings
from tests._support import ROOT, write_config
from tests._support.upstream import Upstream, upstream_config


def doctor(config: Path, *only: str) -> DoctorReport:
    return run_doctor(lambda: load_settings(config), config, only, progress=lambda text: None)


def of(report: DoctorReport, name: str) -> list[Finding]:
    return [f for f in report.findings if f.name == name]


def one(report: DoctorReport, name: str) -> Finding:
    found = of(report, name)
    assert len(found) == 1, found
    return found[0]


# -- config ------------------------------------------------------------------------------


def test_a_config_error_names_file_line_and_key_and_stops_the_run(tmp_path):
    config = write_config(tmp_path, "[store]\noutbox_max_byte = 5\n")
    report = doctor(config)
    (finding,) = report.findings
    assert finding.name == "config" and finding.status == "fail"
    assert f"{config}:" in finding.message and "store.outbox_max_byte" in finding.message
    assert finding.details["line"] == next(i for i, line in enumerate(config.read_text().splitlines(), 1)
                                           if "outbox_max_byte" in line)
    assert "fix the line" in finding.fix
    assert report.exit_status() == 2


def test_a_valid_config_is_ok_and_secrets_env_beside_it_is_read(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCTOR_T3_SECRET", raising=False)
    config = write_config(tmp_path, "[tenants.t3.erp]\nsecret_env = 'DOCTOR_T3_SECRET'\n")
    (tmp_path / "secrets.env").write_text("# the service's environment\nDOCTOR_T3_SECRET='s3'\n")
    report = doctor(config, "open_files")
    assert one(report, "config").status == "ok" and "1 variable(s)" in one(report, "config").message


# -- data_dir ------------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[callable]:
    mounts: list[Path] = []

    def mount(options: str) -> Path:
        target = tmp_path / f"disk{len(mounts)}"
        target.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True,
                              text=True, check=False)
        if done.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounts.append(target)
        return target

    yield mount
    for target in mounts:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_data_dir_ok_with_room(tmp_path):
    finding = one(doctor(write_config(tmp_path, "[store]\noutbox_max_bytes = 1048576\n"), "data_dir"), "data_dir")
    assert finding.status == "ok" and finding.details["free_bytes"] > 0


def test_data_dir_on_a_tiny_disk_fails_with_the_fix(tmp_path, tmpfs):
    disk = tmpfs("size=1m")
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(f"data_dir = '{tmp_path / 'data'}'", f"data_dir = '{disk}'"))
    finding = one(doctor(config, "data_dir"), "data_dir")
    assert finding.status == "fail" and "free" in finding.message and "free disk space" in finding.fix


def test_data_dir_smaller_than_the_outbox_bound_warns(tmp_path):
    config = write_config(tmp_path, f"[store]\noutbox_max_bytes = {2**60}\n")
    finding = one(doctor(config, "data_dir"), "data_dir")
    assert finding.status == "warn" and "outbox_max_bytes" in finding.message and "outbox_max_bytes" in finding.fix


def test_a_read_only_data_dir_fails(tmp_path, tmpfs):
    if os.geteuid() == 0:
        data = tmpfs("ro,size=1m")
    else:
        data = tmp_path / "data"
        data.mkdir()
        data.chmod(0o500)
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace(f"data_dir = '{tmp_path / 'data'}'", f"data_dir = '{data}'"))
    finding = one(doctor(config, "data_dir"), "data_dir")
    assert finding.status == "fail" and "not writable" in finding.message and "chown" in finding.fix


def test_disk_verdict_thresholds():
    assert disk_verdict(STORE_HEADROOM_BYTES - 1, 0)[0] == "fail"
    assert disk_verdict(STORE_HEADROOM_BYTES + 200, 100)[0] == "ok"
    assert disk_verdict(STORE_HEADROOM_BYTES + 10, 2**30)[0] == "warn"


# -- open_files ----------------------------------------------------------------------------


def test_open_files_figure_is_the_daemons():
    from gateway._daemon import FILES_BESIDES_CONNECTIONS as daemons

    assert FILES_BESIDES_CONNECTIONS == daemons


def test_a_low_open_files_limit_fails_and_says_limitnofile(tmp_path):
    config = write_config(tmp_path)
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
            "from gateway.cli import main; sys.exit(main(sys.argv[1:]))")
    done = subprocess.run([sys.executable, "-c", code, "doctor", "--config", str(config), "--only", "open_files"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "open files limit 256" in done.stdout and "LimitNOFILE=65536" in done.stdout


def test_open_files_ok_when_the_limit_allows_it(tmp_path):
    finding = one(doctor(write_config(tmp_path), "open_files"), "open_files")
    assert finding.status == "ok" and finding.details["needed"] == 1000 + FILES_BESIDES_CONNECTIONS


# -- http_port -----------------------------------------------------------------------------


def test_port_free_then_held_by_another_program(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        config = write_config(tmp_path, port=port)
        holder.listen()
        finding = one(doctor(config, "http_port"), "http_port")
        assert finding.status == "fail" and "held by another program" in finding.message
        assert f"sport = :{port}" in finding.fix
    assert one(doctor(config, "http_port"), "http_port").status == "ok"


# -- secrets -------------------------------------------------------------------------------


def test_a_world_readable_secret_fails(tmp_path):
    secret = tmp_path / "upstream.secret"
    secret.write_text("s\n")
    secret.chmod(0o644)
    (tmp_path / "data").mkdir()
    token = tmp_path / "data" / "api-token"
    token.write_text("t\n")
    token.chmod(0o600)
    config = write_config(tmp_path, "[upstream]\nurl = 'http://127.0.0.1:9/x'\nsecret_file = 'upstream.secret'\n")
    findings = {f.subject: f for f in of(doctor(config, "secrets"), "secrets")}
    bad = findings[str(secret)]
    assert bad.status == "fail" and "upstream.secret_file" in bad.message and "0644" in bad.message
    assert bad.fix == f"`chmod 600 {secret}` (owned by the gateway's user)"
    assert findings[str(token)].status == "ok"
    secret.chmod(0o600)
    assert all(f.status == "ok" for f in of(doctor(config, "secrets"), "secrets"))


# -- upstream ------------------------------------------------------------------------------


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream().start()
    yield server
    server.stop()


def test_upstream_ok_then_refusing_our_signature(tmp_path, upstream):
    config = write_config(tmp_path, upstream_config(upstream))
    report = doctor(config, "upstream", "clock")
    assert one(report, "upstream").status == "ok", report
    (batch,) = upstream.batches
    assert batch["events"] == [] and batch["probe"] is True
    skew = next(f for f in of(report, "clock") if f.subject == "upstream")
    assert skew.status == "ok" and abs(skew.details["skew_s"]) < 2
    config = write_config(tmp_path, upstream_config(upstream, secret="not-the-erps"))
    finding = one(doctor(config, "upstream"), "upstream")
    assert finding.status == "fail" and "refused our signature (HTTP 401)" in finding.message
    assert "secret" in finding.fix


def test_upstream_down_fails(tmp_path, upstream):
    config = write_config(tmp_path, upstream_config(upstream))
    upstream.stop()
    finding = one(doctor(config, "upstream"), "upstream")
    assert finding.status == "fail" and "cannot reach" in finding.message and "url" in finding.fix


def test_forwarding_off_warns(tmp_path):
    finding = one(doctor(write_config(tmp_path), "upstream"), "upstream")
    assert finding.status == "warn" and "[upstream] url" in finding.fix


async def test_the_demo_upstream_accepts_the_probe():
    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Route

    from gateway._appliance.doctor_net import probe_batch
    from gateway._demo.upstream import DEMO_UPSTREAM_SECRET, demo_upstream_endpoint
    from gateway._signing import sign

    app = Starlette(routes=[Route("/demo/upstream", demo_upstream_endpoint(), methods=["POST"])])
    batch = probe_batch("gw", 1_800_000_000)
    signature = sign(DEMO_UPSTREAM_SECRET.encode(), "1800000000", batch.body)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as client:
        good = await client.post("/demo/upstream", content=batch.body, headers={
            "X-Gateway-Timestamp": "1800000000", "X-Gateway-Signature": signature})
        bad = await client.post("/demo/upstream", content=batch.body, headers={
            "X-Gateway-Timestamp": "1800000000", "X-Gateway-Signature": "sha256=00"})
    assert good.status_code == 200 and good.json()["probe"] is True
    assert bad.status_code == 401


# -- devices and the NVR clock -------------------------------------------------------------


def station(*, printer_port: int | None = None, serial: Path | None = None, nvr: NvrSimulator | None = None,
            password: str | None = None) -> str:
    text = '[packline]\ntenant = "t1"\n'
    if nvr is not None:
        text += (f'[nvrs.main]\nurl = "{nvr.url}"\nusername = "admin"\npassword = "{password or nvr.auth.password}"\n'
                 "timeout_s = 2.0\n")
    text += "[stations.A1]\n" + ('nvr = "main"\n' if nvr is not None else "")
    text += f'[[stations.A1.scanners]]\nkind = "serial"\npath = "{serial or "/dev/serial/by-id/usb-none-if00"}"\n'
    if printer_port is not None:
        text += f'[stations.A1.printer]\nhost = "127.0.0.1"\nport = {printer_port}\ntimeout_s = 2.0\n'
    return text


async def test_printer_ready_then_paper_out_and_a_missing_serial_scanner(tmp_path):
    printer = PrinterSimulator()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(printer.serve_tcp)
        config = write_config(tmp_path, station(printer_port=port))
        report = await trio.to_thread.run_sync(doctor, config, "devices")
        found = {f.subject: f for f in of(report, "devices")}
        assert found[f"A1 printer tcp:127.0.0.1:{port}"].status == "ok"
        scanner = found["A1 scanner /dev/serial/by-id/usb-none-if00"]
        assert scanner.status == "fail" and "does not exist" in scanner.message and "plug it in" in scanner.fix
        printer.paper_out = True
        report = await trio.to_thread.run_sync(doctor, config, "devices")
        paper = next(f for f in of(report, "devices") if "printer" in f.subject)
        assert paper.status == "fail" and "paper out" in paper.message and "load paper" in paper.fix
        nursery.cancel_scope.cancel()


def test_a_present_serial_scanner_opens(tmp_path):
    link = tmp_path / "usb-Datalogic_QD2430-if00"
    with PtyScanner(link):
        report = doctor(write_config(tmp_path, station(serial=link)), "devices")
    assert one(report, "devices").status == "ok" and "opens" in one(report, "devices").message


def test_nvr_wrong_password_fails_once_and_an_nvr_clock_off_warns(tmp_path):
    with NvrSimulator(clock_offset_s=120.0) as nvr:
        config = write_config(tmp_path, station(nvr=nvr, password="wrong"))
        report = doctor(config, "devices", "clock")
        login = next(f for f in of(report, "devices") if f.subject == "nvr main")
        assert login.status == "fail" and "username or password" in login.message and "password_env" in login.fix
        assert nvr.auth_failures <= 2  # one login per run (digest: a challenge, then the refusal)
        config = write_config(tmp_path, station(nvr=nvr))
        report = doctor(config, "devices", "clock")
    assert next(f for f in of(report, "devices") if f.subject == "nvr main").status == "ok"
    clock = next(f for f in of(report, "clock") if f.subject == "nvr main")
    assert clock.status == "warn" and 115 < clock.details["offset_s"] < 125 and "NTP" in clock.fix


# -- store ---------------------------------------------------------------------------------


def test_store_chains_ok_then_a_tampered_record_fails(tmp_path):
    from tests.store.test_store import _chain_step, _tamper, be64

    config = write_config(tmp_path)
    settings = load_settings(config)
    assert "no store yet" in one(doctor(config, "store"), "store").message
    with open_store(store_settings(settings)) as store:
        store.commit(_chain_step("t1", 5))
        store.commit(StepWrite(audit=[]))
    report = doctor(config, "store")
    assert {f.subject: f.status for f in of(report, "store")} == {"_gateway": "ok", "t1": "ok", "t2": "ok"}
    _tamper(settings.data_path / "rocksdb", b"t1\0" + be64(3), lambda v: v.replace(b"note-2", b"note-X"))
    broken = next(f for f in of(doctor(config, "store"), "store") if f.subject == "t1")
    assert broken.status == "fail" and "BROKEN at seq 3" in broken.message and "backup" in broken.fix
