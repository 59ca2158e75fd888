"""Simulators speaking each device's real protocol, for the demo and the tests."""
