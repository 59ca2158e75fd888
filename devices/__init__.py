"""Pack-station device drivers: scanners (serial and TCP), ZPL label printers, the NVR.

Each driver speaks its device's real protocol and comes with a simulator speaking the
same protocol, so the demo and the tests use real ptys and sockets. The drivers arrive
with the pack-line issue; the package exists now so the layout matches the design card.
"""
