"""The Scan value: immutable, comparable, with a few helpers over its fields."""

from __future__ import annotations

import dataclasses

import pytest

from devices.scan import GS1_MESSAGE_SYMBOLOGIES, GTIN_SYMBOLOGIES, Scan


def test_scan_is_a_frozen_value():
    scan = Scan(station="A1", device_id="/dev/serial/by-id/x", raw=b"]C0AB", text="AB", symbology="]C0")
    with pytest.raises(dataclasses.FrozenInstanceError):
        scan.text = "other"  # type: ignore[misc]
    assert scan == dataclasses.replace(scan)
    assert scan.ok and not scan.is_gs1 and "AB" in repr(scan)


def test_symbology_names():
    def name(symbology):
        return Scan("s", "d", b"", "", symbology=symbology).symbology_name

    assert name("]C1") == "GS1-128" and name("]C0") == "Code 128" and name("]d2") == "GS1 DataMatrix"
    assert name("]E0") == "EAN-13/UPC-A/UPC-E" and name("]Q1") == "QR Code"
    assert name(None) == "unknown" and name("]Y0") == "unknown"


def test_element_lookup_and_error_flag():
    scan = Scan("s", "d", b"", "", gs1=(("01", "09501101020917"), ("10", "L1"), ("10", "L2")), error="x")
    assert scan.is_gs1 and not scan.ok
    assert scan.element("10") == "L1" and scan.element("17") is None


def test_gs1_and_gtin_symbology_sets_do_not_overlap():
    assert not GS1_MESSAGE_SYMBOLOGIES & GTIN_SYMBOLOGIES


def test_the_biip_message_does_not_take_part_in_equality():
    a = Scan("s", "d", b"x", "x")
    b = dataclasses.replace(a, gs1_message=object())  # type: ignore[arg-type]
    assert a == b and "gs1_message" not in repr(b)
