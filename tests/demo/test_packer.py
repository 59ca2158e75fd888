"""The simulated packer: its seeded choices (pure, no I/O), and ``make run``'s demo end to end.

The end-to-end test starts the gateway in-process on the shipped ``config/gateway.toml``
(a tmp data_dir, port 0; the simulators on their configured loopback ports) and checks what a
newcomer must see within 30 s: a parcel closed with its label at a printer simulator, an alarm
verdict, and the NVR evidence in the store.
"""

from __future__ import annotations

import random

import trio

from gateway._daemon import serve_gateway
from gateway._demo import demo_floor
from gateway._demo.catalog import barcode_of
from gateway._demo.packer import (
    DECK,
    DEMO_SEED,
    Mishap,
    aim_of,
    badge_of,
    choose_mishap,
    parcel_rng,
    progress,
    script_parcel,
    units_to_pack,
)
from gateway._packline.session_records import read_session
from gateway._settings import default_config_path, load_settings, with_overrides

CREAM, SERUM, BOX = barcode_of("SKU-101"), barcode_of("SKU-115"), barcode_of("GIFTBOX-1")
ALARMS = {"WRONG_ITEM", "EXTRA", "MISSING", "STOP_REFUND"}


def component(sku, kind="item", quantity=1, packed=0, parcel=1, status="pending", order="douyin|1"):
    return {"component_id": f"{order}#{sku}", "order_id": order, "sku": sku, "kind": kind, "quantity": quantity,
            "packed": packed, "parcel": parcel, "status": status}


BILL = [component("SKU-101", quantity=2), component("SKU-115"), component("GIFTBOX-1", "gift_box"),
        component("TRIAL-1", "trial", parcel=2)]


def script(mishap, bill=BILL, orders=1, seed=1):
    staged, steps = script_parcel(bill, orders, mishap, random.Random(seed))
    return staged, [(s.action, s.code, s.expect) for s in steps]


def test_mishaps_are_a_pure_function_of_seed_station_and_parcel():
    first = [choose_mishap(DEMO_SEED, "demo-1", n) for n in range(24)]
    assert first == [choose_mishap(DEMO_SEED, "demo-1", n) for n in range(24)]
    assert first != [choose_mishap(DEMO_SEED, "demo-2", n) for n in range(24)]
    for round_start in range(0, 24, len(DECK)):  # every round holds each mishap once
        assert sorted(first[round_start:round_start + len(DECK)]) == sorted(DECK)
    assert first[0] is not Mishap.NONE  # the newcomer sees an alarm at the first parcel of demo-1
    assert badge_of("demo-1") == badge_of("demo-1") != badge_of("demo-2")
    assert badge_of("demo-1").startswith("OP-")
    rng_one, rng_two = parcel_rng(DEMO_SEED, "demo-1", 3), parcel_rng(DEMO_SEED, "demo-1", 3)
    assert [rng_one.random() for _ in range(3)] == [rng_two.random() for _ in range(3)]


def test_only_this_parcels_outstanding_units_are_packed():
    bill = [*BILL, component("SKU-230", status="removed"), component("SKU-245", quantity=2, packed=1)]
    assert units_to_pack(bill) == [("SKU-101", "item"), ("SKU-101", "item"), ("SKU-115", "item"),
                                   ("GIFTBOX-1", "gift_box"), ("SKU-245", "item")]
    assert progress({"session": {"components": bill}}) == (1, 6)


def test_a_parcel_without_a_mishap_closes_on_its_last_unit():
    assert script(Mishap.NONE) == (Mishap.NONE, [
        ("scan", CREAM, "OK"), ("scan", CREAM, "OK"), ("scan", SERUM, "OK"), ("scan", BOX, "CLOSED")])


def test_a_forgotten_gift_is_missing_at_close_then_scanned():
    staged, steps = script(Mishap.FORGET_GIFT)
    assert staged is Mishap.FORGET_GIFT
    assert steps[-3:] == [("scan", SERUM, "OK"), ("scan", "#CLOSE", "MISSING"), ("scan", BOX, "CLOSED")]
    assert [code for _, code, _ in steps].count(BOX) == 1


