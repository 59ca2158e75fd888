"""The NVR client against the ISAPI simulator over real HTTP with digest auth."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta

import pytest
import trio

from devices.isapi import compact_time
from devices.nvr import NvrClient
from devices.simulators.nvr import NvrSimulator, clip_bytes
from gateway._errors import DeviceAuthError, DeviceError, DeviceUnavailableError

PASSWORD = "nvr-pass-1"


@pytest.fixture
def nvr_sim():
    with NvrSimulator(password=PASSWORD) as simulator:
        yield simulator


def client_for(simulator: NvrSimulator, password: str = PASSWORD, **options) -> NvrClient:
    options.setdefault("retry_initial_s", 0.01)
    options.setdefault("retry_max_s", 0.05)
    options.setdefault("timeout_s", 2.0)
    return NvrClient("nvr-1", simulator.url, "admin", password, **options)


def whole_second_ago(seconds: int) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=seconds)


def seconds_of(uri: str, key: str) -> datetime:
    value = uri.split(f"{key}=", 1)[1].split("&", 1)[0]
    return datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


async def test_clock_40_seconds_off_still_finds_the_right_clip(nvr_sim, tmp_path):
    nvr_sim.clock_offset_s = 40.0
    start = whole_second_ago(600)
    # 30-second files; the NVR labels each with its own clock, 40 s ahead of ours
    files = nvr_sim.record_segments(1, start, segment_s=30, count=10)
    scan_from, scan_to = start + timedelta(seconds=95), start + timedelta(seconds=105)
    with trio.fail_after(10):
        async with client_for(nvr_sim) as nvr:
            assert await nvr.clock_offset() == pytest.approx(40.0, abs=1.0)
            clip = await nvr.clip_for(1, scan_from, scan_to)
            assert clip is not None and clip.complete and len(clip.segments) == 1
            uri = clip.segments[0].playback_uri
            # Without the offset, 95..105 s of the NVR's clock would be files 2 and 3.
            assert f"name={files[3].name}" in uri
            expected = scan_from + timedelta(seconds=40)
            assert abs((seconds_of(uri, "starttime") - expected).total_seconds()) <= 1
            assert abs((seconds_of(uri, "endtime") - expected - timedelta(seconds=10)).total_seconds()) <= 1
            assert abs((nvr_sim.searches[-1].start - expected).total_seconds()) <= 1
            assert clip.offset_s(scan_from) == pytest.approx(0, abs=1)
            # and the downloaded evidence holds those very seconds of that file
            saved = await nvr.download(uri, tmp_path / "DY-1001.ps")
            content = saved.path.read_bytes()
            assert content == clip_bytes(files[3].name, seconds_of(uri, "starttime"), seconds_of(uri, "endtime"))
            assert content.startswith(f"{files[3].name}@{compact_time(seconds_of(uri, 'starttime'))};".encode())
            assert saved.sha256 == hashlib.sha256(content).hexdigest()
            assert [p.name for p in tmp_path.iterdir()] == ["DY-1001.ps"]    # no .part left


async def test_wall_clock_firmware_is_searched_in_its_local_time(nvr_sim):
    nvr_sim.clock_offset_s = 40.0
    nvr_sim.local_time_labels = True             # writes UTC+08:00 wall-clock time with a Z
    start = whole_second_ago(600)
    files = nvr_sim.record_segments(1, start, segment_s=30, count=10)
    scan_from = start + timedelta(seconds=95)
    with trio.fail_after(10):
        async with client_for(nvr_sim, search_clock="device_local") as nvr:
            clip = await nvr.clip_for(1, scan_from, scan_from + timedelta(seconds=10))
            assert nvr.offset_s == pytest.approx(40.0, abs=1.0)      # the real drift, zone apart
    assert clip is not None and f"name={files[3].name}" in clip.segments[0].playback_uri
    expected = scan_from + timedelta(hours=8, seconds=40)
    assert abs((seconds_of(clip.segments[0].playback_uri, "starttime") - expected).total_seconds()) <= 1


async def test_wrong_password_is_an_auth_error_and_not_retried(nvr_sim, caplog):
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(10):
        async with client_for(nvr_sim, password="wrong-password-9", attempts=5) as nvr:
            with pytest.raises(DeviceAuthError, match="nvr-1: .*username or password") as caught:
                await nvr.clock_offset()
    assert nvr_sim.auth_failures == 1
    assert "wrong-password-9" not in str(caught.value) and "wrong-password-9" not in caplog.text


async def test_paging_on_more_collects_every_file(nvr_sim):
    nvr_sim.page_size = 3
    start = whole_second_ago(900)
    files = nvr_sim.record_segments(2, start, segment_s=60, count=10)
    with trio.fail_after(10):
        async with client_for(nvr_sim) as nvr:
            found = await nvr.search(2, start, start + timedelta(seconds=600))
    assert [r.playback_uri.split("name=")[1].split("&")[0] for r in found] == [f.name for f in files]
    assert [q.position for q in nvr_sim.searches] == [0, 3, 6, 9]
    assert len({q.search_id for q in nvr_sim.searches}) == 1
    assert abs((found[0].start - start).total_seconds()) <= 1 and found[0].track_id == 201


async def test_firmware_wanting_track_id_list_is_asked_in_that_spelling(nvr_sim):
    nvr_sim.track_list_tags = ("trackIDList",)
    start = whole_second_ago(300)
    nvr_sim.record_segments(1, start, segment_s=60, count=2)
    with trio.fail_after(10):
        async with client_for(nvr_sim) as nvr:
            assert len(await nvr.search(1, start, start + timedelta(seconds=120))) == 2
            assert nvr.track_list_tag == "trackIDList"
            await nvr.search(1, start, start + timedelta(seconds=60))
    assert [q.track_list_tag for q in nvr_sim.searches] == ["trackIDList", "trackIDList"]
    refused = [r for r in nvr_sim.requests if r[2] == 400]
    assert len(refused) == 1                 # learnt once, remembered after


async def test_nothing_recorded_gives_no_clip(nvr_sim):
    with trio.fail_after(10):
        async with client_for(nvr_sim) as nvr:
            start = whole_second_ago(100)
            assert await nvr.clip_for(3, start, start + timedelta(seconds=10)) is None


async def test_snapshot_is_a_jpeg_and_an_unknown_channel_is_an_error(nvr_sim):
    nvr_sim.record_segments(1, whole_second_ago(60), segment_s=60, count=1)
    with trio.fail_after(10):
        async with client_for(nvr_sim) as nvr:
            picture = await nvr.snapshot(1)
            assert picture.startswith(b"\xff\xd8") and picture.endswith(b"\xff\xd9")
            with pytest.raises(DeviceError, match="HTTP 404 .*invalidChannel"):
                await nvr.snapshot(9)
    assert sum(1 for r in nvr_sim.requests if r[1].endswith("/901/picture") and r[2] == 404) == 1


async def test_nvr_down_is_unavailable_after_the_retries(caplog):
    simulator = NvrSimulator(password=PASSWORD).start()
    simulator.stop()
    with trio.fail_after(10):
        async with client_for(simulator, attempts=3) as nvr:
            with pytest.raises(DeviceUnavailableError, match="cannot reach the NVR"):
                await nvr.clock_offset()
    assert caplog.text.count("failed") == 2          # two retries logged, then the error


async def test_nvr_that_comes_back_is_reached_by_the_retries():
    simulator = NvrSimulator(password=PASSWORD).start()
    simulator.stop()
    try:
        with trio.fail_after(10):
            async with client_for(simulator, attempts=8, retry_initial_s=0.1, retry_max_s=0.2) as nvr:
                async with trio.open_nursery() as nursery:
                    async def come_back():
                        await trio.sleep(0.3)
                        simulator.start()
                    nursery.start_soon(come_back)
                    assert await nvr.clock_offset() == pytest.approx(0, abs=1)
    finally:
        simulator.stop()


async def test_hanging_nvr_times_out(nvr_sim):
    nvr_sim.hang_s = 0.6
    with trio.fail_after(10):
        async with client_for(nvr_sim, timeout_s=0.2, attempts=2) as nvr:
            with pytest.raises(DeviceUnavailableError, match="no answer within 0.2 s"):
                await nvr.snapshot(1)


async def test_failed_download_leaves_no_file(nvr_sim, tmp_path):
    with trio.fail_after(10):
        async with client_for(nvr_sim) as nvr:
            with pytest.raises(DeviceError, match="404"):
                await nvr.download("rtsp://h/Streaming/tracks/101/?starttime=20261204T100000Z"
                                   "&endtime=20261204T100010Z&name=nope", tmp_path / "x.ps")
    assert list(tmp_path.iterdir()) == []


def test_credentials_in_the_url_are_refused_without_echoing_them():
    with pytest.raises(ValueError) as caught:
        NvrClient("nvr-1", "http://admin:s3cret@127.0.0.1:1", "admin", "s3cret")
    assert "s3cret" not in str(caught.value)