def test_a_wrong_item_and_an_extra_unit_are_scanned_before_the_parcel_is_complete():
    for seed in range(20):
        _, steps = script(Mishap.WRONG_ITEM, seed=seed)
        wrong = [i for i, (_, _, expect) in enumerate(steps) if expect == "WRONG_ITEM"]
        assert len(wrong) == 1 and wrong[0] < len(steps) - 1 and steps[-1][2] == "CLOSED"
        assert steps[wrong[0]][1] not in {CREAM, SERUM, BOX}
        _, steps = script(Mishap.EXTRA, seed=seed)
        extra = [i for i, (_, _, expect) in enumerate(steps) if expect == "EXTRA"]
        assert len(extra) == 1 and extra[0] < len(steps) - 1
        code = steps[extra[0]][1]
        assert code not in [c for _, c, _ in steps[extra[0] + 1:]]  # its SKU was complete already


def test_a_refund_stops_the_parcel_and_the_packer_cancels():
    assert script(Mishap.REFUND) == (Mishap.REFUND, [
        ("scan", CREAM, "OK"), ("refund", "", "STOP_REFUND"), ("scan", "#CANCEL", "OK")])
    assert script(Mishap.REFUND, [component("SKU-101")])[1] == [("refund", "", "STOP_REFUND"),
                                                                ("scan", "#CANCEL", "OK")]


def test_a_mishap_the_parcel_cannot_have_falls_back():
    single = [component("SKU-101")]
    assert script(Mishap.FORGET_GIFT, single)[0] is Mishap.REFUND
    assert script(Mishap.EXTRA, single, orders=2)[0] is Mishap.WRONG_ITEM
    assert script(Mishap.REFUND, BILL, orders=2)[0] is Mishap.FORGET_GIFT
    assert script(Mishap.NONE, [component("NOT-IN-THE-DEMO")]) == (Mishap.NONE, [])


def test_scans_carry_the_aim_identifier_of_their_symbology():
    assert aim_of(str(CREAM)) == "]E0"
    assert aim_of("OP-0007") == aim_of("#CLOSE") == aim_of("DY1234567890") == "]C0"


async def test_make_run_shows_sessions_verdicts_labels_and_clips_within_30_seconds(tmp_path):
    settings = with_overrides(load_settings(default_config_path()), gateway={"data_dir": str(tmp_path / "data")},
                              http={"port": 0})
    assert set(settings.stations) == {"demo-1", "demo-2"}
    assert {s.nvr_channel for s in settings.stations.values()} == {1, 2}
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        services = await nursery.start(serve_gateway, settings, shutdown)
        store = services.store
        floor = demo_floor(settings)
        assert floor is not None and set(floor.printers) == {"demo-1", "demo-2"}

        def sessions():
            return [read_session(store, "demo", session_id) for _, session_id, _ in store.iter_records("session", "demo")]

        def closed():
            return [s for s in sessions() if (s.get("closing") or {}).get("verdict") == "CLOSED"]

        def alarms():
            return [e["verdict"] for s in sessions() for e in s.get("timeline", ()) if e.get("verdict") in ALARMS]

        def seen_all() -> bool:
            return bool(closed() and alarms() and any(p.printed() for p in floor.printers.values())
                        and list(store.iter_records("evidence", "demo")))

        with trio.fail_after(30):
            while not seen_all():  # noqa: ASYNC110  (the store has no event to wait on)
                await trio.sleep(0.2)
        parcel = closed()[0]
        assert parcel["operator"] == badge_of(parcel["station"])
        printer = floor.printers[parcel["station"]]
        printed = "\n".join(label.zpl for label in printer.printed())
        assert any(order_id in printed for s in closed() if s["station"] == parcel["station"]
                   for order_id in s["orders"])
        (_, _, evidence), *_ = store.iter_records("evidence", "demo")
        assert evidence["clip"]["complete"] is True
        shutdown.set()
